package dynamo_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/dynamerge/dynamerge/store"
	"github.com/dynamerge/dynamerge/store/dynamo"
	"github.com/dynamerge/dynamerge/store/dynamo/dynamotest"
)

// The crash points of Append's write path (append.go): after the log item
// is put and before the meta item is updated. A writer whose meta updates
// all fail stands in for one that crashed there: its log item is stored,
// its meta update never happens. Each test shows who completes it (a
// reader, the next writer, a snapshot, a purge) or, for the one case where
// the entry may go (a purge committed before the put), that it was never
// acknowledged and no read ever returned it.

// twoStores returns, on one fresh table, a healthy store and a writer that
// "crashes" between its two writes (every meta update fails).
func twoStores(t *testing.T) (healthy, crashing *dynamo.Store, table string) {
	t.Helper()
	client, table := oneTable(t)
	return dynamo.New(client, table, nil), crashingOn(client, table), table
}

// oneTable returns a client and a fresh table (without a stream) for
// several stores to share.
func oneTable(t *testing.T) (*dynamodb.Client, string) {
	t.Helper()
	client := dynamotest.Client(t)
	return client, dynamotest.NewTable(t, client, dynamotest.WithoutStream)
}

// crashingOn is a store on table whose meta updates all fail.
func crashingOn(client *dynamodb.Client, table string) *dynamo.Store {
	return injecting(client, table, onMeta(dynamotest.OpUpdateItem, 1<<30, dynamotest.Fault{Err: dynamotest.Throttled()}))
}

// injecting is a store on table whose calls go through inject.
func injecting(client *dynamodb.Client, table string, inject func(string, any) dynamotest.Fault) *dynamo.Store {
	return dynamo.New(&dynamotest.Faults{API: client, Inject: inject}, table, nil)
}

// deleted is meta(seq) of an append that deletes the record.
func deleted(seq uint64) store.AppendMeta {
	m := meta(seq)
	m.Deleted = true
	return m
}

// later is a store on table whose clock is past PendingGrace: it completes
// the pending entries it reads.
func later(t *testing.T, table string) *dynamo.Store {
	return dynamo.New(dynamotest.Client(t), table, &dynamo.Options{Now: func() time.Time { return time.Now().Add(2 * dynamo.PendingGrace) }})
}

func crash(t *testing.T, s *dynamo.Store, e store.Entry, m store.AppendMeta) {
	t.Helper()
	if err := s.Append(context.Background(), testKey, e, m); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Append(%d) with every meta update failing = %v, want ErrUnavailable", e.Seq, err)
	}
}

func TestPendingEntryCompletedByReader(t *testing.T) {
	dynamotest.Endpoint(t)
	ctx := context.Background()
	h, w, table := twoStores(t)
	e1, e2 := entry(1, 100), entry(2, 100)
	if err := h.Append(ctx, testKey, e1, meta(1)); err != nil {
		t.Fatal(err)
	}
	crash(t, w, e2, meta(2))

	// Every read returns the stored entry at once; within PendingGrace a
	// reader leaves its completion to the writer.
	checkLog(t, h, e1, e2)
	if rec, err := h.Load(ctx, testKey); err != nil || rec.Seq != 2 || len(rec.Entries) != 2 {
		t.Fatalf("Load = %+v, %v; want seq 2 with 2 entries", rec, err)
	}
	if c := h.Capacity(); c.Completed != 0 {
		t.Fatalf("a reader within the grace completed %d entries", c.Completed)
	}
	checkFeed(t, h, meta(1))

	// Past it, the reader completes it: the feed moves to seq 2.
	r := later(t, table)
	got, err := r.ReadLog(ctx, testKey, 1)
	if err != nil || len(got) != 1 || got[0].Seq != 2 {
		t.Fatalf("ReadLog(1) = %+v, %v; want entry 2", got, err)
	}
	if c := r.Capacity(); c.Completed != 1 {
		t.Fatalf("reader completed %d entries, want 1", c.Completed)
	}
	checkFeed(t, h, meta(2))
	checkLog(t, h, e1, e2)
	// The completion moved the record in the feed to its own time (the
	// late reader's clock), so that feed readers that went past the
	// entry's time meanwhile list it again.
	rec, err := h.Load(ctx, testKey)
	if err != nil || rec.UpdatedAt.Before(time.Now().Add(dynamo.PendingGrace)) {
		t.Fatalf("Load after completion = updated %v, %v; want the completer's time (now + %v)", rec.UpdatedAt, err, 2*dynamo.PendingGrace)
	}
}

