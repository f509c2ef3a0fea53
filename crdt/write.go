package crdt

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrInvalidWrite is returned (wrapped, with the reason) by the change
// builders when the target is not something a record can hold: not a JSON
// object, a reserved key, a number out of range.
var ErrInvalidWrite = errors.New("crdt: invalid write")

// maxListDiff bounds the LCS table of one list diff (cells); past it the
// differing middle of the lists is replaced element by element instead.
const maxListDiff = 1 << 20

// ParseJSONObject parses a plain-JSON write body: exactly one JSON object,
// numbers kept as written (json.Number) and within float64's range, with
// no reserved key ("$…") anywhere in it.
func ParseJSONObject(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: not JSON: %v", ErrInvalidWrite, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: more than one JSON value", ErrInvalidWrite)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidWrite)
	}
	if err := CheckNoReserved(m, nil); err != nil {
		return nil, err
	}
	if _, err := canonJSON(nil, m); err != nil {
		return nil, err // a number out of range
	}
	return m, nil
}

// CheckNoReserved refuses a reserved key ("$…") anywhere in v: the protocol
// keeps them for itself, and a client writing "$deleted" would delete a
// record behind the lifecycle's back.
func CheckNoReserved(v any, path []string) error {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			p := append(path, k)
			if strings.HasPrefix(k, ReservedPrefix) {
				return fmt.Errorf("%w: reserved key %q at /%s", ErrInvalidWrite, k, strings.Join(p, "/"))
			}
			if err := CheckNoReserved(x, p); err != nil {
				return err
			}
		}
	case []any:
		for i, x := range v {
			if err := CheckNoReserved(x, append(path, strconv.Itoa(i))); err != nil {
				return err
			}
		}
	}
	return nil
}

// ChangeToJSON makes the one change that turns the document's current
// state into target (a JSON object from ParseJSONObject), as actor at time
// t (Unix seconds), the way an Automerge JS transaction would write it:
// deps the current heads, the actor's next seq, preds naming every value it
// replaces (so writing a key that holds conflicting values resolves them).
// Reserved root keys ("$…") are left as they are.
//
// Values map as the JSON view maps them back, so that the view afterwards
// equals target: integers become int (uint past int64), other numbers f64;
// an existing counter given a new integer is incremented by the difference;
// an existing timestamp or bytes value given a string in the form the view
// shows them keeps its type; an existing text is edited by splicing the
// difference, so a concurrent edit of the same text keeps both; new strings
// become text, as Automerge JS 3 writes them; objects and arrays recurse,
// lists keeping equal elements. ok is false when the document already
// shows target (no change is needed).
func (d *Doc) ChangeToJSON(target map[string]any, actor []byte, t int64) (c Change, ok bool, err error) {
	if err := CheckNoReserved(target, nil); err != nil {
		return Change{}, false, err
	}
	w := d.newWriter(actor)
	if err := w.mapFromJSON(OpID{}, target, true); err != nil {
		return Change{}, false, err
	}
	return w.finish(t)
}

// ChangeToMergePatch makes the one change that applies an RFC 7396 merge
// patch (a JSON object, as ParseJSONObject reads it) to the document: the
// change ChangeToJSON would make for the patched view, found by visiting
// only the keys the patch names, so patching one key of a large record
// costs what the key holds, not what the record holds.
func (d *Doc) ChangeToMergePatch(patch map[string]any, actor []byte, t int64) (c Change, ok bool, err error) {
	if err := CheckNoReserved(patch, nil); err != nil {
		return Change{}, false, err
	}
	w := d.newWriter(actor)
	if err := w.mergePatch(OpID{}, patch); err != nil {
		return Change{}, false, err
	}
	return w.finish(t)
}

// mergePatch applies patch to map object obj (RFC 7396 section 2).
func (w *writer) mergePatch(obj OpID, patch map[string]any) error {
	d := w.d
	o := d.objs[obj]
	keys := slices.Sorted(maps.Keys(patch))
	for _, k := range keys {
		at := o.keys[k]
		vis := d.visible(at, nil)
		switch v := patch[k].(type) {
		case nil:
			if len(vis) > 0 {
				w.add(Op{Obj: obj, Key: mapKey(k), Action: ActDel, Pred: w.ids(vis)})
			}
			continue
		case map[string]any:
			if len(vis) == 1 {
				if cur := &d.ops[vis[0]]; cur.action == ActMakeMap || cur.action == ActMakeTable {
					if err := w.mergePatch(cur.id, v); err != nil {
						return err
					}
					continue
				}
			}
			// Merged into nothing: the patch itself, without its nulls.
			if err := w.putJSON(obj, mapKey(k), at, vis, withoutNulls(v)); err != nil {
				return err
			}
			continue
		}
		if err := w.putJSON(obj, mapKey(k), at, vis, patch[k]); err != nil {
			return err
		}
	}
	return nil
}

