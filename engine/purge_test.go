package engine

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/internal/textgen"
	"github.com/dynamerge/dynamerge/store"
)

// hookStore runs beforePurge right before each Purge reaches the store.
type hookStore struct {
	store.Store
	beforePurge func()
}

func (h *hookStore) Purge(ctx context.Context, key store.Key, seq uint64, roots []string) error {
	if h.beforePurge != nil {
		h.beforePurge()
	}
	return h.Store.Purge(ctx, key, seq, roots)
}

// TestPurge: a record deleted for longer than PurgeAfter loses its history;
// the tombstone refuses its old history (pulls, stale pushes, its root)
// with ErrGone, survives a restart, and lets a new history start under the
// same id.
func TestPurge(t *testing.T) {
	ctx := context.Background()
	st := newBolt(t)
	e, _ := newEngine(t, st, Options{PurgeAfter: time.Hour})
	key := store.Key{Collection: "todos", ID: "p"}

	old := newReplica()
	first := old.edit(t, "title", "milk")
	if res := old.push(t, e, key, first); res.Err != nil {
		t.Fatal(res.Err)
	}
	stale := old.edit(t, "title", "oat milk") // never pushed before the purge
	if _, err := e.SetDeleted(ctx, key, true, ""); err != nil {
		t.Fatal(err)
	}
	if n, err := e.Purge(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("Purge within the retention = %d, %v; want nothing", n, err)
	}
	if n, err := e.Purge(ctx, time.Now().Add(2*time.Hour)); err != nil || n != 1 {
		t.Fatalf("Purge after the retention = %d, %v; want 1", n, err)
	}
	if e.Stats().Purges != 1 {
		t.Fatalf("Stats().Purges = %d", e.Stats().Purges)
	}

	gone := func(t *testing.T, e *Engine) {
		t.Helper()
		if _, err := e.View(ctx, key, nil); !errors.Is(err, ErrGone) {
			t.Fatalf("View of a purged record = %v, want ErrGone", err)
		}
		if res := sync1(t, e, DocRequest{Key: key}); !errors.Is(res.Err, ErrGone) {
			t.Fatalf("a pull of a purged record = %v, want ErrGone", res.Err)
		}
		if res := sync1(t, e, DocRequest{Key: key, Changes: stale}); !errors.Is(res.Err, ErrGone) {
			t.Fatalf("a stale device's edit = %v, want ErrGone", res.Err)
		}
		if res := sync1(t, e, DocRequest{Key: key, Changes: append(append([]byte{}, first...), stale...)}); !errors.Is(res.Err, ErrGone) {
			t.Fatalf("a stale device's whole history = %v, want ErrGone", res.Err)
		}
		if _, err := e.SetDeleted(ctx, key, false, ""); !errors.Is(err, ErrGone) {
			t.Fatalf("undelete of a purged record = %v, want ErrGone", err)
		}
	}
	gone(t, e)
	rec, err := st.Load(ctx, key)
	if err != nil || !rec.Purged || len(rec.Roots) != 1 || rec.Roots[0] != mustHash(t, first).String() {
		t.Fatalf("the store's tombstone = %+v %v", rec, err)
	}

	// Another process, after a restart: the same.
	e.Close(ctx)
	e, _ = newEngine(t, st, Options{PurgeAfter: time.Hour})
	gone(t, e)

	// A new history under the same id is a new record.
	fresh := newReplica()
	if res := fresh.push(t, e, key, fresh.edit(t, "title", "bread")); res.Err != nil {
		t.Fatalf("a new history was refused: %v", res.Err)
	}
	if v, err := e.View(ctx, key, nil); err != nil || v.Deleted || string(v.Doc) != `{"title":"bread"}` {
		t.Fatalf("View of the new history = %+v %v", v, err)
	}
	// The purged history still cannot come back into it.
	if res := sync1(t, e, DocRequest{Key: key, Changes: first}); !errors.Is(res.Err, ErrGone) {
		t.Fatalf("the purged root pushed into the new history = %v, want ErrGone", res.Err)
	}
}

