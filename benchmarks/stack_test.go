package benchmarks

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/server"
	"github.com/dynamerge/dynamerge/store/bolt"
)

// stack is the whole server side in this process, as an operator runs it:
// a bolt store in a temporary directory, the real engine (with its worker
// processes) and the echo server behind an httptest server on 127.0.0.1.
// Clients reach it over real HTTP on loopback.
type stack struct {
	tb     testing.TB
	opts   engine.Options
	bolt   *bolt.Store
	counts *CountingStore // wraps bolt; the engine writes through it

	engine *engine.Engine
	server *server.Server
	http   *httptest.Server

	// transport is shared by every client of the stack. Its idle pool is as
	// large as the benchmarks' concurrency: with Go's default of 2 idle
	// connections per host, 64 clients would open and close a connection
	// per request and measure the kernel's TIME_WAIT handling instead.
	transport *http.Transport
	client    *client.Client // follows restarts
}

// newStack starts a stack on a fresh bolt file with opts (Store and Logger
// are filled in) and stops it at cleanup.
func newStack(tb testing.TB, opts engine.Options) *stack {
	tb.Helper()
	st, err := bolt.Open(filepath.Join(tb.TempDir(), "bench.db"), nil)
	if err != nil {
		tb.Fatalf("bolt.Open: %v", err)
	}
	s := &stack{
		tb:        tb,
		opts:      opts,
		bolt:      st,
		counts:    NewCountingStore(st),
		transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute},
	}
	s.client = s.newClient()
	s.start()
	tb.Cleanup(func() {
		if s.server != nil {
			s.stop()
		}
		if err := st.Close(); err != nil {
			tb.Errorf("bolt close: %v", err)
		}
		s.transport.CloseIdleConnections()
	})
	return s
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newClient returns a client of the stack with its own http.Client over the
// shared transport. It follows restarts only if it is s.client.
func (s *stack) newClient() *client.Client {
	c := client.New("")
	if s.http != nil {
		c.BaseURL = s.http.URL
	}
	c.HTTP = &http.Client{Transport: s.transport, Timeout: 2 * time.Minute}
	return c
}

// start opens an engine on the (open) store and serves it.
func (s *stack) start() {
	s.tb.Helper()
	opts := s.opts
	opts.Store = s.counts
	opts.Logger = quietLogger()
	if *flagCacheBytes > 0 {
		opts.CacheBytes = *flagCacheBytes
	}
	eng, err := engine.Open(opts)
	if err != nil {
		s.tb.Fatalf("engine.Open: %v", err)
	}
	srv, err := server.New(server.Options{Engine: eng, Logger: quietLogger()})
	if err != nil {
		_ = eng.Close(context.Background())
		s.tb.Fatalf("server.New: %v", err)
	}
	s.engine, s.server = eng, srv
	s.http = httptest.NewServer(srv.Handler()) // binds 127.0.0.1
	s.client.BaseURL = s.http.URL
}

// stop shuts down in order: HTTP (in-flight requests finish), then the
// engine (writes and compactions finish, workers stop). The store stays
// open.
func (s *stack) stop() {
	s.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.server.Shutdown(ctx); err != nil {
		s.tb.Errorf("server shutdown: %v", err)
	}
	s.http.Close()
	if err := s.engine.Close(ctx); err != nil {
		s.tb.Errorf("engine close: %v", err)
	}
	s.server, s.engine = nil, nil
	s.transport.CloseIdleConnections()
}

// restart replaces engine and server with fresh ones on the same store: no
// record is hot any more, and the workers hold no document.
func (s *stack) restart() {
	s.tb.Helper()
	s.stop()
	s.start()
}

// reportRSS reports the resident memory of this process (server and
// clients: they share it), in MB.
func (s *stack) reportRSS(b *testing.B) {
	b.Helper()
	rss, err := ProcessRSS()
	if err != nil {
		b.Logf("rss: %v", err)
		return
	}
	b.ReportMetric(float64(rss)/(1<<20), "rss-MB")
}

// reportStore reports store calls per change moved by the measured part of a
// benchmark: appends (log writes), fsyncs (bolt transactions that carried
// appends) and reads.
func (s *stack) reportStore(b *testing.B, changes int, before StoreCounts, boltBefore bolt.Stats) {
	b.Helper()
	if changes == 0 {
		return
	}
	d := s.counts.Counts().Sub(before)
	bs := s.bolt.Stats()
	n := float64(changes)
	b.ReportMetric(float64(d.Appends)/n, "store-writes/change")
	b.ReportMetric(float64(bs.Commits-boltBefore.Commits)/n, "fsyncs/change")
	b.ReportMetric(float64(d.Loads+d.ReadLogs)/n, "store-reads/change")
	if d.AppendErrors > 0 {
		b.Logf("%d of %d appends failed (conflicts are retried by the engine)", d.AppendErrors, d.Appends)
	}
}