// withoutNulls is a merge patch applied to an empty object: its objects
// without their null members (arrays are values, taken as they are).
func withoutNulls(patch map[string]any) map[string]any {
	out := make(map[string]any, len(patch))
	for k, v := range patch {
		switch v := v.(type) {
		case nil:
		case map[string]any:
			out[k] = withoutNulls(v)
		default:
			out[k] = v
		}
	}
	return out
}

// ChangeToHeads makes the one change that turns the document's current
// state into its state at heads (a restore), as actor at time t. It works
// on Automerge values, not their JSON: types are kept (counters, timestamps,
// immutable strings), reserved root keys ("$deleted") are restored too,
// and lists and text are restored element by element, the elements deleted
// since reinserted in their old places (text by splices, so concurrent
// edits of the same text still merge). Objects still in place are restored
// in place; objects replaced since are copied back. Marks are not
// restored. ok is false when the document already shows its state at
// heads. An unknown head gives ErrMissingDeps.
func (d *Doc) ChangeToHeads(heads []Hash, actor []byte, t int64) (c Change, ok bool, err error) {
	if heads == nil {
		heads = []Hash{} // nil would mean the current state
	}
	cl, err := d.clockAt(heads)
	if err != nil {
		return Change{}, false, err
	}
	if len(heads) == 0 {
		cl = make(clock, len(d.actors)) // the empty document: nothing is visible
	}
	w := d.newWriter(actor)
	w.restoreObject(d.objs[OpID{}], cl)
	return w.finish(t)
}

// writer accumulates the ops of one change made against a document.
type writer struct {
	d      *Doc
	actors [][]byte // the document's actors, plus the writer's when new
	own    uint32
	start  uint64
	ops    []Op
}

func (d *Doc) newWriter(actor []byte) *writer {
	w := &writer{d: d, actors: d.actors, start: d.maxOp + 1}
	if i, ok := d.actorIdx[string(actor)]; ok {
		w.own = i
	} else {
		w.actors = append(slices.Clip(d.actors), bytes.Clone(actor))
		w.own = uint32(len(w.actors) - 1)
	}
	return w
}

// add appends op with the next op ID and returns the ID.
func (w *writer) add(op Op) OpID {
	op.ID = OpID{Ctr: w.start + uint64(len(w.ops)), Actor: w.own}
	w.ops = append(w.ops, op)
	return op.ID
}

func (w *writer) finish(t int64) (Change, bool, error) {
	if len(w.ops) == 0 {
		return Change{}, false, nil
	}
	var seq uint64 = 1
	if int(w.own) < len(w.d.bySeq) {
		seq = uint64(len(w.d.bySeq[w.own])) + 1
	}
	c, err := EncodeChange(ChangeHeader{Deps: w.d.Heads(), Seq: seq, StartOp: w.start, Time: t}, w.actors, w.own, w.ops)
	if err != nil {
		return Change{}, false, err
	}
	return c, true, nil
}

// ids returns the IDs of ops.
func (w *writer) ids(ops []int32) []OpID {
	out := make([]OpID, len(ops))
	for i, j := range ops {
		out[i] = w.d.ops[j].id
	}
	return out
}

func mapKey(k string) Key { return Key{Map: k, IsMap: true} }
func elemKey(id OpID) Key { return Key{Elem: id} }

// --- Plain JSON targets ---

