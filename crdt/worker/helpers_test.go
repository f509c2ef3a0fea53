package worker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/dynamerge/dynamerge/crdt"
)

// newTestPool starts a pool with quiet logs (unless -v) and closes it when
// the test ends, checking that Close leaves no worker behind.
func newTestPool(tb testing.TB, opts Options) *Pool {
	tb.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(tb)
	}
	if opts.Stderr == nil && os.Getenv("DYNAMERGE_TEST_WORKER_STDERR") == "" {
		// Poison tests make workers dump stacks; the pool's log of each
		// death quotes the lines that matter.
		opts.Stderr = io.Discard
	}
	p, err := NewPool(opts)
	if err != nil {
		tb.Fatalf("NewPool: %v", err)
	}
	tb.Cleanup(func() {
		pids := p.pids()
		if err := p.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
		for _, pid := range pids {
			if processAlive(pid) {
				tb.Errorf("worker %d still running after Close", pid)
			}
		}
	})
	return p
}

func testLogger(tb testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.Default()
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// pids returns the pids of the live workers.
func (p *Pool) pids() []int {
	var out []int
	for _, s := range p.slots {
		s.mu.Lock()
		if s.cur != nil && !s.cur.isDead() {
			out = append(out, s.cur.pid)
		}
		s.mu.Unlock()
	}
	return out
}

// processAlive reports whether pid runs: it exists and is not a zombie
// (an orphan whose reaper has not collected it yet is dead).
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...; comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z'
}

// record plays the engine's part for one record: its change-log (one change
// chunk per seq) and a BaseFunc that counts its calls.
type record struct {
	key     string
	doc     *automerge.Doc
	log     [][]byte // log[i] is the change at seq i+1
	made    int      // changes made
	pending []byte   // made, not yet accepted
	text    bool     // changes append to a text instead of setting keys
	snap    bool     // base gives a snapshot instead of the changes
	bases   atomic.Int64
	mu      sync.Mutex
}

func newRecord(tb testing.TB, key string) *record {
	tb.Helper()
	doc := automerge.New()
	if err := doc.SetActorID(fmt.Sprintf("%032x", len(key)*7919+int(key[len(key)-1]))); err != nil {
		tb.Fatal(err)
	}
	return &record{key: key, doc: doc}
}

// next makes the record's next change (a counter and a growing text) and
// returns it without adding it to the log.
func (r *record) next(tb testing.TB) []byte {
	tb.Helper()
	r.made++
	n := r.made
	if err := r.doc.RootMap().Set("n", n); err != nil {
		tb.Fatal(err)
	}
	if r.text {
		if n == 1 {
			if err := r.doc.RootMap().Set("body", automerge.NewText("")); err != nil {
				tb.Fatal(err)
			}
		} else if err := r.doc.Path("body").Text().Append(fmt.Sprintf("line %04d of a text that grows.\n", n)); err != nil {
			tb.Fatal(err)
		}
	} else if err := r.doc.RootMap().Set(fmt.Sprintf("k%d", n%10), fmt.Sprintf("%s line %d of a record that grows", r.key, n)); err != nil {
		tb.Fatal(err)
	}
	h, err := r.doc.Commit(fmt.Sprintf("change %d", n))
	if err != nil {
		tb.Fatal(err)
	}
	ch, err := r.doc.Change(h)
	if err != nil {
		tb.Fatal(err)
	}
	return ch.Save()
}

// grow adds n changes to the log (not to any worker).
func (r *record) grow(tb testing.TB, n int) {
	tb.Helper()
	for i := 0; i < n; i++ {
		r.log = append(r.log, r.next(tb))
	}
}

func (r *record) seq() uint64 { return uint64(len(r.log)) }

// base returns the record's state at seq, as the engine would from its store.
func (r *record) base(seq uint64) BaseFunc {
	return func() (Base, error) {
		r.bases.Add(1)
		var b []byte
		for _, c := range r.log[:seq] {
			b = append(b, c...)
		}
		if !r.snap {
			return Base{Seq: seq, Changes: b}, nil
		}
		// Compacted, as a store holds a record after compaction.
		d := automerge.New()
		if err := d.LoadIncremental(b); err != nil {
			return Base{}, err
		}
		return Base{Seq: seq, Snapshot: d.Save()}, nil
	}
}

// push applies the record's next change through the pool and appends it to
// the log on success.
func (r *record) push(ctx context.Context, tb testing.TB, p *Pool) error {
	tb.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	// A change that failed to go in is sent again: later changes of the
	// document depend on it.
	if r.pending == nil {
		r.pending = r.next(tb)
	}
	from := r.seq()
	if err := p.Apply(ctx, r.key, from, from+1, r.base(from), r.pending); err != nil {
		return err
	}
	r.log = append(r.log, r.pending)
	r.pending = nil
	return nil
}

// offLog returns n chained changes made on a fork of the record's document:
// they depend on the record's history, but the record's own later changes
// do not depend on them.
func (r *record) offLog(tb testing.TB, n int) [][]byte {
	tb.Helper()
	fork, err := r.doc.Fork()
	if err != nil {
		tb.Fatal(err)
	}
	if err := fork.SetActorID("ff00ff00ff00ff00ff00ff00ff00ff00"); err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for i := range n {
		if err := fork.RootMap().Set("fork", i); err != nil {
			tb.Fatal(err)
		}
		h, err := fork.Commit("fork")
		if err != nil {
			tb.Fatal(err)
		}
		ch, err := fork.Change(h)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, ch.Save())
	}
	return out
}

func heads(tb testing.TB, d *automerge.Doc) []string {
	tb.Helper()
	var hs []crdt.Hash
	for _, h := range d.Heads() {
		hs = append(hs, crdt.Hash(h))
	}
	return crdt.HashStrings(hs)
}

func ctxTimeout(tb testing.TB, d time.Duration) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}
