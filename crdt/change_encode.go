package crdt

import (
	"bytes"
	"crypto/sha256"
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
	// The change's actor table: its author, then every other actor the ops
	// refer to, ascending.
	local := map[uint32]uint64{own: 0}
	var others []uint32
	use := func(id OpID) {
		if _, ok := local[id.Actor]; !ok {
			local[id.Actor] = 0
			others = append(others, id.Actor)
		}
	}
	for i := range ops {
		op := &ops[i]
		if op.ID.Actor != own || op.ID.Ctr != h.StartOp+uint64(i) {
			return Change{}, fmt.Errorf("crdt: encode change: op %d has ID %d@%d, want %d@%d", i, op.ID.Ctr, op.ID.Actor, h.StartOp+uint64(i), own)
		}
		if !op.Obj.IsZero() {
			use(op.Obj)
		}
		if !op.Key.IsMap && !op.Key.Elem.IsZero() {
			use(op.Key.Elem)
		}
		for _, p := range op.Pred {
			use(p)
		}
	}
	slices.SortFunc(others, func(a, b uint32) int { return bytes.Compare(actors[a], actors[b]) })
	for i, a := range others {
		local[a] = uint64(i + 1)
	}

	var (
		objActor, objCtr, keyActor, action, predGroup, predActor ulebEncoder
		keyCtr, predCtr                                          deltaEncoder
		keyStr, markName                                         strEncoder
		insert                                                   boolEncoder
		expand                                                   = boolEncoder{maybe: true}
		value                                                    valueEncoder
	)
	for i := range ops {
		op := &ops[i]
		if op.Obj.IsZero() {
			objActor.appendNull()
			objCtr.appendNull()
		} else {
			objActor.append(local[op.Obj.Actor])
			objCtr.append(op.Obj.Ctr)
		}
		switch {
		case op.Key.IsMap:
			keyActor.appendNull()
			keyCtr.appendNull()
			keyStr.append(op.Key.Map)
		case op.Key.Elem.IsZero():
			keyActor.appendNull()
			keyCtr.append(0)
			keyStr.appendNull()
		default:
			keyActor.append(local[op.Key.Elem.Actor])
			keyCtr.append(op.Key.Elem.Ctr)
			keyStr.appendNull()
		}
		insert.append(op.Insert)
		action.append(uint64(op.Action))
		value.append(uint64(op.Value.Type), op.Value.Raw)
		pred := slices.Clone(op.Pred)
		slices.SortFunc(pred, func(a, b OpID) int { return lamportCmp(a, b, actors) })
		predGroup.append(uint64(len(pred)))
		for _, p := range pred {
			predActor.append(local[p.Actor])
			predCtr.append(p.Ctr)
		}
		expand.append(op.Expand)
		markName.appendOpt(op.MarkName, op.HasMarkName)
	}

	deps := slices.Clone(h.Deps)
	slices.SortFunc(deps, compareHashes)
	body := appendUleb(nil, uint64(len(deps)))
	for _, d := range deps {
		body = append(body, d[:]...)
	}
	body = appendBytes(body, actors[own])
	body = appendUleb(body, h.Seq)
	body = appendUleb(body, h.StartOp)
	body = appendSleb(body, h.Time)
	body = appendBytes(body, []byte(h.Message))
	body = appendUleb(body, uint64(len(others)))
	for _, a := range others {
		body = appendBytes(body, actors[a])
	}
	body = appendColumns(body, []column{
		{colObjActor, objActor.finish()}, {colObjCtr, objCtr.finish()},
		{colKeyActor, keyActor.finish()}, {colKeyCtr, keyCtr.finish()}, {colKeyStr, keyStr.finish()},
		{colInsert, insert.finish()}, {colAction, action.finish()},
		{colValMeta, value.meta.finish()}, {colValRaw, value.raw},
		{colPredGroup, predGroup.finish()}, {colPredActor, predActor.finish()}, {colPredCtr, predCtr.finish()},
		{colExpand, expand.finish()}, {colMarkName, markName.finish()},
	})
	raw, hash := frameChunk(chunkChange, body)
	return Change{
		Hash: hash, Deps: deps, Actor: bytes.Clone(actors[own]), Seq: h.Seq, StartOp: h.StartOp,
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
	hashed := appendUleb([]byte{typ}, uint64(len(body)))
	hashed = append(hashed, body...)
	hash := Hash(sha256.Sum256(hashed))
	out := make([]byte, 0, 8+len(hashed))
	out = append(out, chunkMagic...)
	out = append(out, hash[:4]...)
	out = append(out, hashed...)
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
