package server

import (
	"os"
	"testing"

	"github.com/dynamerge/dynamerge/crdt/worker"
)

func TestMain(m *testing.M) {
	// The engines of the integration tests start this binary as workers.
	worker.Main()
	// Under -race a process sleeps a second at exit, which every worker
	// would inherit and every pool Close would wait for.
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	os.Exit(m.Run())
}
