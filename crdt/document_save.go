package crdt

import (
	"bytes"
	"compress/flate"
	"slices"
)

// Column specs of a document chunk (Rust core storage/document): the change
// metadata, then the ops (which share most specs with change ops, with the
// op ID and successors in place of predecessors).
const (
	colChActor     = 0x01 // 0, actor
	colChSeq       = 0x03 // 0, delta
	colChMaxOp     = 0x13 // 1, delta
	colChTime      = 0x23 // 2, delta
	colChMessage   = 0x35 // 3, string
	colChDepsGroup = 0x40 // 4, group
	colChDepsIndex = 0x43 // 4, delta
	colChExtraMeta = 0x56 // 5, value metadata
	colChExtraRaw  = 0x57 // 5, value
)

// deflateMinSize is the size from which Automerge deflates a document's
// columns (Rust core DEFLATE_MIN_SIZE).
const deflateMinSize = 256

// Save returns the document as an Automerge document chunk, what
// Automerge.save writes: Automerge.load and loadIncremental accept it, and
// rebuild every change, with the same hashes, from it.
func (d *Doc) Save() []byte {
	// The document's actor table is sorted; op IDs refer to it by position.
	sorted := make([]uint32, len(d.actors))
	for i := range sorted {
		sorted[i] = uint32(i)
	}
	slices.SortFunc(sorted, func(a, b uint32) int { return bytes.Compare(d.actors[a], d.actors[b]) })
	rank := d.rank

	var (
		chActor, chDepsGroup        ulebEncoder
		chSeq, chMaxOp, chDepsIndex deltaEncoder
		chTime                      slebDeltaEncoder
		chMessage                   strEncoder
		chExtraMeta                 ulebEncoder
	)
	for i := range d.changes {
		c := &d.changes[i]
		chActor.append(uint64(rank[c.actor]))
		chSeq.append(c.seq)
		chMaxOp.append(c.maxOp)
		chTime.append(c.time)
		chMessage.appendOpt(c.message, c.message != "")
		chDepsGroup.append(uint64(len(c.deps)))
		// In the order of the change's own deps (by hash): Automerge JS
		// rebuilds the change with its deps in the order the document
		// lists them.
		deps := slices.Clone(c.deps)
		slices.SortFunc(deps, func(a, b int32) int { return compareHashes(d.changes[a].hash, d.changes[b].hash) })
		for _, dep := range deps {
			chDepsIndex.append(uint64(dep))
		}
		chExtraMeta.append(valBytes) // no extra bytes: an empty byte string
	}
	changeCols := []column{
		{colChActor, chActor.finish()}, {colChSeq, chSeq.finish()}, {colChMaxOp, chMaxOp.finish()},
		{colChTime, chTime.finish()}, {colChMessage, chMessage.finish()},
		{colChDepsGroup, chDepsGroup.finish()}, {colChDepsIndex, chDepsIndex.finish()},
		{colChExtraMeta, chExtraMeta.finish()},
	}

	var (
		objActor, objCtr, keyActor, idActor, action, succGroup, succActor ulebEncoder
		keyCtr, idCtr, succCtr                                            deltaEncoder
		keyStr, markName                                                  strEncoder
		insert                                                            boolEncoder
		expand                                                            = boolEncoder{maybe: true}
		value                                                             valueEncoder
	)
	emit := func(obj OpID, key Key, i int32) {
		o := &d.ops[i]
		if obj.IsZero() {
			objActor.appendNull()
			objCtr.appendNull()
		} else {
			objActor.append(uint64(rank[obj.Actor]))
			objCtr.append(obj.Ctr)
		}
		switch {
		case key.IsMap:
			keyActor.appendNull()
			keyCtr.appendNull()
			keyStr.append(key.Map)
		case key.Elem.IsZero():
			keyActor.appendNull()
			keyCtr.append(0)
			keyStr.appendNull()
		default:
			keyActor.append(uint64(rank[key.Elem.Actor]))
			keyCtr.append(key.Elem.Ctr)
			keyStr.appendNull()
		}
		idActor.append(uint64(rank[o.id.Actor]))
		idCtr.append(o.id.Ctr)
		insert.append(o.insert())
		action.append(uint64(o.action))
		v := d.value(o)
		value.append(uint64(v.Type), v.Raw)
		succ := d.succOf(i)
		slices.SortFunc(succ, d.lamport)
		succGroup.append(uint64(len(succ)))
		for _, s := range succ {
			succActor.append(uint64(rank[s.Actor]))
			succCtr.append(s.Ctr)
		}
		expand.append(o.flags&flagExpand != 0)
		if o.flags&flagMark != 0 {
			markName.append(d.marks[i])
		} else {
			markName.appendNull()
		}
	}
	for _, obj := range d.sortedObjects() {
		if obj.isSeq() {
			for e := obj.head; e >= 0; e = d.elems[e].next {
				el := &d.elems[e]
				emit(obj.id, Key{Elem: el.ref}, el.ins)
				id := d.ops[el.ins].id
				if el.more >= 0 {
					for _, j := range d.more[el.more] {
						emit(obj.id, Key{Elem: id}, j)
					}
				}
			}
			continue
		}
		keys := make([]string, 0, len(obj.keys))
		for k := range obj.keys {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			for _, j := range obj.keys[k] {
				emit(obj.id, Key{Map: k, IsMap: true}, j)
			}
		}
	}
	opCols := []column{
		{colObjActor, objActor.finish()}, {colObjCtr, objCtr.finish()},
		{colKeyActor, keyActor.finish()}, {colKeyCtr, keyCtr.finish()}, {colKeyStr, keyStr.finish()},
		{colIDActor, idActor.finish()}, {colIDCtr, idCtr.finish()},
		{colInsert, insert.finish()}, {colAction, action.finish()},
		{colValMeta, value.meta.finish()}, {colValRaw, value.raw},
		{colSuccGroup, succGroup.finish()}, {colSuccActor, succActor.finish()}, {colSuccCtr, succCtr.finish()},
		{colExpand, expand.finish()}, {colMarkName, markName.finish()},
	}

	heads := make([]int32, 0, len(d.heads))
	for i := range d.heads {
		heads = append(heads, i)
	}
	slices.SortFunc(heads, func(a, b int32) int { return compareHashes(d.changes[a].hash, d.changes[b].hash) })

	body := appendUleb(nil, uint64(len(sorted)))
	for _, a := range sorted {
		body = appendBytes(body, d.actors[a])
	}
	body = appendUleb(body, uint64(len(heads)))
	for _, h := range heads {
		body = append(body, d.changes[h].hash[:]...)
	}
	changeCols, opCols = deflateColumns(changeCols), deflateColumns(opCols)
	body = appendColumnMeta(body, changeCols)
	body = appendColumnMeta(body, opCols)
	for _, c := range changeCols {
		body = append(body, c.data...)
	}
	for _, c := range opCols {
		body = append(body, c.data...)
	}
	for _, h := range heads {
		body = appendUleb(body, uint64(h))
	}
	out, _ := frameChunk(chunkDocument, body)
	return out
}

