// Command dynamerge is the dynamerge sync server: flags and environment
// variables → store → engine → HTTP server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // a runtime failure: store, listener, unclean shutdown
	exitUsage = 2 // a bad flag or environment variable
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode maps run's error to the process exit code, printing it once.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "dynamerge: %v\n", err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "dynamerge: %v\n", err)
		return exitError
	}
}
