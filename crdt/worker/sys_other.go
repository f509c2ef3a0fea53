//go:build !linux

package worker

import (
	"os"
	"syscall"
)

// sysProcAttr: outside Linux there is no parent-death signal; a worker
// notices its parent's death by EOF on stdin.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// privateStdout answers on stdout as it is.
func privateStdout() (*os.File, error) { return os.Stdout, nil }