func TestPendingFirstEntry(t *testing.T) {
	dynamotest.Endpoint(t)
	ctx := context.Background()
	h, w, table := twoStores(t)
	e1, e2 := entry(1, 100), entry(2, 100)
	crash(t, w, e1, meta(1))

	// No meta item yet: the record is its log.
	rec, err := h.Load(ctx, testKey)
	if err != nil || rec.Seq != 1 || len(rec.Entries) != 1 {
		t.Fatalf("Load = %+v, %v; want seq 1 with 1 entry", rec, err)
	}
	// A late reader's Load completes it.
	if rec, err := later(t, table).Load(ctx, testKey); err != nil || rec.Seq != 1 || rec.UpdatedAt.IsZero() {
		t.Fatalf("late Load = %+v, %v; want seq 1 with its meta", rec, err)
	}
	checkFeed(t, h, meta(1))
	if err := h.Append(ctx, testKey, e2, meta(2)); err != nil {
		t.Fatal(err)
	}
	checkLog(t, h, e1, e2)
}

func TestPendingEntryCompletedByNextWriter(t *testing.T) {
	dynamotest.Endpoint(t)
	ctx := context.Background()
	for _, first := range []bool{true, false} {
		h, w, _ := twoStores(t)
		e1, e2, e3 := entry(1, 100), entry(2, 100), entry(3, 100)
		var want []store.Entry
		if !first {
			if err := h.Append(ctx, testKey, e1, meta(1)); err != nil {
				t.Fatal(err)
			}
			crash(t, w, e2, meta(2))
			want = []store.Entry{e1, e2, e3}
		} else {
			crash(t, w, e1, meta(1))
			e2 = entry(2, 100)
			want = []store.Entry{e1, e2}
			e3 = e2
		}
		// The next writer (it read the stored entry, as the engine does)
		// completes it first, then appends.
		if err := h.Append(ctx, testKey, e3, meta(e3.Seq)); err != nil {
			t.Fatalf("first=%v: Append(%d) after a crashed writer = %v", first, e3.Seq, err)
		}
		if c := h.Capacity(); c.Completed != 1 {
			t.Fatalf("first=%v: next writer completed %d entries, want 1", first, c.Completed)
		}
		checkLog(t, h, want...)
		checkFeed(t, h, meta(e3.Seq))
		// A gap is still refused, and a taken seq too.
		if err := h.Append(ctx, testKey, entry(e3.Seq+2, 10), meta(e3.Seq+2)); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("Append past the end = %v, want ErrConflict", err)
		}
		if err := h.Append(ctx, testKey, entry(e3.Seq, 10), meta(e3.Seq)); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("Append of a taken seq = %v, want ErrConflict", err)
		}
		checkLog(t, h, want...)
	}
}

