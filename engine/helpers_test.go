package engine

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/internal/amgo"
	"github.com/dynamerge/dynamerge/internal/testlog"
	"github.com/dynamerge/dynamerge/store"
	"github.com/dynamerge/dynamerge/store/bolt"
)

func quietLogger() *slog.Logger { return testlog.New() }

// newBolt opens a bolt store on a temporary file.
func newBolt(tb testing.TB) store.Store {
	tb.Helper()
	s, err := bolt.Open(filepath.Join(tb.TempDir(), "engine.db"), nil)
	if err != nil {
		tb.Fatalf("bolt.Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// newEngine opens an engine on st (wrapped in a faultStore), closed at the
// end of the test.
func newEngine(tb testing.TB, st store.Store, opts Options) (*Engine, *faultStore) {
	tb.Helper()
	fs := &faultStore{Store: st}
	opts.Store = fs
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	e, err := Open(opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.Close(ctx); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return e, fs
}

// faultStore wraps a store to count appends and inject faults.
type faultStore struct {
	store.Store
	appends  atomic.Int64          // successful appends
	failNext atomic.Int32          // fail this many coming appends with failWith
	failWith atomic.Pointer[error] // errInjected when nil
	delay    atomic.Int64          // nanoseconds every append sleeps first
	// before, when set, runs before each append (to let another "process"
	// take the seq first).
	before atomic.Pointer[func(store.Key, store.Entry)]
}

var errInjected = errors.New("injected store failure")

func (s *faultStore) Append(ctx context.Context, key store.Key, e store.Entry, meta store.AppendMeta) error {
	if f := s.before.Load(); f != nil {
		(*f)(key, e)
	}
	if d := s.delay.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	if s.failNext.Add(-1) >= 0 {
		if err := s.failWith.Load(); err != nil {
			return *err
		}
		return errInjected
	}
	s.failNext.Store(0) // keep it from going ever more negative
	err := s.Store.Append(ctx, key, e, meta)
	if err == nil {
		s.appends.Add(1)
	}
	return err
}

// replica is a client's copy of a record, made with automerge-go: trusted
// test code producing real Automerge changes.
type replica struct {
	doc *automerge.Doc
}

func newReplica() *replica { return &replica{doc: automerge.New()} }

// edit sets key to val and returns the change chunk of that edit.
func (r *replica) edit(tb testing.TB, key string, val any) []byte {
	tb.Helper()
	_, c := amgo.Edit(tb, r.doc, key, val)
	return c
}

// apply merges change chunks the server sent.
func (r *replica) apply(tb testing.TB, b []byte) {
	tb.Helper()
	if len(b) == 0 {
		return
	}
	if err := r.doc.LoadIncremental(b); err != nil {
		tb.Fatalf("LoadIncremental: %v", err)
	}
}

func (r *replica) heads() []crdt.Hash {
	var hs []crdt.Hash
	for _, h := range r.doc.Heads() {
		hs = append(hs, crdt.Hash(h))
	}
	slices.SortFunc(hs, func(a, b crdt.Hash) int { return slices.Compare(a[:], b[:]) })
	return hs
}

// sync1 syncs one record and fails the test on a whole-call error.
func sync1(tb testing.TB, e *Engine, req DocRequest) DocResult {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := e.Sync(ctx, []DocRequest{req})
	if err != nil {
		tb.Fatalf("Sync: %v", err)
	}
	if len(res) != 1 {
		tb.Fatalf("Sync returned %d results, want 1", len(res))
	}
	return res[0]
}

// push sends changes with the replica's current heads as have, applies what
// comes back, and returns the result.
func (r *replica) push(tb testing.TB, e *Engine, key store.Key, changes []byte) DocResult {
	tb.Helper()
	res := sync1(tb, e, DocRequest{Key: key, Have: r.heads(), Changes: changes})
	if res.Err == nil {
		r.apply(tb, res.Changes)
	}
	return res
}

// storedHashes returns every change hash the store holds for key, by
// loading it the way a cold engine would.
func storedHashes(tb testing.TB, e *Engine, key store.Key) map[crdt.Hash]bool {
	tb.Helper()
	r := newRecord(key)
	if err := e.load(context.Background(), r); err != nil {
		tb.Fatalf("load %s: %v", key, err)
	}
	out := map[crdt.Hash]bool{}
	r.ix.Walk(0, func(c crdt.ChangeInfo) bool {
		out[c.Hash] = true
		return true
	})
	return out
}

func hashSet(hs []crdt.Hash) map[crdt.Hash]bool {
	m := map[crdt.Hash]bool{}
	for _, h := range hs {
		m[h] = true
	}
	return m
}

func mustHash(tb testing.TB, chunk []byte) crdt.Hash {
	tb.Helper()
	cs, err := crdt.Split(chunk)
	if err != nil || len(cs) != 1 {
		tb.Fatalf("Split: %v (%d changes)", err, len(cs))
	}
	return cs[0].Hash
}

var todo = func(id string) store.Key { return store.Key{Collection: "todos", ID: id} }
