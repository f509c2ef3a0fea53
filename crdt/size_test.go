package crdt

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// textWriter makes the changes a text editor makes, with the encoder: a
// text object at root "t", then inserts (typing or pastes) and deletions.
type textWriter struct {
	b     *changeBuilder
	own   uint32
	seq   uint64
	next  uint64 // next op counter
	deps  []Hash
	text  OpID
	last  OpID // the element typed last (the cursor)
	elems []OpID
}

func newTextWriters(tb testing.TB, n int) []*textWriter {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%032x", i+1)
	}
	b := newBuilder(tb, names...)
	ws := make([]*textWriter, n)
	for i := range ws {
		ws[i] = &textWriter{b: b, own: uint32(i), next: 1}
	}
	return ws
}

func (w *textWriter) commit(ops ...Op) Change {
	w.seq++
	c := w.b.change(w.own, w.seq, w.next, w.deps, ops...)
	w.next += uint64(len(ops))
	w.deps = []Hash{c.Hash}
	return c
}

// create makes the text object.
func (w *textWriter) create() Change {
	w.text = OpID{Ctr: w.next, Actor: w.own}
	return w.commit(Op{Key: Key{Map: "t", IsMap: true}, Action: ActMakeText})
}

// typeChars inserts s after the cursor, one op per character.
func (w *textWriter) typeChars(s string) Change {
	var ops []Op
	ref := w.last
	for i, r := range s {
		id := OpID{Ctr: w.next + uint64(i), Actor: w.own}
		_ = i
		ops = append(ops, Op{Obj: w.text, Key: Key{Elem: ref}, Insert: true, Action: ActSet, Value: StringValue(string(r))})
		ref = id
		w.elems = append(w.elems, id)
	}
	// IDs are assigned by commit in order; the refs above assume so.
	c := w.commit(ops...)
	w.last = ref
	return c
}

// merge makes w depend on the other writer's latest change, and on its own.
func (w *textWriter) merge(other *textWriter) {
	seen := map[Hash]bool{}
	var deps []Hash
	for _, d := range append(append([]Hash{}, w.deps...), other.deps...) {
		if !seen[d] {
			seen[d] = true
			deps = append(deps, d)
		}
	}
	w.deps = deps
	w.next = max(w.next, other.next)
}

// typingHistory is a record of n one-character changes by two writers
// who merge each other's work every ten changes, after the change that
// makes the text.
func typingHistory(tb testing.TB, n int) []Change {
	ws := newTextWriters(tb, 2)
	all := []Change{ws[0].create()}
	ws[1].merge(ws[0])
	ws[1].text = ws[0].text
	for i := 0; i < n; i++ {
		w := ws[i%2]
		if i%10 == 0 {
			w.merge(ws[1-i%2])
			if w.last.IsZero() && len(ws[1-i%2].elems) > 0 {
				w.last = ws[1-i%2].last
			}
		}
		all = append(all, w.typeChars(string(rune('a'+i%26))))
	}
	return all
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestSize_Paste measures a paste of a million characters in one change:
// parse and index time, index memory per op, materialization.
func TestSize_Paste(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement")
	}
	const n = 1_000_000
	ws := newTextWriters(t, 1)
	w := ws[0]
	c0 := w.create()
	text := strings.Repeat("abcdefghijklmnopqrstuvwxyz ", n/27+1)[:n]
	c1 := w.typeChars(text)
	t.Logf("paste of %d characters: a change of %d bytes", n, len(c1.Raw))

	start := time.Now()
	cs, err := Split(c1.Raw)
	if err != nil {
		t.Fatal(err)
	}
	parse := time.Since(start)
	h0 := heapAlloc()
	ix := NewIndex()
	mustAdd(t, ix, c0)
	start = time.Now()
	mustAdd(t, ix, cs...)
	index := time.Since(start)
	h1 := heapAlloc()
	t.Logf("parse %v, index %v; index heap %d B beyond the raw change (%.3f B/op), MemoryBytes %d",
		parse, index, int64(h1-h0)-int64(len(c1.Raw)), float64(int64(h1-h0)-int64(len(c1.Raw)))/n, ix.MemoryBytes())

	start = time.Now()
	d := NewDoc()
	if err := d.Apply([]Change{c0, c1}); err != nil {
		t.Fatal(err)
	}
	apply := time.Since(start)
	h2 := heapAlloc()
	start = time.Now()
	js, err := d.JSON(JSONOptions{})
	if err != nil {
		t.Fatal(err)
	}
	jsonT := time.Since(start)
	start = time.Now()
	saved := d.Save()
	save := time.Since(start)
	start = time.Now()
	if _, _, err := LoadDoc(saved); err != nil {
		t.Fatal(err)
	}
	load := time.Since(start)
	t.Logf("doc: apply %v, heap %d B (%.1f B/op, MemoryBytes %d), JSON %v (%d B), Save %v (%d B), LoadDoc %v",
		apply, h2-h1, float64(h2-h1)/n, d.MemoryBytes(), jsonT, len(js), save, len(saved), load)
	runtime.KeepAlive(ix)
	runtime.KeepAlive(d)
}

// TestSize_Typing measures a record of 100,000 typing changes by two
// concurrent writers.
func TestSize_Typing(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement")
	}
	const n = 100_000
	all := typingHistory(t, n)
	raw := 0
	for _, c := range all {
		raw += len(c.Raw)
	}
	h0 := heapAlloc()
	start := time.Now()
	ix := NewIndex()
	mustAdd(t, ix, all...)
	index := time.Since(start)
	h1 := heapAlloc()
	t.Logf("%d changes, %d B raw; index %v, heap %d B (%.1f B/change beyond raw), MemoryBytes %d",
		len(all), raw, index, h1-h0, float64(int64(h1-h0)-int64(raw))/float64(len(all)), ix.MemoryBytes())
	d := NewDoc()
	start = time.Now()
	if err := d.Apply(all); err != nil {
		t.Fatal(err)
	}
	apply := time.Since(start)
	h2 := heapAlloc()
	saved := d.Save()
	start = time.Now()
	if _, _, err := LoadRecord(saved); err != nil {
		t.Fatal(err)
	}
	load := time.Since(start)
	t.Logf("doc: apply %v, heap %d B (%.1f B/change, MemoryBytes %d); Save %d B; LoadRecord %v",
		apply, h2-h1, float64(h2-h1)/float64(len(all)), d.MemoryBytes(), len(saved), load)
	runtime.KeepAlive(ix)
	runtime.KeepAlive(d)
}

func BenchmarkLoadDoc_Paste1M(b *testing.B) {
	ws := newTextWriters(b, 1)
	w := ws[0]
	c0 := w.create()
	c1 := w.typeChars(strings.Repeat("abcdefghijklmnopqrstuvwxyz ", 1_000_000/27+1)[:1_000_000])
	d := NewDoc()
	if err := d.Apply([]Change{c0, c1}); err != nil {
		b.Fatal(err)
	}
	saved := d.Save()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := LoadDoc(saved); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoadRecord_Typing100K(b *testing.B) {
	const n = 100_000
	all := typingHistory(b, n)
	d := NewDoc()
	if err := d.Apply(all); err != nil {
		b.Fatal(err)
	}
	saved := d.Save()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := LoadRecord(saved); err != nil {
			b.Fatal(err)
		}
	}
}
