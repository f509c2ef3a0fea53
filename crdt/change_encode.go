package crdt

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
)

// ChangeHeader is what a change says besides its operations.
type ChangeHeader struct {
	Deps    []Hash // sorted by EncodeChange
	Seq     uint64
	StartOp uint64
	Time    int64
	Message string
}

// EncodeChange builds a change chunk exactly as Automerge would, so that it
// has the same hash after a document holding it is saved and loaded again.
// The ops' actor indices are into actors, and own is the index of the
// change's author; ops are given in order, IDs StartOp, StartOp+1, ….
func EncodeChange(h ChangeHeader, actors [][]byte, own uint32, ops []Op) (Change, error) {
	var e changeEncoder
	c, err := e.encode(h, actors, own, ops)
	c.Actor = bytes.Clone(c.Actor) // the caller's actors stay the caller's
	return c, err
}

// changeEncoder encodes changes one after another, reusing its buffers:
// loading a document rebuilds every change it holds, and allocation is
// most of that cost.
type changeEncoder struct {
	objActor, objCtr, keyActor, action, predGroup, predActor ulebEncoder
	keyCtr, predCtr                                          deltaEncoder
	keyStr, markName                                         strEncoder
	insert, expand                                           boolEncoder
	value                                                    valueEncoder

	local  []int32 // local[a]: actor a's index in the change's table, -1 if absent
	others []uint32
	pred   []OpID
	body   []byte
	cols   []column
}

func (e *changeEncoder) encode(h ChangeHeader, actors [][]byte, own uint32, ops []Op) (Change, error) {
	// The change's actor table: its author, then every other actor the ops
	// refer to, ascending.
	if cap(e.local) < len(actors) {
		e.local = make([]int32, len(actors))
	}
	e.local = e.local[:len(actors)]
	for i := range e.local {
		e.local[i] = -1
	}
	if int(own) >= len(actors) {
		return Change{}, fmt.Errorf("crdt: encode change: author %d of %d actors", own, len(actors))
	}
	e.local[own] = 0
	e.others = e.others[:0]
	use := func(id OpID) error {
		if int(id.Actor) >= len(actors) {
			return fmt.Errorf("crdt: encode change: actor %d of %d", id.Actor, len(actors))
		}
		if e.local[id.Actor] < 0 {
			e.local[id.Actor] = 0
			e.others = append(e.others, id.Actor)
		}
		return nil
	}
	for i := range ops {
		op := &ops[i]
		if op.ID.Actor != own || op.ID.Ctr != h.StartOp+uint64(i) {
			return Change{}, fmt.Errorf("crdt: encode change: op %d has ID %d@%d, want %d@%d", i, op.ID.Ctr, op.ID.Actor, h.StartOp+uint64(i), own)
		}
		if !op.Obj.IsZero() {
			if err := use(op.Obj); err != nil {
				return Change{}, err
			}
		}
		if !op.Key.IsMap && !op.Key.Elem.IsZero() {
			if err := use(op.Key.Elem); err != nil {
				return Change{}, err
			}
		}
		for _, p := range op.Pred {
			if err := use(p); err != nil {
				return Change{}, err
			}
		}
	}
	slices.SortFunc(e.others, func(a, b uint32) int { return bytes.Compare(actors[a], actors[b]) })
	for i, a := range e.others {
		e.local[a] = int32(i + 1)
	}
	local := func(a uint32) uint64 { return uint64(e.local[a]) }

	for _, c := range []*ulebEncoder{&e.objActor, &e.objCtr, &e.keyActor, &e.action, &e.predGroup, &e.predActor} {
		c.reset()
	}
	e.keyCtr.reset()
	e.predCtr.reset()
	e.keyStr.reset()
	e.markName.reset()
	e.insert.reset(false)
	e.expand.reset(true)
	e.value.reset()
	for i := range ops {
		op := &ops[i]
		if op.Obj.IsZero() {
			e.objActor.appendNull()
			e.objCtr.appendNull()
		} else {
			e.objActor.append(local(op.Obj.Actor))
			e.objCtr.append(op.Obj.Ctr)
		}
		switch {
		case op.Key.IsMap:
			e.keyActor.appendNull()
			e.keyCtr.appendNull()
			e.keyStr.append(op.Key.Map)
		case op.Key.Elem.IsZero():
			e.keyActor.appendNull()
			e.keyCtr.append(0)
			e.keyStr.appendNull()
		default:
			e.keyActor.append(local(op.Key.Elem.Actor))
			e.keyCtr.append(op.Key.Elem.Ctr)
			e.keyStr.appendNull()
		}
		e.insert.append(op.Insert)
		e.action.append(uint64(op.Action))
		e.value.append(uint64(op.Value.Type), op.Value.Raw)
		pred := append(e.pred[:0], op.Pred...)
		slices.SortFunc(pred, func(a, b OpID) int { return lamportCmp(a, b, actors) })
		e.pred = pred
		e.predGroup.append(uint64(len(pred)))
		for _, p := range pred {
			e.predActor.append(local(p.Actor))
			e.predCtr.append(p.Ctr)
		}
		e.expand.append(op.Expand)
		e.markName.appendOpt(op.MarkName, op.HasMarkName)
	}

	deps := slices.Clone(h.Deps)
	slices.SortFunc(deps, compareHashes)
	body := appendUleb(e.body[:0], uint64(len(deps)))
	for _, d := range deps {
		body = append(body, d[:]...)
	}
	body = appendBytes(body, actors[own])
	body = appendUleb(body, h.Seq)
	body = appendUleb(body, h.StartOp)
	body = appendSleb(body, h.Time)
	body = appendBytes(body, []byte(h.Message))
	body = appendUleb(body, uint64(len(e.others)))
	for _, a := range e.others {
		body = appendBytes(body, actors[a])
	}
	e.cols = append(e.cols[:0],
		column{colObjActor, e.objActor.finish()}, column{colObjCtr, e.objCtr.finish()},
		column{colKeyActor, e.keyActor.finish()}, column{colKeyCtr, e.keyCtr.finish()}, column{colKeyStr, e.keyStr.finish()},
		column{colInsert, e.insert.finish()}, column{colAction, e.action.finish()},
		column{colValMeta, e.value.meta.finish()}, column{colValRaw, e.value.raw},
		column{colPredGroup, e.predGroup.finish()}, column{colPredActor, e.predActor.finish()}, column{colPredCtr, e.predCtr.finish()},
		column{colExpand, e.expand.finish()}, column{colMarkName, e.markName.finish()},
	)
	body = appendColumns(body, e.cols)
	e.body = body
	raw, hash := frameChunk(chunkChange, body)
	return Change{
		Hash: hash, Deps: deps, Actor: actors[own], Seq: h.Seq, StartOp: h.StartOp,
		Time: h.Time, Message: h.Message, Ops: len(ops), Raw: raw, Budget: budgetOf(ops),
	}, nil
}

