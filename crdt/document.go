package crdt

import (
	"bytes"
	"fmt"
	"slices"
)

// Doc is a materialized Automerge document, in pure Go: every operation of
// its history arranged as Automerge's op set (map objects by key, lists and
// text in RGA order, every value that was ever set, with its successors).
// From it come the JSON view at any heads, the conflicts, and the document
// chunk (Save) that Automerge's load and loadIncremental accept.
//
// The write path does not need a Doc (see Index): documents are built only
// for what needs one, and dropped when the cache needs room.
//
// Changes given to a Doc must have been validated by an Index (Tx.Add):
// Apply trusts what they refer to, but never panics on what it does not find.
// A Doc is not safe for concurrent use.
type Doc struct {
	actors   [][]byte
	actorIdx map[string]uint32
	rank     []uint32 // an actor's position in byte order, for Lamport order

	objs     map[OpID]*object
	ops      []mop  // every operation but deletions (those live on as successors)
	elems    []elem // list and text elements, of every list
	elemRuns [][]opRun
	blob     []byte           // string and bytes values of more than 8 bytes
	more     [][]int32        // ops of elements beyond their insert, Lamport order
	marks    map[int32]string // mark names, by op index
	succs    map[int32][]OpID // successors beyond the first, by op index
	changes  []docChange      // in a topological order
	byHash   map[Hash]int32   // change index
	heads    map[int32]struct{}
	bySeq    [][]int32 // per actor: change index by seq-1
	maxOp    uint64
	memBytes int64 // estimate of the heap the Doc takes (MemoryBytes)
}

// mop is one operation. Scalars of up to 8 bytes (numbers, booleans, a
// character of text) are held inline in val; longer strings and bytes in
// Doc.blob at offset val.
type mop struct {
	id     OpID
	succ   OpID // the first successor (zero: none); more in Doc.succs
	val    uint64
	vlen   uint32
	action Action
	vtype  uint8
	flags  uint8
}

const (
	flagInsert uint8 = 1 << iota
	flagExpand
	flagBlob  // the value is in Doc.blob
	flagMark  // has a mark name (Doc.marks)
	flagMore  // has successors beyond succ
	flagMoved // the op's value has been moved to an object (make ops)
)

func (o *mop) insert() bool { return o.flags&flagInsert != 0 }

type object struct {
	id   OpID
	typ  Action             // ActMakeMap, ActMakeList, ActMakeText or ActMakeTable
	keys map[string][]int32 // maps: op indices by key, in Lamport order
	head int32              // lists: first element, -1 for none
	tail int32              // lists: last element while loading (appends)
	n    int32              // lists: elements
}

func (o *object) isSeq() bool { return o.typ.isSeqMake() }

type elem struct {
	ins  int32 // op index of the element's insert
	next int32 // next element of its list, -1 for none
	more int32 // index into Doc.more, -1 for none
	ref  OpID  // the element it was inserted after (zero: the head)
}

type docChange struct {
	hash    Hash
	actor   uint32
	seq     uint64
	maxOp   uint64 // the change's last op counter (startOp-1 when empty)
	nOps    uint32
	time    int64
	message string
	deps    []int32
}

// NewDoc returns an empty document.
func NewDoc() *Doc {
	return &Doc{
		actorIdx: map[string]uint32{},
		objs:     map[OpID]*object{{}: {typ: ActMakeMap, keys: map[string][]int32{}, head: -1, tail: -1}},
		marks:    map[int32]string{},
		succs:    map[int32][]OpID{},
		byHash:   map[Hash]int32{},
		heads:    map[int32]struct{}{},
	}
}

// Len returns the number of changes.
func (d *Doc) Len() int { return len(d.changes) }

// Has reports whether the document holds the change with hash h.
func (d *Doc) Has(h Hash) bool {
	_, ok := d.byHash[h]
	return ok
}

// Heads returns the document's heads, sorted.
func (d *Doc) Heads() []Hash {
	hs := make([]Hash, 0, len(d.heads))
	for i := range d.heads {
		hs = append(hs, d.changes[i].hash)
	}
	slices.SortFunc(hs, compareHashes)
	return hs
}

