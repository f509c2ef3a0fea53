package storetest

import (
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
