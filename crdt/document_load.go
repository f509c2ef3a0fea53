package crdt

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
)

var docColumns = map[uint64]bool{
	colObjActor: true, colObjCtr: true, colKeyActor: true, colKeyCtr: true, colKeyStr: true,
	colIDActor: true, colIDCtr: true, colInsert: true, colAction: true, colValMeta: true,
	colValRaw: true, colSuccGroup: true, colSuccActor: true, colSuccCtr: true,
	colExpand: true, colMarkName: true,
}

var docChangeColumns = map[uint64]bool{
	colChActor: true, colChSeq: true, colChMaxOp: true, colChTime: true, colChMessage: true,
	colChDepsGroup: true, colChDepsIndex: true, colChExtraMeta: true, colChExtraRaw: true,
}

// docLimit bounds the values a document's columns may describe. Documents
// are loaded from the store (snapshots the server wrote), never from
// clients, so this only guards against corruption.
const docLimit = math.MaxInt32

// LoadDoc loads a document chunk (what Save or Automerge.save wrote) and
// rebuilds the changes it holds, checking that they hash to the document's
// heads. It returns the document and its changes in a dependency order.
func LoadDoc(data []byte) (*Doc, []Change, error) {
	d, changes, err := loadDoc(data, nil, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("crdt: load document: %w", err)
	}
	return d, changes, nil
}