// MemoryBytes estimates the heap the document takes, for the cache.
func (d *Doc) MemoryBytes() int64 {
	b := int64(cap(d.ops))*40 + int64(cap(d.elems))*32 + int64(cap(d.blob))
	b += int64(len(d.changes)) * (80 + 32 + 56)
	for _, rs := range d.elemRuns {
		b += int64(cap(rs)) * 16
	}
	for _, m := range d.more {
		b += 24 + int64(cap(m))*4
	}
	b += int64(len(d.objs)) * 120
	for _, o := range d.objs {
		for k, v := range o.keys {
			b += int64(len(k)) + 48 + int64(cap(v))*4
		}
	}
	b += int64(len(d.succs)) * 64
	return b
}

// actor returns the index of actor a, adding it.
func (d *Doc) actor(a []byte) uint32 {
	if i, ok := d.actorIdx[string(a)]; ok {
		return i
	}
	i := uint32(len(d.actors))
	d.actors = append(d.actors, bytes.Clone(a))
	d.actorIdx[string(a)] = i
	d.bySeq = append(d.bySeq, nil)
	d.elemRuns = append(d.elemRuns, nil)
	// Ranks: positions in byte order. New actors are rare; recompute.
	order := make([]uint32, len(d.actors))
	for j := range order {
		order[j] = uint32(j)
	}
	slices.SortFunc(order, func(x, y uint32) int { return bytes.Compare(d.actors[x], d.actors[y]) })
	d.rank = make([]uint32, len(d.actors))
	for r, j := range order {
		d.rank[j] = uint32(r)
	}
	return i
}

// lamport orders op IDs: by counter, then actor bytes.
func (d *Doc) lamport(a, b OpID) int {
	switch {
	case a.Ctr < b.Ctr:
		return -1
	case a.Ctr > b.Ctr:
		return 1
	case a.Actor == b.Actor:
		return 0
	case d.rank[a.Actor] < d.rank[b.Actor]:
		return -1
	}
	return 1
}

// value returns an op's value.
func (d *Doc) value(o *mop) Value {
	v := Value{Type: o.vtype}
	switch {
	case o.flags&flagBlob != 0:
		v.Raw = d.blob[o.val : o.val+uint64(o.vlen)]
	case o.vlen > 0:
		var b [8]byte
		for i := range o.vlen {
			b[i] = byte(o.val >> (8 * i))
		}
		v.Raw = b[:o.vlen]
	}
	return v
}

// valueIn is value, with small values' bytes cut from *arena instead of one
// allocation each (rebuilding a document's changes decodes every value).
func (d *Doc) valueIn(o *mop, arena *[]byte) Value {
	if o.flags&flagBlob != 0 || o.vlen == 0 {
		return d.value(o)
	}
	if cap(*arena)-len(*arena) < int(o.vlen) {
		*arena = make([]byte, 0, 64<<10)
	}
	a := *arena
	start := len(a)
	for i := range o.vlen {
		a = append(a, byte(o.val>>(8*i)))
	}
	*arena = a
	return Value{Type: o.vtype, Raw: a[start:len(a):len(a)]}
}

// newOp stores an op (not a deletion) and returns its index.
func (d *Doc) newOp(id OpID, op *Op) int32 {
	m := mop{id: id, action: op.Action, vtype: op.Value.Type, vlen: uint32(len(op.Value.Raw))}
	if op.Insert {
		m.flags |= flagInsert
	}
	if op.Expand {
		m.flags |= flagExpand
	}
	if len(op.Value.Raw) <= 8 {
		for i, c := range op.Value.Raw {
			m.val |= uint64(c) << (8 * i)
		}
	} else {
		m.flags |= flagBlob
		m.val = uint64(len(d.blob))
		d.blob = append(d.blob, op.Value.Raw...)
	}
	i := int32(len(d.ops))
	if op.HasMarkName {
		m.flags |= flagMark
		d.marks[i] = op.MarkName
	}
	d.ops = append(d.ops, m)
	if id.Ctr > d.maxOp {
		d.maxOp = id.Ctr
	}
	return i
}

// addSucc records that op i was overwritten (or deleted, or incremented) by s.
func (d *Doc) addSucc(i int32, s OpID) {
	o := &d.ops[i]
	switch {
	case o.succ.IsZero():
		o.succ = s
	default:
		o.flags |= flagMore
		d.succs[i] = append(d.succs[i], s)
	}
}

