package crdt

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// The differential test re-executes this test binary as a child that
	// applies candidate changes with automerge-go, which may abort it.
	if os.Getenv(envApplyChild) == "1" {
		os.Exit(applyChild(os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}
