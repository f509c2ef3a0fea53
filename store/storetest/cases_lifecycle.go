package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/store"
)

// testDeleted: AppendMeta.Deleted makes the record deleted from the first
// such Append on (Record.DeletedAt keeps that time through later deleted
// appends and a snapshot), its feed entry says so, and an Append that is
// not deleted clears both.
func testDeleted(t *testing.T, s store.Store) {
	ctx := t.Context()
	k := key("deleted")
	appendMeta := func(seq uint64, deleted bool) {
		t.Helper()
		m := metaFor(k, seq)
		m.Deleted = deleted
		if err := s.Append(ctx, k, store.Entry{Seq: seq, Changes: payload(k, seq, 100)}, m); err != nil {
			t.Fatalf("Append(seq %d, deleted %v) = %v", seq, deleted, err)
		}
	}
	state := func() (time.Time, bool) {
		t.Helper()
		rec, err := s.Load(ctx, k)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		page, err := s.Feed(ctx, testCollection, "", 0)
		if err != nil {
			t.Fatalf("Feed: %v", err)
		}
		for _, it := range page.Items {
			if it.ID == k.ID {
				return rec.DeletedAt, it.Deleted
			}
		}
		t.Fatalf("the feed does not list %s", k)
		return time.Time{}, false
	}

	appendMeta(1, false)
	if at, feed := state(); !at.IsZero() || feed {
		t.Fatalf("a live record: DeletedAt %v, feed deleted %v", at, feed)
	}
	before := time.Now().Add(-time.Minute)
	appendMeta(2, true)
	first, feed := state()
	if first.IsZero() || first.Before(before) || !feed {
		t.Fatalf("after a deleting append: DeletedAt %v, feed deleted %v", first, feed)
	}
	appendMeta(3, true)
	if err := s.SaveSnapshot(ctx, k, store.Snapshot{Seq: 3, Data: []byte("snapshot")}); err != nil {
		t.Fatalf("SaveSnapshot: %v", err)
	}
	if at, feed := state(); !at.Equal(first) || !feed {
		t.Fatalf("still deleted: DeletedAt %v (want the first, %v), feed deleted %v", at, first, feed)
	}
	appendMeta(4, false)
	if at, feed := state(); !at.IsZero() || feed {
		t.Fatalf("undeleted: DeletedAt %v, feed deleted %v", at, feed)
	}
}

// testPurge: DeletedBefore lists deleted records by when; Purge removes a
// deleted record's history and leaves a tombstone (Purged, Roots, Seq one
// past), refuses records that moved on or are not deleted, and a new
// history then starts after the tombstone, keeping its roots.
func testPurge(t *testing.T, s store.Store) {
	ctx := t.Context()
	k, live := key("purged"), key("live")
	appendMeta := func(k store.Key, seq uint64, deleted, fresh bool) error {
		m := metaFor(k, seq)
		m.Deleted, m.NewHistory = deleted, fresh
		return s.Append(ctx, k, store.Entry{Seq: seq, Changes: payload(k, seq, 100)}, m)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	mustAppendRange(t, s, live, 1, 2)
	mustAppendRange(t, s, k, 1, 2)
	must(s.SaveSnapshot(ctx, k, store.Snapshot{Seq: 2, Data: []byte("snap")}))
	if err := s.Purge(ctx, live, 2, nil); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Purge of a live record = %v, want ErrConflict", err)
	}
	must(appendMeta(k, 3, true, false))
	deletedAt := time.Now()

	list := func(before time.Time) []store.DeletedRecord {
		t.Helper()
		recs, err := s.DeletedBefore(ctx, before, 0)
		if err != nil {
			t.Fatalf("DeletedBefore: %v", err)
		}
		var mine []store.DeletedRecord
		for _, r := range recs {
			if r.Key.Collection == testCollection {
				mine = append(mine, r)
			}
		}
		return mine
	}
	if got := list(deletedAt.Add(-time.Hour)); len(got) != 0 {
		t.Fatalf("DeletedBefore an hour ago = %+v, want none", got)
	}
	got := list(deletedAt.Add(time.Minute))
	if len(got) != 1 || got[0].Key != k || got[0].Seq != 3 {
		t.Fatalf("DeletedBefore now = %+v, want %s at seq 3", got, k)
	}
	if err := s.Purge(ctx, k, 2, nil); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Purge at a stale seq = %v, want ErrConflict", err)
	}
	must(s.Purge(ctx, k, 3, []string{"r1"}))

	rec, err := s.Load(ctx, k)
	if err != nil || !rec.Purged || rec.Seq != 4 || rec.Snapshot != nil || len(rec.Entries) != 0 || !slices.Equal(rec.Roots, []string{"r1"}) {
		t.Fatalf("Load after Purge = %+v %v, want a tombstone at seq 4 with roots [r1]", rec, err)
	}
	if _, err := s.ReadLog(ctx, k, 2); !errors.Is(err, store.ErrCompacted) {
		t.Fatalf("ReadLog into the purged history = %v, want ErrCompacted", err)
	}
	if got := list(time.Now().Add(time.Minute)); len(got) != 0 {
		t.Fatalf("DeletedBefore after the purge = %+v, want none", got)
	}
	if err := s.Purge(ctx, k, 4, nil); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Purge of a tombstone = %v, want ErrConflict", err)
	}
	// A compaction that raced the purge does not bring the history back.
	must(s.SaveSnapshot(ctx, k, store.Snapshot{Seq: 3, Data: []byte("old")}))
	if rec, err := s.Load(ctx, k); err != nil || rec.Snapshot != nil || !rec.Purged {
		t.Fatalf("Load after a stale snapshot = %+v %v", rec, err)
	}
	page, err := s.Feed(ctx, testCollection, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(page.Items, func(it store.FeedItem) bool { return it.ID == k.ID }); i < 0 || !page.Items[i].Purged || i != len(page.Items)-1 {
		t.Fatalf("feed %+v: want %s last, purged", page.Items, k)
	}

	// A writer that missed the purge appends its seq 4: refused.
	if err := appendMeta(k, 4, false, false); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Append at the tombstone's seq = %v, want ErrConflict", err)
	}
	// A new history after the tombstone, deleted at once: its deletion time
	// is its own.
	must(appendMeta(k, 5, true, true))
	rec, err = s.Load(ctx, k)
	if err != nil || rec.Purged || rec.Seq != 5 || len(rec.Entries) != 1 || !slices.Equal(rec.Roots, []string{"r1"}) || rec.DeletedAt.Before(deletedAt.Add(-time.Second)) {
		t.Fatalf("Load of the new history = %+v %v", rec, err)
	}
	checkEntries(t, rec.Entries, k, 5, 5)
	must(appendMeta(k, 6, false, false)) // undeleted: before any purge
	if err := s.Purge(ctx, k, 6, nil); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Purge of an undeleted record = %v, want ErrConflict", err)
	}
}