// mapFromJSON turns map object obj into target.
func (w *writer) mapFromJSON(obj OpID, target map[string]any, root bool) error {
	d := w.d
	o := d.objs[obj]
	keys := make([]string, 0, len(o.keys)+len(target))
	for k := range o.keys {
		keys = append(keys, k)
	}
	for k := range target {
		if _, ok := o.keys[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if root && strings.HasPrefix(k, ReservedPrefix) {
			continue
		}
		vis := d.visible(o.keys[k], nil)
		v, want := target[k]
		if !want {
			if len(vis) > 0 {
				w.add(Op{Obj: obj, Key: mapKey(k), Action: ActDel, Pred: w.ids(vis)})
			}
			continue
		}
		if err := w.putJSON(obj, mapKey(k), o.keys[k], vis, v); err != nil {
			return err
		}
	}
	return nil
}

// putJSON makes the value at key (whose ops are at, visible vis) equal v.
func (w *writer) putJSON(obj OpID, key Key, at, vis []int32, v any) error {
	d := w.d
	if len(vis) == 0 {
		_, err := w.newFromJSON(obj, key, false, nil, v)
		return err
	}
	shown := vis[len(vis)-1]
	o := &d.ops[shown]
	var equal bool
	if s, ok := v.(string); ok && o.action == ActMakeText {
		// A text against a string: compare the characters, not their
		// JSON (a long text is the case that matters).
		equal = d.textOf(d.objs[o.id], nil) == s
	} else {
		want, err := canonJSON(nil, v)
		if err != nil {
			return err
		}
		equal = bytes.Equal(w.viewOf(shown, at), want)
	}
	if equal && len(vis) == 1 {
		return nil // nothing to write
	}
	// A key with conflicting values gets a new value that names them all
	// (the write resolves the conflict); otherwise an object of the same
	// kind is edited in place, so concurrent edits inside it merge.
	if o.action.IsMake() && len(vis) == 1 {
		inner := d.objs[o.id]
		switch v := v.(type) {
		case map[string]any:
			if inner.typ == ActMakeMap || inner.typ == ActMakeTable {
				return w.mapFromJSON(o.id, v, false)
			}
		case []any:
			if inner.typ == ActMakeList {
				return w.listFromJSON(inner, v)
			}
		case string:
			if inner.typ == ActMakeText {
				w.textFromString(inner, v)
				return nil
			}
		}
	}
	pred := w.ids(vis)
	if len(vis) == 1 && o.action == ActSet {
		if val, ok := keepType(d.value(o), v); ok {
			if val.Type == valCounter {
				// An increment by the difference, so that concurrent
				// increments elsewhere still add up.
				now := d.counterValue(shown, at, nil)
				w.add(Op{Obj: obj, Key: key, Action: ActInc, Value: IntValue(val.Int() - now), Pred: pred})
				return nil
			}
			w.add(Op{Obj: obj, Key: key, Action: ActSet, Value: val, Pred: pred})
			return nil
		}
	}
	_, err := w.newFromJSON(obj, key, false, pred, v)
	return err
}

// keepType returns the value of the current scalar's type that v denotes,
// when there is one that the JSON view shows as v: a counter or a uint for
// an integer, a timestamp or bytes for a string in their view's form, an
// immutable string for a string.
func keepType(cur Value, v any) (Value, bool) {
	n, isNum := v.(json.Number)
	str, isStr := v.(string)
	switch {
	case cur.Type == valCounter && isNum:
		if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
			return CounterValue(i), true
		}
	case cur.Type == valUint && isNum:
		if u, err := strconv.ParseUint(string(n), 10, 64); err == nil {
			return UintValue(u), true
		}
	case cur.Type == valTimestamp && isStr:
		tm, err := time.Parse(time.RFC3339Nano, str)
		if err != nil {
			break
		}
		val := Value{Type: valTimestamp, Raw: appendSleb(nil, tm.UnixMilli())}
		// Only the form the view shows reads back as written.
		if string(appendScalarJSON(nil, val)) == string(appendJSONString(nil, str)) {
			return val, true
		}
	case cur.Type == valBytes && isStr:
		if b, err := base64.StdEncoding.Strict().DecodeString(str); err == nil && base64.StdEncoding.EncodeToString(b) == str {
			return Value{Type: valBytes, Raw: b}, true
		}
	case cur.Type == valString && isStr:
		return StringValue(str), true
	}
	return Value{}, false
}