// sortedObjects returns every object in Lamport order of their IDs, the
// root first.
func (d *Doc) sortedObjects() []*object {
	objs := make([]*object, 0, len(d.objs))
	for _, o := range d.objs {
		objs = append(objs, o)
	}
	slices.SortFunc(objs, func(a, b *object) int {
		switch {
		case a.id.IsZero() && b.id.IsZero():
			return 0
		case a.id.IsZero():
			return -1
		case b.id.IsZero():
			return 1
		}
		return d.lamport(a.id, b.id)
	})
	return objs
}

// deflateColumns deflates the columns of deflateMinSize bytes or more, as
// Automerge does when it saves a document, and drops empty ones.
func deflateColumns(cols []column) []column {
	out := make([]column, 0, len(cols))
	for _, c := range cols {
		if len(c.data) == 0 {
			continue
		}
		if len(c.data) >= deflateMinSize {
			var z bytes.Buffer
			zw, _ := flate.NewWriter(&z, flate.DefaultCompression)
			zw.Write(c.data)
			zw.Close()
			c = column{c.spec | colDeflateBit, z.Bytes()}
		}
		out = append(out, c)
	}
	return out
}

// appendColumnMeta writes the column count, then each spec and length.
func appendColumnMeta(b []byte, cols []column) []byte {
	b = appendUleb(b, uint64(len(cols)))
	for _, c := range cols {
		b = appendUleb(appendUleb(b, c.spec), uint64(len(c.data)))
	}
	return b
}

// slebDeltaEncoder writes signed values (timestamps) as a delta column.
type slebDeltaEncoder struct {
	e   slebEncoder
	abs int64
}

func (e *slebDeltaEncoder) append(v int64) {
	e.e.append(v - e.abs)
	e.abs = v
}

func (e *slebDeltaEncoder) finish() []byte { return e.e.finish() }
