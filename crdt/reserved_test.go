package crdt

import (
	"encoding/json"
	"testing"

	"github.com/dynamerge/dynamerge/internal/amjs"
)

// TestDeleted: the Index knows whether a record is deleted (root
// "$deleted" shows true) without a document, and agrees with the document
// through deletes, undeletes, concurrent edits and conflicting marks.
func TestDeleted(t *testing.T) {
	b := newBuilder(t, "aaaa", "bbbb")
	c1 := b.change(0, 1, 1, nil, set("title", StringValue("x")))
	del := b.change(0, 2, 2, []Hash{c1.Hash}, set(DeletedKey, BoolValue(true)))
	undel := b.change(0, 3, 3, []Hash{del.Hash}, Op{Key: Key{Map: DeletedKey, IsMap: true}, Action: ActDel, Pred: []OpID{id(2, 0)}})
	// b deletes concurrently with a's delete, then a undeletes only its own
	// mark: b's still shows.
	delB := b.change(1, 1, 2, []Hash{c1.Hash}, set(DeletedKey, BoolValue(true)))
	// b puts false over both marks: undeleted.
	both := b.change(1, 2, 3, []Hash{delB.Hash, del.Hash}, set(DeletedKey, BoolValue(false), id(2, 0), id(2, 1)))
	// A concurrent edit of the title beside the delete.
	edit := b.change(1, 1, 2, []Hash{c1.Hash}, set("title", StringValue("y"), id(1, 0)))
	// Conflicting values: a sets true at counter 4, b sets false at counter 4.
	t4a := b.change(0, 3, 3, []Hash{del.Hash}, set("other", IntValue(1)), set(DeletedKey, BoolValue(true), id(2, 0)))
	t4b := b.change(1, 1, 2, []Hash{c1.Hash}, set("p", IntValue(1)), set("q", IntValue(1)), set(DeletedKey, BoolValue(false)))

	for _, tc := range []struct {
		name    string
		changes []Change
		want    bool
	}{
		{"never", []Change{c1}, false},
		{"deleted", []Change{c1, del}, true},
		{"undeleted", []Change{c1, del, undel}, false},
		{"two marks, one removed", []Change{c1, del, delB, undel}, true},
		{"false over both", []Change{c1, del, delB, both}, false},
		{"edit beside a delete", []Change{c1, edit, del}, true},
		{"conflict: greater counter wins", []Change{c1, del, t4a, t4b}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ix := NewIndex()
			for _, c := range tc.changes {
				mustAdd(t, ix, c)
			}
			d := NewDoc()
			if err := d.Apply(tc.changes); err != nil {
				t.Fatal(err)
			}
			js, err := d.JSON(JSONOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var root map[string]any
			if err := json.Unmarshal(js, &root); err != nil {
				t.Fatal(err)
			}
			if docSays := root[DeletedKey] == true; docSays != tc.want {
				t.Fatalf("the document says deleted=%v (%s), want %v", docSays, js, tc.want)
			}
			if got := ix.Deleted(); got != tc.want {
				t.Errorf("Index.Deleted() = %v, want %v", got, tc.want)
			}
			if got, err := d.Deleted(nil); err != nil || got != tc.want {
				t.Errorf("Doc.Deleted(nil) = %v, %v; want %v", got, err, tc.want)
			}
			if got, err := d.Deleted([]Hash{c1.Hash}); err != nil || got {
				t.Errorf("Doc.Deleted at the first change = %v, %v; want false", got, err)
			}
			// Loading the saved document rebuilds the same state.
			_, lix, err := LoadRecord(d.Save())
			if err != nil {
				t.Fatal(err)
			}
			if got := lix.Deleted(); got != tc.want {
				t.Errorf("after LoadRecord, Deleted() = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestReservedChange: the changes a server makes to delete and undelete
// are valid on top of any history (here one with two concurrent marks) and
// do what they say; a change that would change nothing is not made.
func TestReservedChange(t *testing.T) {
	b := newBuilder(t, "aaaa", "bbbb")
	c1 := b.change(0, 1, 1, nil, set("title", StringValue("x")))
	delA := b.change(0, 2, 2, []Hash{c1.Hash}, set(DeletedKey, BoolValue(true)))
	delB := b.change(1, 1, 2, []Hash{c1.Hash}, set(DeletedKey, BoolValue(true)))
	ix := NewIndex()
	mustAdd(t, ix, c1, delA, delB)
	server := []byte("5e7e75e75e7e75e75e7e75e75e7e75e7")
	yes := BoolValue(true)
	if _, ok, err := ix.ReservedChange(server, DeletedKey, &yes, 0); err != nil || !ok {
		// Two values at the key: putting true again resolves the conflict.
		t.Fatalf("delete over two marks: made=%v err=%v", ok, err)
	}
	undel, ok, err := ix.ReservedChange(server, DeletedKey, nil, 1700000000)
	if err != nil || !ok {
		t.Fatalf("undelete: made=%v err=%v", ok, err)
	}
	mustAdd(t, ix, undel)
	if ix.Deleted() {
		t.Fatal("still deleted after the undelete change")
	}
	if _, ok, _ := ix.ReservedChange(server, DeletedKey, nil, 0); ok {
		t.Fatal("an undelete of a record that is not deleted made a change")
	}
	del, ok, err := ix.ReservedChange(server, DeletedKey, &yes, 0)
	if err != nil || !ok {
		t.Fatalf("delete: made=%v err=%v", ok, err)
	}
	mustAdd(t, ix, del)
	if !ix.Deleted() || del.Seq != 2 {
		t.Fatalf("deleted=%v, seq %d (want true, 2)", ix.Deleted(), del.Seq)
	}
	if _, ok, _ := ix.ReservedChange(server, DeletedKey, &yes, 0); ok {
		t.Fatal("deleting a deleted record made a change")
	}
	if _, _, err := ix.ReservedChange(server, "title", nil, 0); err == nil {
		t.Fatal("a change of a non-reserved key was made")
	}
	// Automerge JS takes them, and sees the record deleted.
	var all []byte
	for _, c := range []Change{c1, delA, delB, undel, del} {
		all = append(all, c.Raw...)
	}
	res, err := amjs.Start(t).Load(all)
	if err != nil {
		t.Fatalf("Automerge JS: %v", err)
	}
	var root map[string]any
	if err := json.Unmarshal(res.View, &root); err != nil || root[DeletedKey] != true {
		t.Fatalf("Automerge JS view %s (%v), want $deleted true", res.View, err)
	}
}