// newFromJSON writes v as a new value at key (inserted after the element
// key names, when insert), replacing pred, and returns its op ID.
func (w *writer) newFromJSON(obj OpID, key Key, insert bool, pred []OpID, v any) (OpID, error) {
	switch v := v.(type) {
	case map[string]any:
		id := w.add(Op{Obj: obj, Key: key, Insert: insert, Action: ActMakeMap, Pred: pred})
		keys := slices.Sorted(maps.Keys(v))
		for _, k := range keys {
			if _, err := w.newFromJSON(id, mapKey(k), false, nil, v[k]); err != nil {
				return OpID{}, err
			}
		}
		return id, nil
	case []any:
		id := w.add(Op{Obj: obj, Key: key, Insert: insert, Action: ActMakeList, Pred: pred})
		ref := OpID{}
		for _, x := range v {
			var err error
			if ref, err = w.newFromJSON(id, elemKey(ref), true, nil, x); err != nil {
				return OpID{}, err
			}
		}
		return id, nil
	case string:
		// Automerge JS 3 writes a string as text: a text object and one
		// inserted character (code point) after another.
		id := w.add(Op{Obj: obj, Key: key, Insert: insert, Action: ActMakeText, Pred: pred})
		w.insertText(id, OpID{}, v)
		return id, nil
	}
	val, err := scalarOfJSON(v)
	if err != nil {
		return OpID{}, err
	}
	return w.add(Op{Obj: obj, Key: key, Insert: insert, Action: ActSet, Value: val, Pred: pred}), nil
}

// insertText inserts s into text object obj after element ref, one code
// point per element, and returns the last element's ID.
func (w *writer) insertText(obj, ref OpID, s string) OpID {
	for _, r := range s {
		ref = w.add(Op{Obj: obj, Key: elemKey(ref), Insert: true, Action: ActSet, Value: StringValue(string(r))})
	}
	return ref
}

// scalarOfJSON maps a JSON scalar as the JSON view maps it back.
func scalarOfJSON(v any) (Value, error) {
	switch v := v.(type) {
	case nil:
		return NullValue(), nil
	case bool:
		return BoolValue(v), nil
	case json.Number:
		return numberValue(v)
	}
	return Value{}, fmt.Errorf("%w: unexpected JSON value %T", ErrInvalidWrite, v)
}

// maxSafeInteger is JavaScript's Number.MAX_SAFE_INTEGER (2^53-1).
const maxSafeInteger = 1<<53 - 1

// numberValue maps a JSON number: integers to int (uint past int64, as
// Automerge JS writes bigints), others to f64; a number written with a
// fraction or exponent that is an integer JavaScript holds exactly is an
// int, as Automerge JS writes it.
func numberValue(n json.Number) (Value, error) {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return IntValue(i), nil
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return UintValue(u), nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		return Value{}, fmt.Errorf("%w: number %s out of range", ErrInvalidWrite, s)
	}
	if f == math.Trunc(f) && math.Abs(f) <= maxSafeInteger {
		return IntValue(int64(f)), nil
	}
	return FloatValue(f), nil
}