// TestPurgeLosesToUndelete forces the interleaving: the store lists the
// record as deleted, then another process undeletes it, then the purge
// reaches the store. The undelete was acknowledged first: it wins.
func TestPurgeLosesToUndelete(t *testing.T) {
	ctx := context.Background()
	bs := newBolt(t)
	hs := &hookStore{Store: bs}
	e, _ := newEngine(t, hs, Options{PurgeAfter: time.Hour})
	other, _ := newEngine(t, bs, Options{}) // another process on the same store
	key := store.Key{Collection: "todos", ID: "race"}
	r := newReplica()
	if res := r.push(t, e, key, r.edit(t, "title", "keep me")); res.Err != nil {
		t.Fatal(res.Err)
	}
	if _, err := e.SetDeleted(ctx, key, true, ""); err != nil {
		t.Fatal(err)
	}
	var undeleted []crdt.Hash
	hs.beforePurge = func() {
		var err error
		if undeleted, err = other.SetDeleted(ctx, key, false, ""); err != nil {
			t.Errorf("the other process's undelete: %v", err)
		}
	}
	if n, err := e.Purge(ctx, time.Now().Add(2*time.Hour)); err != nil || n != 0 {
		t.Fatalf("Purge racing an undelete = %d, %v; want nothing purged", n, err)
	}
	if len(undeleted) == 0 {
		t.Fatal("the hook did not run")
	}
	v, err := e.View(ctx, key, nil)
	if err != nil || v.Deleted || string(v.Doc) != `{"title":"keep me"}` {
		t.Fatalf("after the race: %+v %v, want the record undeleted", v, err)
	}
}

var purgeRecords = flag.Int("purge.records", 0, "TestMeasurePurgeSweep: records in the store (0 skips)")

// TestMeasurePurgeSweep times a sweep on bbolt: purge.records records, 1%
// of them deleted long ago. Run with -purge.records 100000 -v.
func TestMeasurePurgeSweep(t *testing.T) {
	n := *purgeRecords
	if n == 0 {
		t.Skip("measurement: -purge.records N")
	}
	ctx := context.Background()
	st := newBolt(t)
	actor := []byte("5e7e75e75e7e75e75e7e75e75e7e75e7")
	yes := crdt.BoolValue(true)
	start := time.Now()
	for i := range n {
		key := store.Key{Collection: "todos", ID: fmt.Sprintf("r%06d", i)}
		w := textgen.NewWriters(1, "text")[0]
		c1, c2 := w.Create(), w.Type("a todo")
		entry := append(append([]byte{}, c1.Raw...), c2.Raw...)
		deleted := i%100 == 0
		heads := []string{c2.Hash.String()}
		if deleted {
			ix := crdt.NewIndex()
			if err := ix.AddAll([]crdt.Change{c1, c2}); err != nil {
				t.Fatal(err)
			}
			del, _, err := ix.ReservedChange(actor, crdt.DeletedKey, &yes, 0)
			if err != nil {
				t.Fatal(err)
			}
			entry, heads = append(entry, del.Raw...), []string{del.Hash.String()}
		}
		if err := st.Append(ctx, key, store.Entry{Seq: 1, Changes: entry}, store.AppendMeta{Heads: heads, Size: int64(len(entry)), Deleted: deleted}); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("wrote %d records in %v", n, time.Since(start))
	e, _ := newEngine(t, st, Options{PurgeAfter: time.Hour})
	start = time.Now()
	list, err := st.DeletedBefore(ctx, time.Now().Add(time.Hour), n)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("listing the %d deleted records: %v", len(list), time.Since(start))
	start = time.Now()
	purged, err := e.Purge(ctx, time.Now().Add(2*time.Hour))
	if err != nil || purged != n/100 {
		t.Fatalf("Purge = %d, %v; want %d", purged, err, n/100)
	}
	d := time.Since(start)
	t.Logf("sweep of %d records, %d deleted: %v (%v per purged record)", n, purged, d, d/time.Duration(purged))
	start = time.Now()
	if again, err := e.Purge(ctx, time.Now().Add(2*time.Hour)); err != nil || again != 0 {
		t.Fatalf("second sweep = %d, %v", again, err)
	}
	t.Logf("a sweep with nothing to purge: %v", time.Since(start))
}
