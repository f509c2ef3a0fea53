package benchmarks

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/dynamerge/dynamerge/store"
	"github.com/dynamerge/dynamerge/store/bolt"
)

func newCountingBolt(tb testing.TB) *CountingStore {
	tb.Helper()
	st, err := bolt.Open(filepath.Join(tb.TempDir(), "count.db"), nil)
	if err != nil {
		tb.Fatalf("bolt.Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := st.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return NewCountingStore(st)
}

func TestCountingStore(t *testing.T) {
	ctx := context.Background()
	s := newCountingBolt(t)
	key := store.Key{Collection: "bench", ID: "r1"}
	meta := store.AppendMeta{Heads: []string{}}

	if err := s.Append(ctx, key, store.Entry{Seq: 1, Changes: []byte("a")}, meta); err != nil {
		t.Fatalf("Append seq 1: %v", err)
	}
	// Seq 1 again loses: counted as an append and as an error, and the
	// store's sentinel comes through unwrapped.
	if err := s.Append(ctx, key, store.Entry{Seq: 1, Changes: []byte("b")}, meta); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Append seq 1 twice: %v, want ErrConflict", err)
	}
	if err := s.Append(ctx, key, store.Entry{Seq: 2, Changes: []byte("c")}, meta); err != nil {
		t.Fatalf("Append seq 2: %v", err)
	}
	rec, err := s.Load(ctx, key)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := rec.Seq, uint64(2); got != want {
		t.Fatalf("Load().Seq=%d, want %d", got, want)
	}
	if _, err := s.Load(ctx, store.Key{Collection: "bench", ID: "none"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load of a missing record: %v, want ErrNotFound", err)
	}
	entries, err := s.ReadLog(ctx, key, 1)
	if err != nil || len(entries) != 1 {
		t.Fatalf("ReadLog after 1: %d entries, %v; want 1", len(entries), err)
	}
	if err := s.SaveSnapshot(ctx, key, store.Snapshot{Seq: 1, Data: []byte("snap")}); err != nil {
		t.Fatalf("SaveSnapshot: %v", err)
	}

	want := StoreCounts{Loads: 2, ReadLogs: 1, Appends: 3, AppendErrors: 1, Snapshots: 1}
	if got := s.Counts(); got != want {
		t.Fatalf("Counts()=%+v, want %+v", got, want)
	}
	if got, want := s.Counts().Sub(StoreCounts{Loads: 1, Appends: 2}), (StoreCounts{Loads: 1, ReadLogs: 1, Appends: 1, AppendErrors: 1, Snapshots: 1}); got != want {
		t.Fatalf("Sub()=%+v, want %+v", got, want)
	}
}
