package e2e

import (
	"path/filepath"
	"testing"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/internal/testutil"
	"github.com/dynamerge/dynamerge/server"
	"github.com/dynamerge/dynamerge/store/bolt"
)

// stack is the whole server side in this process (testutil.Stack) on a bolt
// file of its own. It can be restarted on the same file and port, as an
// operator would: the store is closed and opened again.
type stack struct {
	*testutil.Stack
	tb     testing.TB
	path   string
	store  *bolt.Store
	client *client.Client
}

// newStack starts a stack on a fresh bolt file and stops it at cleanup.
func newStack(tb testing.TB) *stack {
	tb.Helper()
	s := &stack{tb: tb, path: filepath.Join(tb.TempDir(), "dynamerge.db")}
	s.store = s.open()
	s.Stack = testutil.Start(tb, s.store, engine.Options{}, server.Options{})
	s.client = s.Client
	tb.Cleanup(func() {
		s.Stop()
		if err := s.store.Close(); err != nil {
			tb.Errorf("store close: %v", err)
		}
	})
	return s
}

func (s *stack) open() *bolt.Store {
	s.tb.Helper()
	st, err := bolt.Open(s.path, nil)
	if err != nil {
		s.tb.Fatalf("open bolt %s: %v", s.path, err)
	}
	return st
}

// restart stops the stack, closes the store, and starts again on the same
// file and port.
func (s *stack) restart() {
	s.tb.Helper()
	s.Stop()
	if err := s.store.Close(); err != nil {
		s.tb.Errorf("store close: %v", err)
	}
	s.store = s.open()
	s.RestartWith(s.store)
}
