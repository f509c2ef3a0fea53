// Package textgen makes the Automerge changes a text editor makes: a text
// object at a root key, typing, pastes and deletions, by one or more
// writers that merge each other's work. The changes are encoded by
// crdt.EncodeChange, byte for byte as Automerge JS would encode them, so
// tests and benchmarks can build records of any size (a million-character
// paste, a hundred thousand keystrokes) without an Automerge document on
// the writing side.
package textgen

import (
	"fmt"
	"slices"

	"github.com/dynamerge/dynamerge/crdt"
)

// Writer is one actor editing one text. It types at its own cursor, the
// element it inserted last; that is all a test needs to make concurrent
// edits that interleave.
type Writer struct {
	actors [][]byte
	own    uint32
	key    string
	seq    uint64
	next   uint64 // the next op counter
	deps   []crdt.Hash
	text   crdt.OpID
	cursor crdt.OpID // zero: the start of the text
	typed  []crdt.OpID
	hashes []crdt.Hash
}

// NewWriters makes n writers of the text at root key, with actor ids
// 0000…01, 0000…02, ….
func NewWriters(n int, key string) []*Writer {
	actors := make([][]byte, n)
	for i := range actors {
		actors[i] = []byte(fmt.Sprintf("%032x", i+1))
	}
	ws := make([]*Writer, n)
	for i := range ws {
		ws[i] = &Writer{actors: actors, own: uint32(i), key: key, next: 1}
	}
	return ws
}

// Create makes the text object; the other writers must Merge it before
// they type.
func (w *Writer) Create() crdt.Change {
	w.text = crdt.OpID{Ctr: w.next, Actor: w.own}
	return w.commit([]crdt.Op{{Key: crdt.Key{Map: w.key, IsMap: true}, Action: crdt.ActMakeText}})
}

// Type inserts s after the cursor in one change, one op per code point
// (as Automerge JS does), and moves the cursor to its end. A paste is one
// long Type.
func (w *Writer) Type(s string) crdt.Change {
	ops := make([]crdt.Op, 0, len(s))
	ref := w.cursor
	i := uint64(0)
	for _, r := range s {
		id := crdt.OpID{Ctr: w.next + i, Actor: w.own}
		ops = append(ops, crdt.Op{Obj: w.text, Key: crdt.Key{Elem: ref}, Insert: true, Action: crdt.ActSet, Value: crdt.StringValue(string(r))})
		w.typed = append(w.typed, id)
		ref = id
		i++
	}
	c := w.commit(ops)
	w.cursor = ref
	return c
}

// Delete removes the last n characters this writer typed (fewer if it
// typed fewer) in one change, as a range deletion does, and moves the
// cursor before them.
func (w *Writer) Delete(n int) crdt.Change {
	n = min(n, len(w.typed))
	gone := w.typed[len(w.typed)-n:]
	w.typed = w.typed[:len(w.typed)-n]
	ops := make([]crdt.Op, 0, n)
	for _, id := range gone {
		ops = append(ops, crdt.Op{Obj: w.text, Key: crdt.Key{Elem: id}, Action: crdt.ActDel, Pred: []crdt.OpID{id}})
	}
	c := w.commit(ops)
	w.cursor = crdt.OpID{}
	if len(w.typed) > 0 {
		w.cursor = w.typed[len(w.typed)-1]
	}
	return c
}

// Merge makes w's next change depend on everything other has made, as a
// device does when it syncs.
func (w *Writer) Merge(other *Writer) {
	for _, d := range other.deps {
		if !slices.Contains(w.deps, d) {
			w.deps = append(w.deps, d)
		}
	}
	w.next = max(w.next, other.next)
	if w.text == (crdt.OpID{}) {
		w.text = other.text
	}
}

// Observe records a sync: heads are the record's heads as the server
// answered, got the changes it sent. The next change depends on heads and
// its op counters follow every op w has seen.
func (w *Writer) Observe(heads []crdt.Hash, got []crdt.Change) {
	w.deps = slices.Clone(heads)
	for _, c := range got {
		w.next = max(w.next, c.MaxOp()+1)
	}
}

// Hashes lists the changes w made, in order.
func (w *Writer) Hashes() []crdt.Hash { return w.hashes }

func (w *Writer) commit(ops []crdt.Op) crdt.Change {
	for i := range ops {
		ops[i].ID = crdt.OpID{Ctr: w.next + uint64(i), Actor: w.own}
	}
	w.seq++
	c, err := crdt.EncodeChange(crdt.ChangeHeader{Deps: w.deps, Seq: w.seq, StartOp: w.next}, w.actors, w.own, ops)
	if err != nil {
		// Only a bug in this package makes EncodeChange fail.
		panic(fmt.Sprintf("textgen: %v", err))
	}
	w.next += uint64(len(ops))
	w.deps = []crdt.Hash{c.Hash}
	w.hashes = append(w.hashes, c.Hash)
	return c
}