// TestPendingRacesItsWriter: a reader completes an entry while its writer's
// meta update is in flight; the writer's update then finds the meta moved,
// sees its seq reached, and succeeds. The entry is stored once.
func TestPendingRacesItsWriter(t *testing.T) {
	dynamotest.Endpoint(t)
	ctx := context.Background()
	client, table := oneTable(t)
	r := later(t, table)
	var raced atomic.Bool
	w := injecting(client, table, func(op string, in any) dynamotest.Fault {
		if op == dynamotest.OpUpdateItem && skOf(in) == dynamo.SKMeta && raced.CompareAndSwap(false, true) {
			if _, err := r.ReadLog(ctx, testKey, 0); err != nil {
				t.Errorf("reader: %v", err)
			}
		}
		return dynamotest.Fault{}
	})
	e1 := entry(1, 100)
	if err := w.Append(ctx, testKey, e1, meta(1)); err != nil {
		t.Fatalf("Append raced by a completing reader = %v, want nil", err)
	}
	if c := r.Capacity(); c.Completed != 1 {
		t.Fatalf("reader completed %d entries, want 1", c.Completed)
	}
	checkLog(t, w, e1)
	checkFeed(t, w, meta(1))
}

// TestPurgeKeepsPendingEntry: a purge never discards a stored entry: with
// an undelete stored past the deleted seq, Purge refuses (ErrConflict) and
// completes it.
func TestPurgeKeepsPendingEntry(t *testing.T) {
	dynamotest.Endpoint(t)
	ctx := context.Background()
	h, w, _ := twoStores(t)
	e1, e2 := entry(1, 100), entry(2, 100)
	if err := h.Append(ctx, testKey, e1, deleted(1)); err != nil {
		t.Fatal(err)
	}
	crash(t, w, e2, meta(2)) // the undelete
	if err := h.Purge(ctx, testKey, 1, nil); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Purge with an entry stored after its seq = %v, want ErrConflict", err)
	}
	rec, err := h.Load(ctx, testKey)
	if err != nil || rec.Seq != 2 || !rec.DeletedAt.IsZero() || rec.Purged {
		t.Fatalf("Load = %+v, %v; want seq 2, not deleted, not purged", rec, err)
	}
	checkLog(t, h, e1, e2)
	checkFeed(t, h, meta(2))
}

// TestPurgeBeforePut: a purge commits between a writer's read of the meta
// item and its put. The put lands under the tombstone's seq, where no read
// looks; the writer's meta update fails and it answers ErrConflict (never
// acknowledged), and the record goes on after the tombstone.
func TestPurgeBeforePut(t *testing.T) {
	dynamotest.Endpoint(t)
	ctx := context.Background()
	client, table := oneTable(t)
	h := dynamo.New(client, table, nil)
	if err := h.Append(ctx, testKey, entry(1, 100), deleted(1)); err != nil {
		t.Fatal(err)
	}
	var purged atomic.Bool
	w := injecting(client, table, func(op string, in any) dynamotest.Fault {
		if op == dynamotest.OpPutItem && purged.CompareAndSwap(false, true) {
			if err := h.Purge(ctx, testKey, 1, []string{"root"}); err != nil {
				t.Errorf("Purge = %v", err)
			}
		}
		return dynamotest.Fault{}
	})
	if err := w.Append(ctx, testKey, entry(2, 100), meta(2)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Append overtaken by a purge = %v, want ErrConflict", err)
	}
	rec, err := h.Load(ctx, testKey)
	if err != nil || !rec.Purged || rec.Seq != 2 || len(rec.Entries) != 0 {
		t.Fatalf("Load = %+v, %v; want the tombstone at seq 2, no entries", rec, err)
	}
	if got, err := later(t, table).ReadLog(ctx, testKey, 2); err != nil || len(got) != 0 {
		t.Fatalf("ReadLog(2) = %+v, %v; want nothing", got, err)
	}
	e3 := entry(3, 100)
	if err := h.Append(ctx, testKey, e3, store.AppendMeta{Heads: meta(3).Heads, NewHistory: true}); err != nil {
		t.Fatalf("Append(3) after the tombstone = %v", err)
	}
	got, err := h.ReadLog(ctx, testKey, 2)
	if err != nil || len(got) != 1 || got[0].Seq != 3 {
		t.Fatalf("ReadLog(2) = %+v, %v; want entry 3", got, err)
	}
}

