package engine

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/store"
)

// pushAs pushes changes to key as by and fails the test on any error.
func pushAs(tb testing.TB, e *Engine, key store.Key, by string, changes ...[]byte) DocResult {
	tb.Helper()
	var b []byte
	for _, c := range changes {
		b = append(b, c...)
	}
	res := sync1(tb, e, DocRequest{Key: key, Changes: b, By: by})
	if res.Err != nil {
		tb.Fatalf("push as %q: %v", by, res.Err)
	}
	return res
}

func historyPage(tb testing.TB, e *Engine, key store.Key, cursor string, limit int) HistoryPage {
	tb.Helper()
	page, err := e.History(context.Background(), key, cursor, limit)
	if err != nil {
		tb.Fatalf("History(%s, %q, %d): %v", key, cursor, limit, err)
	}
	return page
}

// TestHistory_GroupCommitAttribution: pushes of different callers that one
// append stores together keep their own callers, and share its time.
func TestHistory_GroupCommitAttribution(t *testing.T) {
	e, fs := newEngine(t, newBolt(t), Options{})
	key := todo("group")
	pushAs(t, e, key, "first", newReplica().edit(t, "k", 0))
	fs.delay.Store(int64(20 * time.Millisecond)) // let the next pushes queue up
	const n = 6
	errs := make(chan error, n)
	want := map[crdt.Hash]string{}
	for i := range n {
		r := newReplica()
		change := r.edit(t, "k", i)
		want[r.heads()[0]] = fmt.Sprint("user-", i)
		go func() {
			res, err := e.Sync(context.Background(), []DocRequest{{Key: key, Changes: change, By: fmt.Sprint("user-", i)}})
			if err == nil {
				err = res[0].Err
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := fs.appends.Load(); got >= n+1 {
		t.Fatalf("%d appends for %d pushes: no group commit happened", got, n+1)
	}
	page := historyPage(t, e, key, "", 0)
	if len(page.Changes) != n+1 || page.More {
		t.Fatalf("history: %d changes, more %v", len(page.Changes), page.More)
	}
	for _, ch := range page.Changes[:n] {
		if ch.By != want[ch.Hash] {
			t.Fatalf("change %s by %q, want %q", ch.Hash, ch.By, want[ch.Hash])
		}
	}
	attr, err := e.Attribution(context.Background(), key, []crdt.Hash{page.Changes[0].Hash, {1}})
	if err != nil || len(attr) != 1 || attr[page.Changes[0].Hash].By != page.Changes[0].By || !attr[page.Changes[0].Hash].At.Equal(page.Changes[0].At) {
		t.Fatalf("Attribution = %v %v, want the newest change's only", attr, err)
	}
}

// TestHistory_HeaderSurvivesCompaction: the change's own time and message
// come from the index, also once the change is only in a snapshot and the
// record is loaded from it.
func TestHistory_HeaderSurvivesCompaction(t *testing.T) {
	st := newBolt(t)
	e, _ := newEngine(t, st, Options{CompactEvery: 4})
	key := todo("header")
	r := newReplica()
	before := time.Now().Unix() - 1
	for i := range 20 {
		pushAs(t, e, key, "alice", r.edit(t, fmt.Sprint("k", i), i))
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.Stats().Compactions == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if e.Stats().Compactions == 0 {
		t.Fatal("no compaction: the test would not check what it says")
	}
	check := func(e *Engine) {
		t.Helper()
		page := historyPage(t, e, key, "", 100)
		if len(page.Changes) != 20 {
			t.Fatalf("%d changes, want 20", len(page.Changes))
		}
		for i, ch := range page.Changes {
			if want := fmt.Sprint("edit k", 19-i); ch.Message != want || ch.Time < before || ch.By != "alice" || ch.Seq != uint64(20-i) {
				t.Fatalf("change %d: message %q time %d by %q seq %d, want %q, a time from %d, alice, seq %d", i, ch.Message, ch.Time, ch.By, ch.Seq, want, before, 20-i)
			}
		}
	}
	check(e)
	fresh, _ := newEngine(t, st, Options{CompactEvery: 4})
	check(fresh)
}

// TestHistory_Unattributed: changes stored before attribution existed (in
// the log, and compacted into a snapshot without rows) list with no by,
// oldest first, and the time of the next attributed change (or of the
// record's last append) as their upper bound.
func TestHistory_Unattributed(t *testing.T) {
	st := newBolt(t)
	ctx := context.Background()
	key := todo("old")
	r := newReplica()
	var raw [][]byte
	for i := range 3 {
		raw = append(raw, r.edit(t, fmt.Sprint("k", i), i))
	}
	// An older binary's writes: no attribution, a snapshot without rows.
	for i, c := range raw {
		if err := st.Append(ctx, key, store.Entry{Seq: uint64(i + 1), Changes: c}, store.AppendMeta{}); err != nil {
			t.Fatal(err)
		}
	}
	snapDoc := newReplica()
	snapDoc.apply(t, append(append([]byte{}, raw[0]...), raw[1]...))
	if err := st.SaveSnapshot(ctx, key, store.Snapshot{Seq: 2, Data: snapDoc.doc.Save()}); err != nil {
		t.Fatal(err)
	}
	lastOld, err := st.Load(ctx, key)
	if err != nil {
		t.Fatal(err)
	}

	e, _ := newEngine(t, st, Options{})
	page := historyPage(t, e, key, "", 0)
	if len(page.Changes) != 3 {
		t.Fatalf("%d changes, want 3", len(page.Changes))
	}
	for i, ch := range page.Changes {
		if ch.By != "" || !ch.At.Equal(lastOld.UpdatedAt.Truncate(time.Microsecond)) {
			t.Fatalf("old change %d: by %q at %v, want no one at the last append %v", i, ch.By, ch.At, lastOld.UpdatedAt)
		}
	}
	pushAs(t, e, key, "bob", r.edit(t, "new", 1))
	page = historyPage(t, e, key, "", 0)
	if len(page.Changes) != 4 || page.Changes[0].By != "bob" || page.Changes[0].At.Before(page.Changes[1].At) {
		t.Fatalf("after a new push: %+v", page.Changes)
	}

	// A fresh process: the old changes are bounded by the first attributed
	// one after them now.
	fresh, _ := newEngine(t, st, Options{})
	again := historyPage(t, fresh, key, "", 0)
	for i, ch := range again.Changes[1:] {
		if ch.By != "" || ch.At.After(again.Changes[0].At) {
			t.Fatalf("old change %d after a restart: by %q at %v, want no one, by %v", i, ch.By, ch.At, again.Changes[0].At)
		}
	}
}

// TestHistory_Paging: limits, cursors, and the errors of History.
func TestHistory_Paging(t *testing.T) {
	e, _ := newEngine(t, newBolt(t), Options{})
	ctx := context.Background()
	key := todo("pages")
	r := newReplica()
	var hashes []crdt.Hash // oldest first
	for i := range 25 {
		pushAs(t, e, key, "", r.edit(t, "k", i))
		hashes = append(hashes, r.heads()[0])
	}
	cursor, n := "", 0
	for {
		page := historyPage(t, e, key, cursor, 10)
		for _, ch := range page.Changes {
			if want := hashes[len(hashes)-1-n]; ch.Hash != want || ch.By != "" {
				t.Fatalf("change %d = %s by %q, want %s by no one", n, ch.Hash, ch.By, want)
			}
			n++
		}
		if !page.More {
			break
		}
		cursor = page.Cursor
	}
	if n != 25 {
		t.Fatalf("paged through %d changes, want 25", n)
	}
	if p := historyPage(t, e, key, "", MaxHistoryLimit+5); len(p.Changes) != 25 {
		t.Fatalf("a large limit gave %d", len(p.Changes))
	}
	for _, bad := range []string{"zz", crdt.Hash{7}.String()} {
		if _, err := e.History(ctx, key, bad, 10); !errors.Is(err, store.ErrInvalidCursor) {
			t.Fatalf("History with cursor %q = %v, want ErrInvalidCursor", bad, err)
		}
	}
	if _, err := e.History(ctx, todo("nobody"), "", 10); !errors.Is(err, ErrNotFound) {
		t.Fatalf("History of a record never written = %v, want ErrNotFound", err)
	}
	if _, err := e.History(ctx, store.Key{Collection: "Bad", ID: "x"}, "", 10); !errors.Is(err, store.ErrInvalidKey) {
		t.Fatalf("History of an invalid key = %v, want ErrInvalidKey", err)
	}
}

// TestHistory_SetDeletedAttributed: the server's own changes are the
// caller's.
func TestHistory_SetDeletedAttributed(t *testing.T) {
	e, _ := newEngine(t, newBolt(t), Options{})
	key := todo("deleted")
	pushAs(t, e, key, "alice", newReplica().edit(t, "k", 1))
	if _, err := e.SetDeleted(context.Background(), key, true, "carol"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.SetDeleted(context.Background(), key, false, "dan"); err != nil {
		t.Fatal(err)
	}
	page := historyPage(t, e, key, "", 0)
	var by []string
	for _, ch := range page.Changes {
		by = append(by, ch.By)
	}
	if fmt.Sprint(by) != "[dan carol alice]" {
		t.Fatalf("history by %q, want dan, carol, alice", by)
	}
}

// TestHistory_TwoProcesses: two engines on one store (two processes). A
// change both receive at once is attributed to the one whose append won,
// on both; each sees the other's changes with the other's caller, also
// when its history was built before they arrived.
func TestHistory_TwoProcesses(t *testing.T) {
	st := newBolt(t)
	e1, _ := newEngine(t, st, Options{})
	e2, fs2 := newEngine(t, st, Options{})
	key := todo("shared")
	r := newReplica()
	pushAs(t, e1, key, "alice", r.edit(t, "a", 0))
	historyPage(t, e2, key, "", 0) // e2 builds its history now

	// The same change reaches both: e2's append is beaten by e1's.
	both := r.edit(t, "a", 1)
	hook := func(store.Key, store.Entry) {
		fs2.before.Store(nil)
		if res, err := e1.Sync(context.Background(), []DocRequest{{Key: key, Changes: both, By: "alice"}}); err != nil || res[0].Err != nil {
			t.Errorf("e1 push: %v %v", err, res[0].Err)
		}
	}
	fs2.before.Store(&hook)
	pushAs(t, e2, key, "bob", both)
	if got := e2.Stats().StoreConflicts; got != 1 {
		t.Fatalf("e2 lost %d races, want 1: the test did not race", got)
	}
	pushAs(t, e2, key, "bob", r.edit(t, "b", 2))

	for name, e := range map[string]*Engine{"e1": e1, "e2": e2} {
		page := historyPage(t, e, key, "", 0)
		var by []string
		for _, ch := range page.Changes {
			by = append(by, ch.By)
		}
		if fmt.Sprint(by) != "[bob alice alice]" {
			t.Fatalf("%s: history by %q, want bob, alice, alice (the change both got is the winner's)", name, by)
		}
	}
}