// LoadRecord loads a document chunk (a record's snapshot) into a Doc and an
// Index at once: the Index is built from the rebuilt changes as they are
// rebuilt, without parsing them again (still checked in full). The Index
// holds the raw changes; Fold drops those the snapshot holds.
func LoadRecord(data []byte) (*Doc, *Index, error) {
	ix := NewIndex()
	tx := ix.Begin()
	tx.trusted = true
	d, _, err := loadDoc(data, tx.reserve, func(c *Change) error {
		// In dependency order, each once, checked in full; no savepoint,
		// as an error fails the whole load.
		if tx.Has(c.Hash) {
			return fmt.Errorf("change %s twice", c.Hash)
		}
		return tx.add(c)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("crdt: load document: %w", err)
	}
	tx.Commit()
	return d, ix, nil
}

// maxPresize bounds what countOps may reserve: a few crafted bytes can
// claim billions of ops, and only real ones should cost memory.
const maxPresize = 1 << 22

// countOps counts the values of a document's action column and the true
// values of its insert column, stopping at the first error.
func countOps(action, insert []byte) (ops, inserts int) {
	for a := newUlebDecoder(action, docLimit, false); !a.done(); ops++ {
		if _, _, err := a.next(); err != nil {
			break
		}
	}
	for b := newBoolDecoder(insert, docLimit, false); !b.done() && inserts <= ops; {
		v, err := b.next()
		if err != nil {
			break
		}
		if v {
			inserts++
		}
	}
	return ops, min(inserts, ops)
}

// IsDocument reports whether b starts with a document chunk.
func IsDocument(b []byte) bool {
	return len(b) > 8 && bytes.Equal(b[:4], chunkMagic) && b[8] == chunkDocument
}

// loadOp is what the loader keeps of each op of the document, beside the
// Doc's own record of it, to rebuild the changes.
type loadOp struct {
	obj OpID
	key Key
	op  int32 // index in Doc.ops
}

func loadDoc(data []byte, reserve func(int), each func(*Change) error) (*Doc, []Change, error) {
	ch, err := readChunk(data, len(data))
	if err != nil {
		return nil, nil, err
	}
	if ch.typ != chunkDocument {
		return nil, nil, fmt.Errorf("chunk type %d, want a document", ch.typ)
	}
	if len(ch.raw) != len(data) {
		return nil, nil, fmt.Errorf("%d bytes after the document", len(data)-len(ch.raw))
	}
	r := &reader{b: ch.body}
	nActors, err := r.uleb()
	if err != nil || nActors > uint64(r.rest()) {
		return nil, nil, fmt.Errorf("actors: %w", errOr(err, errTruncated))
	}
	d := NewDoc()
	docActors := make([]uint32, nActors) // document actor index → Doc's
	for i := range docActors {
		a, err := readBytes(r)
		if err != nil || len(a) == 0 {
			return nil, nil, fmt.Errorf("actor %d: %w", i, errOr(err, errors.New("empty")))
		}
		docActors[i] = d.actor(a)
	}
	nHeads, err := r.uleb()
	if err != nil || nHeads > uint64(r.rest()/32) {
		return nil, nil, fmt.Errorf("heads: %w", errOr(err, errTruncated))
	}
	heads := make([]Hash, nHeads)
	for i := range heads {
		b, _ := r.bytes(32)
		heads[i] = Hash(b)
	}
	changeCols, err := parseColumnMeta(r, docChangeColumns)
	if err != nil {
		return nil, nil, fmt.Errorf("change columns: %w", err)
	}
	opCols, err := parseColumnMeta(r, docColumns)
	if err != nil {
		return nil, nil, fmt.Errorf("op columns: %w", err)
	}
	chData, err := readColumnData(r, changeCols)
	if err != nil {
		return nil, nil, fmt.Errorf("change columns: %w", err)
	}
	opData, err := readColumnData(r, opCols)
	if err != nil {
		return nil, nil, fmt.Errorf("op columns: %w", err)
	}
	// What follows is the index of each head in the change list (absent in
	// documents of old Automerge JS versions): not needed, the heads are
	// checked against the rebuilt changes.

	actorOf := func(a uint64) (uint32, error) {
		if a >= uint64(len(docActors)) {
			return 0, fmt.Errorf("actor %d out of range", a)
		}
		return docActors[a], nil
	}
	metas, err := readChangeMeta(chData, actorOf)
	if err != nil {
		return nil, nil, err
	}
	loaded, err := d.readOps(opData, actorOf)
	if err != nil {
		return nil, nil, err
	}
	changes, err := d.rebuildChanges(metas, loaded, reserve, each)
	if err != nil {
		return nil, nil, err
	}
	got := d.Heads()
	slices.SortFunc(heads, compareHashes)
	if !slices.Equal(got, heads) {
		return nil, nil, fmt.Errorf("rebuilt changes have heads %v, the document says %v", HashStrings(got), HashStrings(heads))
	}
	return d, changes, nil
}

func errOr(err, alt error) error {
	if err != nil {
		return err
	}
	return alt
}

type colMeta struct{ spec, n uint64 }

// parseColumnMeta reads a column count then each spec and length.
func parseColumnMeta(r *reader, known map[uint64]bool) ([]colMeta, error) {
	n, err := r.uleb()
	if err != nil {
		return nil, err
	}
	if n > uint64(r.rest()) {
		return nil, errTruncated
	}
	cols := make([]colMeta, 0, n)
	for i := uint64(0); i < n; i++ {
		spec, err := r.uleb()
		if err != nil {
			return nil, err
		}
		size, err := r.uleb()
		if err != nil {
			return nil, err
		}
		if i > 0 && spec&^colDeflateBit < cols[len(cols)-1].spec&^colDeflateBit {
			return nil, fmt.Errorf("spec %#x out of order", spec)
		}
		cols = append(cols, colMeta{spec, size})
	}
	return cols, nil
}

// readColumnData reads the data of columns, inflating deflated ones; unknown
// columns are skipped (newer versions of Automerge may add some).
func readColumnData(r *reader, cols []colMeta) (map[uint64][]byte, error) {
	out := make(map[uint64][]byte, len(cols))
	for _, c := range cols {
		b, err := r.bytes(c.n)
		if err != nil {
			return nil, err
		}
		if c.spec&colDeflateBit != 0 {
			if b, err = inflate(b, 1<<31-1); err != nil {
				return nil, fmt.Errorf("column %#x: %w", c.spec, err)
			}
		}
		out[c.spec&^colDeflateBit] = b
	}
	return out, nil
}

// changeMeta is one row of a document's change columns.
type changeMeta struct {
	actor   uint32
	seq     uint64
	maxOp   uint64
	time    int64
	message string
	deps    []int
}

func readChangeMeta(cols map[uint64][]byte, actorOf func(uint64) (uint32, error)) ([]changeMeta, error) {
	actors := newUlebDecoder(cols[colChActor], docLimit, false)
	seqs := newDeltaDecoder(cols[colChSeq], docLimit, false)
	maxOps := newDeltaDecoder(cols[colChMaxOp], docLimit, false)
	times := newRLEDecoder[int64, slebValue](cols[colChTime], docLimit, false)
	messages := newStrDecoder(cols[colChMessage], docLimit, false)
	depsGroup := newUlebDecoder(cols[colChDepsGroup], docLimit, false)
	depsIndex := newDeltaDecoder(cols[colChDepsIndex], docLimit, false)
	var out []changeMeta
	var t int64
	for !actors.done() {
		i := len(out)
		fail := func(what string, err error) ([]changeMeta, error) {
			return nil, fmt.Errorf("change %d: %s: %w", i, what, errOr(err, errors.New("missing")))
		}
		a, ok, err := actors.next()
		if err != nil || !ok {
			return fail("actor", err)
		}
		var m changeMeta
		if m.actor, err = actorOf(a); err != nil {
			return fail("actor", err)
		}
		if m.seq, ok, err = seqs.next(); err != nil || !ok {
			return fail("seq", err)
		}
		if m.maxOp, ok, err = maxOps.next(); err != nil || !ok {
			return fail("max op", err)
		}
		dt, ok, err := times.next()
		if err != nil {
			return fail("time", err)
		}
		if ok {
			t += dt
		}
		m.time = t
		if m.message, _, err = messages.next(); err != nil {
			return fail("message", err)
		}
		g, _, err := depsGroup.next()
		if err != nil {
			return fail("deps", err)
		}
		for range g {
			dep, ok, err := depsIndex.next()
			if err != nil || !ok {
				return fail("dep", err)
			}
			if dep >= uint64(i) {
				return fail("dep", fmt.Errorf("change %d is not earlier", dep))
			}
			m.deps = append(m.deps, int(dep))
		}
		out = append(out, m)
	}
	return out, nil
}

// readOps reads the document's op columns into the Doc (in document order,
// which is the op set's own order) and returns what rebuilding the changes
// needs of each op.
func (d *Doc) readOps(cols map[uint64][]byte, actorOf func(uint64) (uint32, error)) ([]loadOp, error) {
	objActor := newUlebDecoder(cols[colObjActor], docLimit, false)
	objCtr := newUlebDecoder(cols[colObjCtr], docLimit, false)
	keyActor := newUlebDecoder(cols[colKeyActor], docLimit, false)
	keyCtr := newDeltaDecoder(cols[colKeyCtr], docLimit, false)
	keyStr := newStrDecoder(cols[colKeyStr], docLimit, false)
	idActor := newUlebDecoder(cols[colIDActor], docLimit, false)
	idCtr := newDeltaDecoder(cols[colIDCtr], docLimit, false)
	insert := newBoolDecoder(cols[colInsert], docLimit, false)
	action := newUlebDecoder(cols[colAction], docLimit, false)
	value := newValueDecoder(cols[colValMeta], cols[colValRaw], docLimit, false)
	succGroup := newUlebDecoder(cols[colSuccGroup], docLimit, false)
	succActor := newUlebDecoder(cols[colSuccActor], docLimit, false)
	succCtr := newDeltaDecoder(cols[colSuccCtr], docLimit, false)
	expand := newBoolDecoder(cols[colExpand], docLimit, false)
	markName := newStrDecoder(cols[colMarkName], docLimit, false)

	// Size what grows per op once: appending a million ops one by one
	// would copy them over and over. Counting is a cheap pass over two
	// run-length columns; a malformed one fails below, in the real pass.
	ops, inserts := countOps(cols[colAction], cols[colInsert])
	ops, inserts = min(ops, maxPresize), min(inserts, maxPresize)
	out := make([]loadOp, 0, ops)
	d.ops = slices.Grow(d.ops, ops)
	d.elems = slices.Grow(d.elems, inserts)
	var obj *object
	var cur int32 = -1 // the current element of a list
	for n := 0; !action.done(); n++ {
		fail := func(format string, args ...any) ([]loadOp, error) {
			return nil, fmt.Errorf("op %d: %s", n, fmt.Sprintf(format, args...))
		}
		opID := func(a uint64, aOK bool, c uint64, cOK bool, err error) (OpID, bool, error) {
			if err != nil {
				return OpID{}, false, err
			}
			if !aOK || !cOK {
				return OpID{}, false, nil
			}
			g, err := actorOf(a)
			if err != nil {
				return OpID{}, false, err
			}
			return OpID{Ctr: c, Actor: g}, true, nil
		}
		var op Op
		oa, oaOK, err1 := objActor.next()
		oc, ocOK, err2 := objCtr.next()
		objID, _, err := opID(oa, oaOK, oc, ocOK, errors.Join(err1, err2))
		if err != nil {
			return fail("object: %v", err)
		}
		ka, kaOK, err1 := keyActor.next()
		kc, kcOK, err2 := keyCtr.next()
		ks, ksOK, err3 := keyStr.next()
		if err := errors.Join(err1, err2, err3); err != nil {
			return fail("key: %v", err)
		}
		switch {
		case ksOK:
			op.Key = Key{Map: ks, IsMap: true}
		case kcOK && kc == 0:
		case kcOK:
			if op.Key.Elem, _, err = opID(ka, kaOK, kc, kcOK, nil); err != nil {
				return fail("key: %v", err)
			}
		default:
			return fail("no key")
		}
		ia, iaOK, err1 := idActor.next()
		ic, icOK, err2 := idCtr.next()
		id, ok, err := opID(ia, iaOK, ic, icOK, errors.Join(err1, err2))
		if err != nil || !ok || id.Ctr == 0 {
			return fail("id: %v", errOr(err, errors.New("missing")))
		}
		if op.Insert, err = insert.next(); err != nil {
			return fail("insert: %v", err)
		}
		act, ok, err := action.next()
		if err != nil || !ok || act > uint64(ActMark) || act == uint64(ActDel) {
			return fail("action %d: %v", act, err)
		}
		op.Action = Action(act)
		typ, raw, err := value.next()
		if err != nil {
			return fail("value: %v", err)
		}
		op.Value = Value{Type: uint8(typ), Raw: raw}
		if op.Expand, err = expand.next(); err != nil {
			return fail("expand: %v", err)
		}
		if op.MarkName, op.HasMarkName, err = markName.next(); err != nil {
			return fail("mark name: %v", err)
		}

		if obj == nil || obj.id != objID {
			if obj = d.objs[objID]; obj == nil {
				return fail("object %v does not exist (yet)", objID)
			}
			cur = -1
		}
		i := d.newOp(id, &op)
		switch {
		case op.Insert:
			if !obj.isSeq() {
				return fail("insert into a map")
			}
			// Elements come in list order: append.
			e := d.newElem(i, op.Key.Elem)
			if obj.tail < 0 {
				obj.head = e
			} else {
				d.elems[obj.tail].next = e
			}
			obj.tail, cur = e, e
			obj.n++
		case op.Key.IsMap:
			if obj.isSeq() {
				return fail("map key in a list")
			}
			obj.keys[op.Key.Map] = append(obj.keys[op.Key.Map], i)
		default:
			if cur < 0 || d.ops[d.elems[cur].ins].id != op.Key.Elem {
				return fail("op on element %v away from it", op.Key.Elem)
			}
			el := &d.elems[cur]
			if el.more < 0 {
				el.more = int32(len(d.more))
				d.more = append(d.more, nil)
			}
			d.more[el.more] = append(d.more[el.more], i)
		}
		if op.Action.IsMake() {
			d.newObject(i)
		}
		g, _, err := succGroup.next()
		if err != nil {
			return fail("succ: %v", err)
		}
		for range g {
			sa, saOK, err1 := succActor.next()
			sc, scOK, err2 := succCtr.next()
			s, ok, err := opID(sa, saOK, sc, scOK, errors.Join(err1, err2))
			if err != nil || !ok {
				return fail("succ: %v", errOr(err, errors.New("missing")))
			}
			d.addSucc(i, s)
		}
		out = append(out, loadOp{obj: objID, key: op.Key, op: i})
	}
	// Element IDs arrive in list order, not counter order.
	for a, rs := range d.elemRuns {
		slices.SortFunc(rs, func(x, y opRun) int {
			switch {
			case x.ctr < y.ctr:
				return -1
			case x.ctr > y.ctr:
				return 1
			}
			return 0
		})
		d.elemRuns[a] = rs
	}
	return out, nil
}

// rebuildChanges rebuilds every change of the document from its ops, as
// Automerge does when it loads one: each op belongs to the change of its
// actor whose op range holds it; an op's predecessors are the ops that list
// it as a successor; a successor that is not an op of the document is a
// deletion of what lists it. Changes are encoded in document order, so a
// change's dependencies are hashed before it. each, when not nil, is called
// with every change as it is rebuilt, its ops still attached (Index
// building reads them without parsing the change again).
//
// No map by op ID: ops and successors are sorted by ID (actor, counter) and
// merged, which keeps a million-op document to a few hundred milliseconds.
func (d *Doc) rebuildChanges(metas []changeMeta, loaded []loadOp, reserve func(int), each func(*Change) error) ([]Change, error) {
	idLess := func(a, b OpID) int {
		switch {
		case a.Actor != b.Actor:
			return int(a.Actor) - int(b.Actor)
		case a.Ctr < b.Ctr:
			return -1
		case a.Ctr > b.Ctr:
			return 1
		}
		return 0
	}
	opID := func(k int32) OpID { return d.ops[loaded[k].op].id }
	// Every op of the document, by ID.
	perm := make([]int32, len(loaded))
	for k := range perm {
		perm[k] = int32(k)
	}
	byID := func(a, b int32) int { return idLess(opID(a), opID(b)) }
	if !slices.IsSortedFunc(perm, byID) {
		slices.SortFunc(perm, byID)
	}
	// Every successor link, by the successor's ID.
	type link struct {
		to   OpID
		from int32 // index in loaded
	}
	var links []link
	for k, l := range loaded {
		for _, s := range d.succOf(l.op) {
			links = append(links, link{s, int32(k)})
		}
	}
	slices.SortFunc(links, func(a, b link) int { return idLess(a.to, b.to) })

	// Walk both in ID order: each op, and each deletion (a successor that is
	// no op), becomes an Op with its predecessors, in ID order.
	ordered := make([]Op, 0, len(loaded)+len(links)/2)
	li := 0
	var arena []byte
	emit := func(k int32) {
		l := &loaded[k]
		o := &d.ops[l.op]
		op := Op{ID: o.id, Obj: l.obj, Key: l.key, Insert: o.insert(), Action: o.action,
			Value: d.valueIn(o, &arena), Expand: o.flags&flagExpand != 0}
		if o.flags&flagMark != 0 {
			op.MarkName, op.HasMarkName = d.marks[l.op], true
		}
		ordered = append(ordered, op)
	}
	preds := func(to OpID) []OpID {
		var ps []OpID
		for li < len(links) && links[li].to == to {
			ps = append(ps, opID(links[li].from))
			li++
		}
		return ps
	}
	// A deletion's object and key are those of what it deletes (the
	// element itself, for an insert).
	del := func(to OpID) Op {
		from := &loaded[links[li].from]
		o := &d.ops[from.op]
		key := from.key
		if o.insert() {
			key = Key{Elem: o.id}
		}
		return Op{ID: to, Obj: from.obj, Key: key, Action: ActDel, Pred: preds(to)}
	}
	for _, k := range perm {
		id := opID(k)
		for li < len(links) && idLess(links[li].to, id) < 0 {
			ordered = append(ordered, del(links[li].to))
		}
		emit(k)
		if li < len(links) && links[li].to == id {
			ordered[len(ordered)-1].Pred = preds(id)
		}
	}
	for li < len(links) {
		ordered = append(ordered, del(links[li].to))
	}

	// Each actor's changes have ascending max ops, and its ops ascending
	// counters: split the actor's run of ordered ops at the max ops.
	perActor := make([][]int, len(d.actors))
	for i, m := range metas {
		if n := perActor[m.actor]; len(n) > 0 && metas[n[len(n)-1]].maxOp > m.maxOp {
			return nil, fmt.Errorf("change %d: max op %d below its actor's previous change", i, m.maxOp)
		}
		perActor[m.actor] = append(perActor[m.actor], i)
	}
	span := make([][2]int, len(metas)) // ordered[lo:hi] of each change
	for pos := 0; pos < len(ordered); {
		a := ordered[pos].ID.Actor
		cs := perActor[a]
		ci := 0
		for pos < len(ordered) && ordered[pos].ID.Actor == a {
			ctr := ordered[pos].ID.Ctr
			for ci < len(cs) && metas[cs[ci]].maxOp < ctr {
				ci++
			}
			if ci == len(cs) {
				return nil, fmt.Errorf("op %d@%x belongs to no change", ctr, d.actors[a])
			}
			j := cs[ci]
			if span[j][1] == 0 {
				span[j][0] = pos
			}
			span[j][1] = pos + 1
			pos++
		}
	}

	out := make([]Change, len(metas))
	var enc changeEncoder
	d.changes = slices.Grow(d.changes, len(metas))
	if len(d.byHash) == 0 {
		d.byHash = make(map[Hash]int32, len(metas))
	}
	if reserve != nil {
		reserve(len(metas))
	}
	for i, m := range metas {
		var cops []Op
		if span[i][1] > 0 {
			cops = ordered[span[i][0]:span[i][1]]
		}
		deps := make([]Hash, len(m.deps))
		for k, dep := range m.deps {
			deps[k] = out[dep].Hash
		}
		start := m.maxOp + 1 - uint64(len(cops))
		for k := range cops {
			if cops[k].ID.Ctr != start+uint64(k) {
				return nil, fmt.Errorf("change %d of actor %x misses op %d", m.seq, d.actors[m.actor], start+uint64(k))
			}
		}
		c, err := enc.encode(ChangeHeader{Deps: deps, Seq: m.seq, StartOp: start, Time: m.time, Message: m.message}, d.actors, m.actor, cops)
		if err != nil {
			return nil, err
		}
		if each != nil {
			c.ops, c.opActors, c.opOwn = cops, d.actors, m.actor
			if err := each(&c); err != nil {
				return nil, err
			}
			c.ops, c.opActors = nil, nil
		}
		out[i] = c
		dc := docChange{hash: c.Hash, actor: m.actor, seq: m.seq, maxOp: m.maxOp, nOps: uint32(len(cops)),
			time: m.time, message: m.message, deps: make([]int32, len(m.deps))}
		for k, dep := range m.deps {
			dc.deps[k] = int32(dep)
		}
		d.addChange(dc)
	}
	return out, nil
}

// ParseDelta parses what a sync answer carries: optionally one document
// chunk first (the server's snapshot of a long history), then change chunks.
// It returns every change, the document's rebuilt ones first.
func ParseDelta(b []byte) ([]Change, error) {
	var out []Change
	if IsDocument(b) {
		ch, err := readChunk(b, len(b))
		if err != nil {
			return nil, fmt.Errorf("%w: document chunk: %w", ErrInvalidChange, err)
		}
		_, cs, err := LoadDoc(ch.raw)
		if err != nil {
			return nil, err
		}
		out = cs
		b = b[len(ch.raw):]
	}
	if len(b) == 0 {
		return out, nil
	}
	cs, err := ParseChanges(b, Limits{MaxChunkBytes: math.MaxInt32, MaxOps: math.MaxInt32, OpFloor: math.MaxInt32})
	if err != nil {
		return nil, err
	}
	return append(out, cs...), nil
}

// DeltaChanges rewrites what a sync answer carries as change chunks only,
// for a client that forwards it where only changes are accepted (a push).
func DeltaChanges(b []byte) ([]byte, error) {
	if !IsDocument(b) {
		return b, nil
	}
	cs, err := ParseDelta(b)
	if err != nil {
		return nil, err
	}
	var out []byte
	for _, c := range cs {
		out = append(out, c.Raw...)
	}
	return out, nil
}
