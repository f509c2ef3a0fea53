package crdt

import (
	"encoding/json"
	"testing"
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
