package benchmarks

import (
	"flag"
	"os"
	"testing"

	"github.com/dynamerge/dynamerge/crdt/worker"
)

// flagSeed replays the random record choices of the throughput benchmark.
var flagSeed = flag.Uint64("seed", 0, "seed of the random record choices (0: pick one and log it)")

// flagWorkerMem overrides engine.Options.Workers.MemoryBytes (0: the
// engine's default), to tell a worker memory limit that is too small for a
// record from a slow engine.
var flagWorkerMem = flag.Int64("workermem", 0, "RSS bound of all engine workers together, bytes (0: default)")

// flagCacheBytes overrides engine.Options.CacheBytes (0: the default).
var flagCacheBytes = flag.Int64("cachebytes", 0, "engine hot-record cache bound, bytes (0: default)")

func TestMain(m *testing.M) {
	// The engine starts its Automerge workers by re-executing this test
	// binary; in such a child this call never returns.
	worker.Main()
	flag.Parse()
	os.Exit(m.Run())
}
