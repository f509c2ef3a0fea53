// Package testutil is what tests across the module share (as litestream
// keeps internal/testingutil): the whole server side in one process,
// served over loopback HTTP the way the binary serves it.
package testutil

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/internal/testlog"
	"github.com/dynamerge/dynamerge/server"
	"github.com/dynamerge/dynamerge/store"
)

// Stack is an engine and a server on a store, served on a loopback port
// by server.Serve, as the binary serves it. The store is the caller's:
// Stack never closes it, so a test can restart the stack on it, or run
// several stacks (processes) on one store.
type Stack struct {
	tb     testing.TB
	Store  store.Store
	Engine *engine.Engine
	Server *server.Server
	// Client talks to the stack, across restarts; Addr is where it serves.
	Client *client.Client
	Addr   string

	eopts     engine.Options
	sopts     server.Options
	transport *http.Transport
	done      chan struct{}
	stopOnce  *sync.Once
}

// Start serves st with an engine of eopts and a server of sopts (Store,
// Engine and Logger are filled in when unset) and stops at cleanup.
func Start(tb testing.TB, st store.Store, eopts engine.Options, sopts server.Options) *Stack {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	// A pool as large as the tests' concurrency: with Go's default of 2
	// idle connections per host, 64 clients would open and close one per
	// request and measure the kernel's TIME_WAIT handling instead.
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}
	s := &Stack{tb: tb, Store: st, Addr: ln.Addr().String(), eopts: eopts, sopts: sopts, transport: tr}
	s.Client = s.NewClient()
	s.start(ln)
	tb.Cleanup(func() {
		s.Stop()
		tr.CloseIdleConnections()
	})
	return s
}

// URL is the stack's base URL.
func (s *Stack) URL() string { return "http://" + s.Addr }

// NewClient returns another client of the stack, over its transport.
func (s *Stack) NewClient() *client.Client {
	c := client.New(s.URL())
	c.HTTP = &http.Client{Transport: s.transport, Timeout: 2 * time.Minute}
	return c
}

func (s *Stack) start(ln net.Listener) {
	s.tb.Helper()
	eopts, sopts := s.eopts, s.sopts
	eopts.Store = s.Store
	if eopts.Logger == nil {
		eopts.Logger = testlog.New()
	}
	eng, err := engine.Open(eopts)
	if err != nil {
		ln.Close()
		s.tb.Fatalf("engine.Open: %v", err)
	}
	sopts.Engine = eng
	if sopts.Logger == nil {
		sopts.Logger = testlog.New()
	}
	srv, err := server.New(sopts)
	if err != nil {
		_ = eng.Close(context.Background())
		ln.Close()
		s.tb.Fatalf("server.New: %v", err)
	}
	s.Engine, s.Server, s.done, s.stopOnce = eng, srv, make(chan struct{}), &sync.Once{}
	go func(done chan struct{}) {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.tb.Errorf("serve: %v", err)
		}
	}(s.done)
}

// Stop shuts the stack down as the binary does: HTTP first (in-flight
// requests finish), then the engine (writes and compactions finish). The
// store stays open. Stopping twice is harmless.
func (s *Stack) Stop() {
	s.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.Server.Shutdown(ctx); err != nil {
			s.tb.Errorf("server shutdown: %v", err)
		}
		<-s.done
		if err := s.Engine.Close(ctx); err != nil {
			s.tb.Errorf("engine close: %v", err)
		}
		s.transport.CloseIdleConnections()
	})
}

// Restart stops the stack and starts a fresh engine and server on the same
// store and address: no record is hot any more, as after a process
// restart.
func (s *Stack) Restart() {
	s.tb.Helper()
	s.RestartWith(s.Store)
}

// RestartWith stops the stack and starts it again on st (the same store
// reopened, say, as an operator restarts the binary), at the same address.
func (s *Stack) RestartWith(st store.Store) {
	s.tb.Helper()
	s.Stop()
	s.Store = st
	// The port was ours a moment ago; Go listeners set SO_REUSEADDR, so
	// binding it again right away works.
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		s.tb.Fatalf("restart: listen %s: %v", s.Addr, err)
	}
	s.start(ln)
}