func budgetOf(ops []Op) int {
	n := 0
	for i := range ops {
		if ops[i].Action != ActDel {
			n++
		}
	}
	return n
}

// column is one encoded column.
type column struct {
	spec uint64
	data []byte
}

// appendColumns writes column metadata then data, omitting empty columns
// (as Automerge does).
func appendColumns(b []byte, cols []column) []byte {
	n := 0
	for _, c := range cols {
		if len(c.data) > 0 {
			n++
		}
	}
	b = appendUleb(b, uint64(n))
	for _, c := range cols {
		if len(c.data) > 0 {
			b = appendUleb(appendUleb(b, c.spec), uint64(len(c.data)))
		}
	}
	for _, c := range cols {
		b = append(b, c.data...)
	}
	return b
}

func appendBytes(b, v []byte) []byte { return append(appendUleb(b, uint64(len(v))), v...) }

// frameChunk wraps a body into a chunk and returns it with the SHA-256 of
// type, length and body (a change's hash).
func frameChunk(typ byte, body []byte) ([]byte, Hash) {
	// One allocation: magic, checksum (filled in last), type, length, body.
	out := make([]byte, 8, 8+1+binary.MaxVarintLen64+len(body))
	copy(out, chunkMagic)
	out = append(out, typ)
	out = appendUleb(out, uint64(len(body)))
	out = append(out, body...)
	hash := Hash(sha256.Sum256(out[8:]))
	copy(out[4:8], hash[:4])
	return out, hash
}

// lamportCmp orders op IDs as Automerge does: by counter, then actor bytes.
func lamportCmp(a, b OpID, actors [][]byte) int {
	switch {
	case a.Ctr < b.Ctr:
		return -1
	case a.Ctr > b.Ctr:
		return 1
	}
	return bytes.Compare(actors[a.Actor], actors[b.Actor])
}

func compareHashes(a, b Hash) int { return bytes.Compare(a[:], b[:]) }