// canonJSON appends v as the JSON view would show it once written: keys
// sorted, numbers as their mapped values print.
func canonJSON(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case map[string]any:
		keys := slices.Sorted(maps.Keys(v))
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			var err error
			if b, err = canonJSON(b, v[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case []any:
		b = append(b, '[')
		for i, x := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = canonJSON(b, x); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case string:
		return appendJSONString(b, v), nil
	}
	val, err := scalarOfJSON(v)
	if err != nil {
		return nil, err
	}
	return appendScalarJSON(b, val), nil
}

// viewOf returns the JSON view of op i (one of the ops at).
func (w *writer) viewOf(i int32, at []int32) []byte {
	jw := &jsonWriter{d: w.d}
	jw.value(i, at)
	return jw.b
}

// textFromString splices text object obj into s: the common prefix and
// suffix stay, the middle is deleted and the new middle inserted, so a
// concurrent edit elsewhere in the text is kept. Characters are compared
// in place: a text may hold a million of them.
func (w *writer) textFromString(obj *object, s string) {
	d := w.d
	var elems, shown []int32 // the elements shown, and the op each shows
	for e := obj.head; e >= 0; e = d.elems[e].next {
		if i, ok := d.elemShown(e, nil); ok {
			elems, shown = append(elems, e), append(shown, i)
		}
	}
	var buf [8]byte
	same := func(k int, ch string) bool {
		o := &d.ops[shown[k]]
		switch {
		case o.vtype != valString:
			return ch == "\ufffc" // not a character: the view shows U+FFFC
		case o.flags&flagBlob != 0:
			return string(d.blob[o.val:o.val+uint64(o.vlen)]) == ch
		}
		for j := range o.vlen {
			buf[j] = byte(o.val >> (8 * j))
		}
		return string(buf[:o.vlen]) == ch
	}
	p, from := 0, 0 // elements kept at the front, and where s goes on after them
	for p < len(elems) && from < len(s) {
		_, n := utf8.DecodeRuneInString(s[from:])
		if !same(p, s[from:from+n]) {
			break
		}
		p, from = p+1, from+n
	}
	q, to := 0, len(s) // elements kept at the back, and where they start in s
	for q < len(elems)-p && to > from {
		_, n := utf8.DecodeLastRuneInString(s[from:to])
		if !same(len(elems)-1-q, s[to-n:to]) {
			break
		}
		q, to = q+1, to-n
	}
	id := func(k int) OpID { return d.ops[d.elems[elems[k]].ins].id }
	ref := OpID{}
	if p > 0 {
		ref = id(p - 1)
	}
	for k := p; k < len(elems)-q; k++ {
		w.add(Op{Obj: obj.id, Key: elemKey(id(k)), Action: ActDel, Pred: w.ids(d.visible(d.elemOps(elems[k]), nil))})
	}
	for _, r := range s[from:to] {
		ref = w.add(Op{Obj: obj.id, Key: elemKey(ref), Insert: true, Action: ActSet, Value: StringValue(string(r))})
	}
}

// listFromJSON turns list obj into target: elements equal in both stay
// (the longest common subsequence, within maxListDiff), differing elements
// facing each other are changed in place (recursively, so editing one
// field of an object in a list edits only that field), the rest deleted or
// inserted.
func (w *writer) listFromJSON(obj *object, target []any) error {
	d := w.d
	type el struct {
		id   OpID
		at   []int32
		vis  []int32
		view []byte
	}
	var cur []el
	for e := obj.head; e >= 0; e = d.elems[e].next {
		at := d.elemOps(e)
		vis := d.visible(at, nil)
		if len(vis) == 0 {
			continue
		}
		cur = append(cur, el{id: d.ops[d.elems[e].ins].id, at: at, vis: vis, view: w.viewOf(vis[len(vis)-1], at)})
	}
	want := make([][]byte, len(target))
	for i, v := range target {
		var err error
		if want[i], err = canonJSON(nil, v); err != nil {
			return err
		}
	}
	same := func(i, j int) bool { return bytes.Equal(cur[i].view, want[j]) }
	pairs := lcsPairs(len(cur), len(target), same)

	ref := OpID{}
	i, j := 0, 0
	step := func(ni, nj int) error {
		// cur[i:ni] and target[j:nj] differ: change facing ones in place,
		// then delete or insert the rest.
		for ; i < ni && j < nj; i, j = i+1, j+1 {
			c := cur[i]
			if err := w.putJSON(obj.id, elemKey(c.id), c.at, c.vis, target[j]); err != nil {
				return err
			}
			ref = c.id
		}
		for ; i < ni; i++ {
			w.add(Op{Obj: obj.id, Key: elemKey(cur[i].id), Action: ActDel, Pred: w.ids(cur[i].vis)})
		}
		for ; j < nj; j++ {
			var err error
			if ref, err = w.newFromJSON(obj.id, elemKey(ref), true, nil, target[j]); err != nil {
				return err
			}
		}
		return nil
	}
	for _, p := range pairs {
		if err := step(p[0], p[1]); err != nil {
			return err
		}
		ref = cur[p[0]].id
		i, j = p[0]+1, p[1]+1
	}
	return step(len(cur), len(target))
}

// lcsPairs returns index pairs (i, j), ascending, of a longest common
// subsequence of two sequences of lengths n and m: the common prefix and
// suffix always, the middle by dynamic programming when it fits
// maxListDiff cells.
func lcsPairs(n, m int, same func(i, j int) bool) [][2]int {
	var pairs [][2]int
	p := 0
	for p < n && p < m && same(p, p) {
		pairs = append(pairs, [2]int{p, p})
		p++
	}
	q := 0
	for q < n-p && q < m-p && same(n-1-q, m-1-q) {
		q++
	}
	a, b := n-p-q, m-p-q
	if a > 0 && b > 0 && a*b <= maxListDiff {
		// l[x][y]: LCS length of the middles from x and y on.
		l := make([][]int32, a+1)
		for x := range l {
			l[x] = make([]int32, b+1)
		}
		for x := a - 1; x >= 0; x-- {
			for y := b - 1; y >= 0; y-- {
				if same(p+x, p+y) {
					l[x][y] = l[x+1][y+1] + 1
				} else {
					l[x][y] = max(l[x+1][y], l[x][y+1])
				}
			}
		}
		for x, y := 0, 0; x < a && y < b; {
			switch {
			case same(p+x, p+y):
				pairs = append(pairs, [2]int{p + x, p + y})
				x, y = x+1, y+1
			case l[x+1][y] >= l[x][y+1]:
				x++
			default:
				y++
			}
		}
	}
	for k := q; k > 0; k-- {
		pairs = append(pairs, [2]int{n - k, m - k})
	}
	return pairs
}

// --- Restore ---

// restoreObject restores the contents of object obj (a map, list or text
// that exists now) to what clock cl shows.
func (w *writer) restoreObject(obj *object, cl clock) {
	d := w.d
	if !obj.isSeq() {
		keys := slices.Sorted(maps.Keys(obj.keys))
		for _, k := range keys {
			w.restoreAt(obj.id, mapKey(k), obj.keys[k], cl)
		}
		return
	}
	// Element by element, in list order: the order of the elements that
	// were visible then is the same now. One deleted since is reinserted
	// right after the element before it (a new element has the greatest
	// op ID, so it lands right there).
	ref := OpID{}
	for e := obj.head; e >= 0; e = d.elems[e].next {
		at := d.elemOps(e)
		id := d.ops[d.elems[e].ins].id
		now, then := d.visible(at, nil), d.visible(at, cl)
		switch {
		case len(now) == 0 && len(then) > 0:
			ref = w.copyValue(obj.id, elemKey(ref), true, nil, then[len(then)-1], at, cl)
			continue
		default:
			w.restoreAt(obj.id, elemKey(id), at, cl)
		}
		ref = id
	}
}

// restoreAt restores the value at one map key or list element (ops at).
func (w *writer) restoreAt(obj OpID, key Key, at []int32, cl clock) {
	d := w.d
	now, then := d.visible(at, nil), d.visible(at, cl)
	switch {
	case slices.Equal(now, then):
		if len(now) == 0 {
			return
		}
		o := &d.ops[now[len(now)-1]]
		switch {
		case o.action.IsMake():
			w.restoreObject(d.objs[o.id], cl)
		case o.vtype == valCounter:
			// Increments since: one of the difference, on the counter
			// the view shows (of several, when they conflict).
			i := now[len(now)-1]
			if diff := d.counterValue(i, at, cl) - d.counterValue(i, at, nil); diff != 0 {
				w.add(Op{Obj: obj, Key: key, Action: ActInc, Value: IntValue(diff), Pred: []OpID{o.id}})
			}
		}
	case len(then) == 0:
		w.add(Op{Obj: obj, Key: key, Action: ActDel, Pred: w.ids(now)})
	default:
		w.copyValue(obj, key, false, w.ids(now), then[len(then)-1], at, cl)
	}
}

// copyValue writes a copy of op i's value as cl shows it (one of the ops
// at) at key (inserted after the element key names, when insert),
// replacing pred, and returns its op ID.
func (w *writer) copyValue(obj OpID, key Key, insert bool, pred []OpID, i int32, at []int32, cl clock) OpID {
	d := w.d
	o := &d.ops[i]
	if !o.action.IsMake() {
		val := d.value(o)
		if val.Type == valCounter {
			val = CounterValue(d.counterValue(i, at, cl))
		} else {
			val.Raw = bytes.Clone(val.Raw)
		}
		return w.add(Op{Obj: obj, Key: key, Insert: insert, Action: ActSet, Value: val, Pred: pred})
	}
	src := d.objs[o.id]
	id := w.add(Op{Obj: obj, Key: key, Insert: insert, Action: src.typ, Pred: pred})
	if !src.isSeq() {
		keys := slices.Sorted(maps.Keys(src.keys))
		for _, k := range keys {
			kat := src.keys[k]
			if vis := d.visible(kat, cl); len(vis) > 0 {
				w.copyValue(id, mapKey(k), false, nil, vis[len(vis)-1], kat, cl)
			}
		}
		return id
	}
	ref := OpID{}
	for e := src.head; e >= 0; e = d.elems[e].next {
		eat := d.elemOps(e)
		if vis := d.visible(eat, cl); len(vis) > 0 {
			ref = w.copyValue(id, elemKey(ref), true, nil, vis[len(vis)-1], eat, cl)
		}
	}
	return id
}
