package worker

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// abortPrefix: a request for a record key with this prefix makes a test
// worker abort (SIGABRT, as a Rust panic crossing cgo does). The crafted
// changes that abort automerge-go no longer get past the validation in
// crdt.Doc.Apply, so this is how the tests reach the pool's crash handling.
const abortPrefix = "abort/"

// envExitAfter makes a test worker exit on its own this long after start
// (a time.Duration string), to test crash loops.
const envExitAfter = "DYNAMERGE_TEST_WORKER_EXIT_AFTER"

func TestMain(m *testing.M) {
	if d, err := time.ParseDuration(os.Getenv(envExitAfter)); err == nil && os.Getenv(EnvWorker) != "" {
		time.AfterFunc(d, func() { os.Exit(3) })
	}
	testHookRequest = func(key string) {
		if strings.HasPrefix(key, abortPrefix) {
			_ = syscall.Kill(os.Getpid(), syscall.SIGABRT)
			select {} // the signal is on its way
		}
	}
	// The pools of these tests start this test binary as their workers.
	Main()
	// Under -race, a process sleeps a second at exit (atexit_sleep_ms),
	// which every Close would wait for. The workers inherit this.
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	os.Exit(m.Run())
}