// succOf returns op i's successors (unsorted).
func (d *Doc) succOf(i int32) []OpID {
	o := &d.ops[i]
	if o.succ.IsZero() {
		return nil
	}
	if o.flags&flagMore == 0 {
		return []OpID{o.succ}
	}
	return append([]OpID{o.succ}, d.succs[i]...)
}

// newObject creates the object made by op i.
func (d *Doc) newObject(i int32) {
	o := &d.ops[i]
	obj := &object{id: o.id, typ: o.action, head: -1, tail: -1}
	if !obj.isSeq() {
		obj.keys = map[string][]int32{}
	}
	d.objs[o.id] = obj
}

// elemOf returns the element with ID id.
func (d *Doc) elemOf(id OpID) (int32, bool) {
	if int(id.Actor) >= len(d.elemRuns) {
		return 0, false
	}
	rs := d.elemRuns[id.Actor]
	j, ok := findRunIndex(rs, id.Ctr)
	if !ok {
		return 0, false
	}
	return int32(rs[j].info) + int32(id.Ctr-rs[j].ctr), true
}

// newElem stores a new element for insert op i and indexes its ID.
func (d *Doc) newElem(i int32, ref OpID) int32 {
	e := int32(len(d.elems))
	d.elems = append(d.elems, elem{ins: i, next: -1, more: -1, ref: ref})
	id := d.ops[i].id
	rs := d.elemRuns[id.Actor]
	if k := len(rs) - 1; k >= 0 && rs[k].ctr+uint64(rs[k].n) == id.Ctr && int32(rs[k].info)+int32(rs[k].n) == e {
		rs[k].n++
	} else {
		d.elemRuns[id.Actor] = append(rs, opRun{ctr: id.Ctr, n: 1, info: uint32(e)})
	}
	return e
}

// elemOps returns the ops of element e: its insert, then the rest in
// Lamport order.
func (d *Doc) elemOps(e int32) []int32 {
	el := &d.elems[e]
	if el.more < 0 {
		return []int32{el.ins}
	}
	return append([]int32{el.ins}, d.more[el.more]...)
}

// addElemOp adds op i (not an insert) to element e, in Lamport order.
func (d *Doc) addElemOp(e int32, i int32) {
	el := &d.elems[e]
	if el.more < 0 {
		el.more = int32(len(d.more))
		d.more = append(d.more, []int32{i})
		return
	}
	d.more[el.more] = d.insertSorted(d.more[el.more], i)
}

// insertSorted inserts op i into a list of op indices in Lamport order.
func (d *Doc) insertSorted(list []int32, i int32) []int32 {
	id := d.ops[i].id
	k := len(list)
	for k > 0 && d.lamport(d.ops[list[k-1]].id, id) > 0 {
		k--
	}
	return slices.Insert(list, k, i)
}

// Apply applies changes that an Index accepted, in dependency order.
// Changes the document already holds are skipped. On error the document may
// hold part of them: discard it.
func (d *Doc) Apply(changes []Change) error {
	for i := range changes {
		c := &changes[i]
		if d.Has(c.Hash) {
			continue
		}
		if err := d.apply(c); err != nil {
			return err
		}
	}
	return nil
}

func (d *Doc) apply(c *Change) error {
	deps := make([]int32, 0, len(c.Deps))
	for _, h := range c.Deps {
		j, ok := d.byHash[h]
		if !ok {
			return fmt.Errorf("%w: change %s needs %s", ErrMissingDeps, c.Hash, h)
		}
		deps = append(deps, j)
	}
	a := d.actor(c.Actor)
	var local []uint32
	err := c.readOps(func(op *Op, actors [][]byte) error {
		if local == nil {
			local = make([]uint32, len(actors))
			for j, la := range actors {
				local[j] = d.actor(la)
			}
		}
		return d.applyOp(op, local)
	})
	if err != nil {
		return err
	}
	d.addChange(docChange{
		hash: c.Hash, actor: a, seq: c.Seq, maxOp: c.MaxOp(), nOps: uint32(c.Ops),
		time: c.Time, message: c.Message, deps: deps,
	})
	return nil
}

