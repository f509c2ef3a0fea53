package worker

import (
	"fmt"
	"os"
	"syscall"
)

// sysProcAttr makes a worker die with its parent: the kernel sends it
// SIGKILL when the thread that started it exits. (EOF on stdin covers the
// rest, e.g. when that thread outlived the parent's Go runtime.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// privateStdout moves the answer stream to a private descriptor and points
// fd 1 at stderr, so that whatever else in the process writes to stdout
// (the Rust core, a stray print) lands in the log instead of corrupting the
// frames.
func privateStdout() (*os.File, error) {
	fd, err := syscall.Dup(1)
	if err != nil {
		return nil, fmt.Errorf("dup stdout: %w", err)
	}
	syscall.CloseOnExec(fd)
	if err := syscall.Dup3(2, 1, 0); err != nil {
		return nil, fmt.Errorf("point stdout at stderr: %w", err)
	}
	return os.NewFile(uintptr(fd), "worker-answers"), nil
}
