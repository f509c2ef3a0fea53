package benchmarks

import (
	"flag"
	"os"
	"testing"
)

// flagSeed replays the random record choices of the throughput benchmark.
var flagSeed = flag.Uint64("seed", 0, "seed of the random record choices (0: pick one and log it)")

// flagCacheBytes overrides engine.Options.CacheBytes (0: the default).
var flagCacheBytes = flag.Int64("cachebytes", 0, "engine hot-record cache bound, bytes (0: default)")

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(m.Run())
}