// addChange records a change's metadata.
func (d *Doc) addChange(dc docChange) {
	i := int32(len(d.changes))
	d.changes = append(d.changes, dc)
	d.byHash[dc.hash] = i
	for _, j := range dc.deps {
		delete(d.heads, j)
	}
	d.heads[i] = struct{}{}
	d.bySeq[dc.actor] = append(d.bySeq[dc.actor], i)
	if dc.maxOp > d.maxOp {
		d.maxOp = dc.maxOp
	}
}

// applyOp applies one operation of a change; local maps the change's actor
// indices to the document's.
func (d *Doc) applyOp(op *Op, local []uint32) error {
	g := func(id OpID) OpID {
		if id.IsZero() {
			return OpID{}
		}
		return OpID{Ctr: id.Ctr, Actor: local[id.Actor]}
	}
	id := g(op.ID)
	objID := g(op.Obj)
	obj := d.objs[objID]
	if obj == nil {
		return fmt.Errorf("%w: op %d@%x: object %d@%x does not exist", ErrInvalidChange, id.Ctr, d.actors[id.Actor], objID.Ctr, d.actors[objID.Actor])
	}
	if op.Insert {
		if !obj.isSeq() {
			return fmt.Errorf("%w: op %d@%x: insert into a map", ErrInvalidChange, id.Ctr, d.actors[id.Actor])
		}
		ref := g(op.Key.Elem)
		i := d.newOp(id, op)
		if err := d.insertElem(obj, i, ref); err != nil {
			return err
		}
		if op.Action.IsMake() {
			d.newObject(i)
		}
		return nil
	}

	// The ops now at the key, and where a new one goes.
	var at []int32
	var e int32 = -1
	if op.Key.IsMap {
		if obj.isSeq() {
			return fmt.Errorf("%w: op %d@%x: map key in a list", ErrInvalidChange, id.Ctr, d.actors[id.Actor])
		}
		at = obj.keys[op.Key.Map]
	} else {
		var ok bool
		if e, ok = d.elemOf(g(op.Key.Elem)); !ok {
			return fmt.Errorf("%w: op %d@%x: no element %v", ErrInvalidChange, id.Ctr, d.actors[id.Actor], g(op.Key.Elem))
		}
		at = d.elemOps(e)
	}
	for _, p := range op.Pred {
		gp := g(p)
		// From the end: what an op overwrites is usually the newest value.
		k := len(at) - 1
		for k >= 0 && d.ops[at[k]].id != gp {
			k--
		}
		if k < 0 {
			return fmt.Errorf("%w: op %d@%x: predecessor %d@%x is not at its key", ErrInvalidChange, id.Ctr, d.actors[id.Actor], gp.Ctr, d.actors[gp.Actor])
		}
		d.addSucc(at[k], id)
	}
	if op.Action == ActDel {
		return nil
	}
	i := d.newOp(id, op)
	if op.Key.IsMap {
		obj.keys[op.Key.Map] = d.insertSorted(obj.keys[op.Key.Map], i)
	} else {
		d.addElemOp(e, i)
	}
	if op.Action.IsMake() {
		d.newObject(i)
	}
	return nil
}

// insertElem places the element of insert op i after ref, as Automerge's RGA
// does: right after the reference, except that it skips every element that
// follows there and was inserted with a greater ID (those were inserted
// concurrently, or later, after the same reference, and win the place).
func (d *Doc) insertElem(obj *object, i int32, ref OpID) error {
	id := d.ops[i].id
	prev := int32(-1)
	cur := obj.head
	if !ref.IsZero() {
		r, ok := d.elemOf(ref)
		if !ok {
			return fmt.Errorf("%w: op %d@%x: no element %d@%x", ErrInvalidChange, id.Ctr, d.actors[id.Actor], ref.Ctr, d.actors[ref.Actor])
		}
		prev, cur = r, d.elems[r].next
	}
	for cur >= 0 && d.lamport(d.ops[d.elems[cur].ins].id, id) > 0 {
		prev, cur = cur, d.elems[cur].next
	}
	e := d.newElem(i, ref)
	d.elems[e].next = cur
	if prev < 0 {
		obj.head = e
	} else {
		d.elems[prev].next = e
	}
	if cur < 0 {
		obj.tail = e
	}
	obj.n++
	return nil
}