// TestSnapshotCompletesPending: a snapshot may include a stored entry whose
// meta update is pending (readers return it); SaveSnapshot completes it.
func TestSnapshotCompletesPending(t *testing.T) {
	dynamotest.Endpoint(t)
	ctx := context.Background()
	h, w, _ := twoStores(t)
	if err := h.Append(ctx, testKey, entry(1, 100), meta(1)); err != nil {
		t.Fatal(err)
	}
	crash(t, w, entry(2, 100), meta(2))
	if err := h.SaveSnapshot(ctx, testKey, store.Snapshot{Seq: 2, Data: []byte("doc at 2")}); err != nil {
		t.Fatalf("SaveSnapshot(2) over a pending entry = %v", err)
	}
	rec, err := h.Load(ctx, testKey)
	if err != nil || rec.Seq != 2 || rec.Snapshot == nil || rec.Snapshot.Seq != 2 || len(rec.Entries) != 0 {
		t.Fatalf("Load = %+v, %v; want the snapshot at 2", rec, err)
	}
	checkFeed(t, h, meta(2))
}

// TestPendingEntryBeforeASkippedRead: a writer that read the stored entry
// (so knows it exists) appends the next seq without reading the meta item;
// its meta update then finds the meta two behind, completes the entry
// before its own, and retries: both are in the feed, each stored once.
func TestPendingEntryBeforeASkippedRead(t *testing.T) {
	dynamotest.Endpoint(t)
	ctx := context.Background()
	client, table := oneTable(t)
	var mu sync.Mutex
	var ops []string
	h := injecting(client, table, func(op string, in any) dynamotest.Fault {
		mu.Lock()
		ops = append(ops, op+" "+skOf(in))
		mu.Unlock()
		return dynamotest.Fault{}
	})
	w := crashingOn(client, table)
	e1, e2, e3 := entry(1, 100), entry(2, 100), entry(3, 100)
	if err := h.Append(ctx, testKey, e1, meta(1)); err != nil {
		t.Fatal(err)
	}
	crash(t, w, e2, meta(2))
	checkLog(t, h, e1, e2) // h now knows entry 2 exists
	mu.Lock()
	ops = nil
	mu.Unlock()
	if err := h.Append(ctx, testKey, e3, meta(3)); err != nil {
		t.Fatalf("Append(3) after a pending entry 2 = %v", err)
	}
	if c := h.Capacity(); c.Completed != 1 {
		t.Fatalf("completed %d entries, want 1", c.Completed)
	}
	// No read of the meta item before the put.
	mu.Lock()
	first := ops[0]
	mu.Unlock()
	if !strings.HasPrefix(first, dynamotest.OpPutItem+" "+dynamo.SKLogPrefix) {
		t.Fatalf("Append began with %q, want the put of its log item (calls: %v)", first, ops)
	}
	checkLog(t, h, e1, e2, e3)
	checkFeed(t, h, meta(3))
}

// TestAppendMetaReadFails: a store that has not seen the record reads its
// meta item before the put (the gap check); if that read fails, nothing is
// written and the caller gets ErrUnavailable.
func TestAppendMetaReadFails(t *testing.T) {
	dynamotest.Endpoint(t)
	ctx := context.Background()
	client, table := oneTable(t)
	h := dynamo.New(client, table, nil)
	e1, e2 := entry(1, 100), entry(2, 100)
	if err := h.Append(ctx, testKey, e1, meta(1)); err != nil {
		t.Fatal(err)
	}
	fresh := injecting(client, table, onMeta(dynamotest.OpGetItem, 1, dynamotest.Fault{Err: dynamotest.Throttled()}))
	if err := fresh.Append(ctx, testKey, e2, meta(2)); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Append with its meta read throttled = %v, want ErrUnavailable", err)
	}
	checkLog(t, h, e1)
	if err := fresh.Append(ctx, testKey, e2, meta(2)); err != nil {
		t.Fatalf("Append again = %v", err)
	}
	checkLog(t, h, e1, e2)
	checkFeed(t, h, meta(2))
}
