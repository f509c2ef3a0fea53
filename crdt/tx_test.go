package crdt

import (
	"errors"
	"testing"
)

// changeBuilder makes real changes by hand, for cases Automerge would never
// write (to check they are refused) and ones it would.
type changeBuilder struct {
	tb     testing.TB
	actors [][]byte
}

func newBuilder(tb testing.TB, actors ...string) *changeBuilder {
	b := &changeBuilder{tb: tb}
	for _, a := range actors {
		b.actors = append(b.actors, []byte(a))
	}
	return b
}

// change encodes ops (IDs filled in from start) by actor own.
func (b *changeBuilder) change(own uint32, seq, start uint64, deps []Hash, ops ...Op) Change {
	b.tb.Helper()
	for i := range ops {
		ops[i].ID = OpID{Ctr: start + uint64(i), Actor: own}
	}
	c, err := EncodeChange(ChangeHeader{Deps: deps, Seq: seq, StartOp: start}, b.actors, own, ops)
	if err != nil {
		b.tb.Fatal(err)
	}
	// Through the parser, as a push would arrive.
	cs, err := Split(c.Raw)
	if err != nil {
		b.tb.Fatalf("Split of a built change: %v", err)
	}
	return cs[0]
}

func set(key string, v Value, pred ...OpID) Op {
	return Op{Key: Key{Map: key, IsMap: true}, Action: ActSet, Value: v, Pred: pred}
}

func del(key string, pred ...OpID) Op {
	return Op{Key: Key{Map: key, IsMap: true}, Action: ActDel, Pred: pred}
}

func id(ctr uint64, actor uint32) OpID { return OpID{Ctr: ctr, Actor: actor} }

func TestTx_Refuses(t *testing.T) {
	b := newBuilder(t, "aaaa", "bbbb")
	c1 := b.change(0, 1, 1, nil, set("x", IntValue(1)), Op{Key: Key{Map: "list", IsMap: true}, Action: ActMakeList})
	tests := []struct {
		name string
		c    Change
		want error
	}{
		{"wrong start op", b.change(0, 2, 5, []Hash{c1.Hash}, set("x", IntValue(2), id(1, 0))), ErrInvalidChange},
		{"reused seq", b.change(0, 1, 3, []Hash{c1.Hash}, set("x", IntValue(2), id(1, 0))), ErrInvalidChange},
		{"seq gap", b.change(0, 3, 3, []Hash{c1.Hash}, set("x", IntValue(2), id(1, 0))), ErrInvalidChange},
		{"missing deps", b.change(1, 1, 3, []Hash{{9}}, set("x", IntValue(2), id(1, 0))), ErrMissingDeps},
		{"pred on another key", b.change(1, 1, 3, []Hash{c1.Hash}, set("y", IntValue(2), id(1, 0))), ErrInvalidChange},
		{"pred that does not exist", b.change(1, 1, 3, []Hash{c1.Hash}, set("x", IntValue(2), id(7, 0))), ErrInvalidChange},
		{"map key in a list", b.change(1, 1, 3, []Hash{c1.Hash}, Op{Obj: id(2, 0), Key: Key{Map: "k", IsMap: true}, Action: ActSet, Value: IntValue(1)}), ErrInvalidChange},
		{"list op on a scalar", b.change(1, 1, 3, []Hash{c1.Hash}, Op{Obj: id(1, 0), Insert: true, Action: ActSet, Value: IntValue(1)}), ErrInvalidChange},
		{"overwrites twice", b.change(1, 1, 3, []Hash{c1.Hash}, set("x", IntValue(2), id(1, 0)), del("x", id(1, 0))), ErrInvalidChange},
		// Hardening: a value this change set at a key, left in place by a
		// later op of the change on the same key (Automerge always names
		// it as a predecessor). Unchained sets on one key are how a
		// 64-byte change made a record cost seconds to materialize.
		{"unchained sets on one key", b.change(1, 1, 3, []Hash{c1.Hash}, set("y", IntValue(1)), set("y", IntValue(2))), ErrInvalidChange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix := NewIndex()
			mustAdd(t, ix, c1)
			tx := ix.Begin()
			if _, err := tx.Add([]Change{tt.c}); !errors.Is(err, tt.want) {
				t.Fatalf("Add()=%v, want %v", err, tt.want)
			}
			if len(tx.Changes()) != 0 || tx.Has(tt.c.Hash) {
				t.Fatal("a refused change is in the Tx")
			}
		})
	}
}

func TestTx_Accepts(t *testing.T) {
	b := newBuilder(t, "aaaa", "bbbb", "cccc")
	c1 := b.change(0, 1, 1, nil, set("x", IntValue(1)))
	// Concurrent sets of x by two actors, then one that resolves both: one
	// op with two predecessors.
	c2 := b.change(1, 1, 2, []Hash{c1.Hash}, set("x", IntValue(2), id(1, 0)))
	c3 := b.change(2, 1, 2, []Hash{c1.Hash}, set("x", IntValue(3), id(1, 0)))
	c4 := b.change(0, 2, 3, []Hash{c2.Hash, c3.Hash}, set("x", IntValue(4), id(2, 1), id(2, 2)))
	// Set, delete and set again one key in one change: the third names
	// nothing, since nothing is visible there after the deletion.
	c5 := b.change(0, 3, 4, []Hash{c4.Hash}, set("y", IntValue(1)), del("y", id(4, 0)), set("y", IntValue(2)))
	// Chained sets of one key in one change.
	c6 := b.change(0, 4, 7, []Hash{c5.Hash}, set("z", IntValue(1)), set("z", IntValue(2), id(7, 0)), set("z", IntValue(3), id(8, 0)))
	ix := NewIndex()
	tx := ix.Begin()
	if _, err := tx.Add([]Change{c6, c5, c4, c3, c2, c1}); err != nil {
		t.Fatalf("Add: %v", err)
	}
	tx.Commit()
	if got := ix.Heads(); len(got) != 1 || got[0] != c6.Hash {
		t.Fatalf("Heads()=%v, want [%s]", got, c6.Hash)
	}
	d := NewDoc()
	if err := d.Apply([]Change{c1, c2, c3, c4, c5, c6}); err != nil {
		t.Fatal(err)
	}
	got, err := d.JSON(JSONOptions{})
	if err != nil || string(got) != `{"x":4,"y":2,"z":3}` {
		t.Fatalf("JSON()=%s %v", got, err)
	}
}
