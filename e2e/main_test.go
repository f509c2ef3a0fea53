package e2e

import (
	"flag"
	"os"
	"testing"
)

// Flags of the end-to-end tests. They live here so that every test of the
// package sees the same values.
var (
	flagSeed     = flag.Uint64("seed", 0, "seed of the randomised tests (0: pick one and print it)")
	flagSessions = flag.Int("sessions", 0, "sessions of TestConvergence (0: the default for the mode)")
	flagKills    = flag.Int("kills", 0, "SIGKILLs of TestCrashRecovery (0: the default for the mode)")
	flagLong     = flag.Bool("long", false, "run the long variants")
)

func TestMain(m *testing.M) {
	// The poison finder runs candidate changes through automerge-go in a
	// child process of this binary too (see poison_test.go).
	if os.Getenv(envPoisonChild) != "" {
		os.Exit(poisonChildMain())
	}
	flag.Parse()
	os.Exit(m.Run())
}
