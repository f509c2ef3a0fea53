package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/store"
)

// TestSetDeleted: a delete is a change the engine makes; the view, the
// feed and the events say deleted; a concurrent offline edit merges and is
// kept, visible after the undelete; a fresh engine on the same store knows
// the record is deleted.
func TestSetDeleted(t *testing.T) {
	ctx := context.Background()
	st := newBolt(t)
	e, _ := newEngine(t, st, Options{})
	key := store.Key{Collection: "todos", ID: "d1"}
	if _, err := e.SetDeleted(ctx, key, true, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SetDeleted of a record never written = %v, want ErrNotFound", err)
	}

	a, b := newReplica(), newReplica()
	if res := a.push(t, e, key, a.edit(t, "title", "milk")); res.Err != nil {
		t.Fatal(res.Err)
	}
	b.apply(t, sync1(t, e, DocRequest{Key: key}).Changes)
	offline := b.edit(t, "title", "oat milk") // b edits offline

	events, cancel := e.Subscribe([]string{"todos"})
	defer cancel()
	heads, err := e.SetDeleted(ctx, key, true, "")
	if err != nil {
		t.Fatalf("SetDeleted: %v", err)
	}
	select {
	case ev := <-events:
		if !ev.Deleted || len(ev.Heads) != len(heads) {
			t.Fatalf("event %+v, want deleted at %v", ev, heads)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event for the delete")
	}
	if again, err := e.SetDeleted(ctx, key, true, ""); err != nil || !sameHeads(again, heads) {
		t.Fatalf("deleting again: %v %v, want no change at %v", again, err, heads)
	}
	v, err := e.View(ctx, key, nil)
	if err != nil || !v.Deleted || strings.Contains(string(v.Doc), "$deleted") {
		t.Fatalf("View after delete: %+v %v", v, err)
	}

	// The offline edit arrives: merged, still deleted.
	if res := b.push(t, e, key, offline); res.Err != nil {
		t.Fatalf("the offline edit was refused: %v", res.Err)
	}
	if v, err := e.View(ctx, key, nil); err != nil || !v.Deleted {
		t.Fatalf("after the concurrent edit: deleted %v, %v", v.Deleted, err)
	}
	page, err := e.Feed(ctx, "todos", "", 0)
	if err != nil || len(page.Items) != 1 || !page.Items[0].Deleted {
		t.Fatalf("feed %+v %v, want the record deleted", page, err)
	}

	// A fresh engine on the same store: still deleted; then undeleted
	// there, with the edit shown.
	e.Close(ctx)
	e2, _ := newEngine(t, st, Options{})
	if v, err := e2.View(ctx, key, nil); err != nil || !v.Deleted {
		t.Fatalf("fresh engine: deleted %v, %v", v.Deleted, err)
	}
	if _, err := e2.SetDeleted(ctx, key, false, ""); err != nil {
		t.Fatalf("undelete: %v", err)
	}
	v, err = e2.View(ctx, key, nil)
	if err != nil || v.Deleted || string(v.Doc) != `{"title":"oat milk"}` {
		t.Fatalf("after the undelete: %+v %v, want the offline edit", v, err)
	}
	if rec, err := st.Load(ctx, key); err != nil || !rec.DeletedAt.IsZero() {
		t.Fatalf("store after undelete: DeletedAt %v %v", rec.DeletedAt, err)
	}
}

func sameHeads(a, b []crdt.Hash) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
