package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/dynamerge/dynamerge/benchmarks/lww"
)

// lwwServe runs the last-writer-wins baseline until ctx ends:
//
//	dynabench lww-serve --addr 127.0.0.1:9000 --store bolt:<path>
//	dynabench lww-serve --addr 127.0.0.1:9000 --store dynamodb:<table> --dynamodb-endpoint <url>
func lwwServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dynabench lww-serve", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "loopback address to listen on")
	storeArg := fs.String("store", "", "bolt:<path> or dynamodb:<table>")
	endpoint := fs.String("dynamodb-endpoint", "", "DynamoDB endpoint (DynamoDB Local)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--addr %s: the baseline has no authentication and listens on loopback only", *addr)
	}
	kind, arg, _ := strings.Cut(*storeArg, ":")
	var st lww.Store
	switch {
	case kind == "bolt" && arg != "":
		st, err = lww.OpenBolt(arg)
	case kind == "dynamodb" && arg != "":
		octx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		st, err = lww.OpenDynamo(octx, arg, *endpoint)
		cancel()
	default:
		return fmt.Errorf("--store %q: want bolt:<path> or dynamodb:<table>", *storeArg)
	}
	if err != nil {
		return err
	}
	defer st.Close()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv := &http.Server{Addr: *addr, Handler: lww.NewServer(st, logger), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
