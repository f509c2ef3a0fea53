package integration

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/server"
	"github.com/dynamerge/dynamerge/store"
)

func TestMain(m *testing.M) {
	os.Exit(m.Run())
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// stack is one dynamerge "process": an engine on a store, served over HTTP.
type stack struct {
	eng    *engine.Engine
	http   *httptest.Server
	client *client.Client
}

// newStack starts an engine and server on st; they stop (the store stays
// open) at the end of the test or at stop.
func newStack(tb testing.TB, st store.Store, eopts engine.Options) *stack {
	tb.Helper()
	eopts.Store, eopts.Logger = st, quiet()
	eng, err := engine.Open(eopts)
	if err != nil {
		tb.Fatalf("engine.Open: %v", err)
	}
	srv, err := server.New(server.Options{Engine: eng, Logger: quiet()})
	if err != nil {
		tb.Fatalf("server.New: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	s := &stack{eng: eng, http: hs, client: client.New(hs.URL)}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				tb.Errorf("server Shutdown: %v", err)
			}
			hs.Close()
			if err := eng.Close(ctx); err != nil {
				tb.Errorf("engine Close: %v", err)
			}
		})
	}
	tb.Cleanup(stop)
	return s
}

// doc is a client's copy of one record, made with automerge-go.
type doc struct {
	key     store.Key
	am      *automerge.Doc
	pending [][]byte // changes made but not yet acknowledged
	made    map[crdt.Hash]bool
}

func newDoc(key store.Key) *doc {
	return &doc{key: key, am: automerge.New(), made: map[crdt.Hash]bool{}}
}

// set sets a root key to a value and commits: one change, kept pending.
func (d *doc) set(tb testing.TB, k string, v any) {
	tb.Helper()
	if err := d.am.Path(k).Set(v); err != nil {
		tb.Fatalf("Set: %v", err)
	}
	h, err := d.am.Commit("set " + k)
	if err != nil {
		tb.Fatalf("Commit: %v", err)
	}
	c, err := d.am.Change(h)
	if err != nil {
		tb.Fatalf("Change: %v", err)
	}
	d.pending = append(d.pending, c.Save())
	d.made[crdt.Hash(h)] = true
}

func (d *doc) heads() []string {
	var hs []string
	for _, h := range d.am.Heads() {
		hs = append(hs, crdt.Hash(h).String())
	}
	slices.Sort(hs)
	return hs
}

func join(bs [][]byte) []byte { return slices.Concat(bs...) }

// randomText returns n random lowercase letters: text that does not
// compress, so that sizes in the store are what the test says.
func randomText(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = 'a' + b[i]%26
	}
	return string(b)
}
