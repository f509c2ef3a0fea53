package e2e

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/server"
	"github.com/dynamerge/dynamerge/store"
	"github.com/dynamerge/dynamerge/store/bolt"
)

// stack is the whole server side in this process: a bolt store, an engine
// (with its worker processes) and the HTTP server on a loopback port. It can
// be restarted on the same file and port, as an operator would.
type stack struct {
	tb   testing.TB
	path string
	addr string

	store  store.Store
	engine *engine.Engine
	server *server.Server
	done   chan struct{} // closed when Serve returns

	// client talks to the stack; its transport is private so that restarts
	// can drop idle connections to the old server.
	client    *client.Client
	transport *http.Transport
}

// newStack starts a stack on a fresh bolt file and stops it at cleanup.
func newStack(tb testing.TB) *stack {
	tb.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	s := &stack{
		tb:        tb,
		path:      filepath.Join(tb.TempDir(), "dynamerge.db"),
		transport: tr,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	s.addr = ln.Addr().String()
	s.client = client.New("http://" + s.addr)
	s.client.HTTP = &http.Client{Transport: tr, Timeout: 60 * time.Second}
	s.start(ln)
	tb.Cleanup(func() {
		if s.server != nil {
			s.stop()
		}
		tr.CloseIdleConnections()
	})
	return s
}

// quietLogger discards the stack's logs, unless E2E_DEBUG is set: then
// warnings and errors go to stderr.
func quietLogger() *slog.Logger {
	if os.Getenv("E2E_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// start opens store, engine and server, serving on ln (or on s.addr again
// when ln is nil).
func (s *stack) start(ln net.Listener) {
	s.tb.Helper()
	var err error
	if ln == nil {
		// The port was ours a moment ago; Go listeners set SO_REUSEADDR,
		// so rebinding it right away works.
		ln, err = net.Listen("tcp", s.addr)
		if err != nil {
			s.tb.Fatalf("restart: listen %s: %v", s.addr, err)
		}
	}
	st, err := bolt.Open(s.path, nil)
	if err != nil {
		s.tb.Fatalf("open bolt %s: %v", s.path, err)
	}
	eng, err := engine.Open(engine.Options{Store: st, Logger: quietLogger()})
	if err != nil {
		st.Close()
		s.tb.Fatalf("open engine: %v", err)
	}
	srv, err := server.New(server.Options{Engine: eng, Logger: quietLogger()})
	if err != nil {
		eng.Close(context.Background())
		st.Close()
		s.tb.Fatalf("new server: %v", err)
	}
	s.store, s.engine, s.server = st, eng, srv
	s.done = make(chan struct{})
	go func(srv *server.Server, done chan struct{}) {
		defer close(done)
		if err := srv.Serve(ln); err != nil {
			s.tb.Errorf("serve: %v", err)
		}
	}(srv, s.done)
}

// stop shuts the stack down in order: HTTP first (no new requests), then the
// engine (in-flight writes finish), then the store.
func (s *stack) stop() {
	s.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.server.Shutdown(ctx); err != nil {
		s.tb.Errorf("server shutdown: %v", err)
	}
	<-s.done
	if err := s.engine.Close(ctx); err != nil {
		s.tb.Errorf("engine close: %v", err)
	}
	if err := s.store.Close(); err != nil {
		s.tb.Errorf("store close: %v", err)
	}
	s.server, s.engine, s.store = nil, nil, nil
	s.transport.CloseIdleConnections()
}

// restart stops the stack and starts it again on the same file and port.
func (s *stack) restart() {
	s.tb.Helper()
	s.stop()
	s.start(nil)
}
