package crdt

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// ReservedPrefix starts the root keys the protocol reserves for itself
// ("$deleted"); JSON views hide them.
const ReservedPrefix = "$"

// DeletedKey is the reserved root key that marks a record deleted while it
// holds true (PROTOCOL.md, "Record lifecycle").
const DeletedKey = "$deleted"

// regOp is an op that holds a value at a reserved root key now.
type regOp struct {
	id     OpID // actor index is the Index's
	action Action
	value  Value
}

// reservedOf returns the ops holding a value at reserved root key k, in the
// record and the Tx.
func (tx *Tx) reservedOf(k string) []regOp {
	if ops, ok := tx.reserved[k]; ok {
		return ops
	}
	return tx.ix.reserved[k]
}

// setReserved records op id (global actor) at reserved root key k: it
// replaces its predecessors, as in a map register. Increments change no
// register (a counter is never a deletion mark).
func (tx *Tx) setReserved(k string, id OpID, op *Op, preds []OpID) {
	if op.Action == ActInc {
		return
	}
	cur := tx.reservedOf(k)
	next := make([]regOp, 0, len(cur)+1)
	for _, r := range cur {
		if !slices.Contains(preds, r.id) {
			next = append(next, r)
		}
	}
	if op.Action != ActDel {
		next = append(next, regOp{id: id, action: op.Action, value: Value{Type: op.Value.Type, Raw: bytes.Clone(op.Value.Raw)}})
	}
	if tx.reserved == nil {
		tx.reserved = map[string][]regOp{}
	}
	tx.reserved[k] = next
}

// winner returns the value Automerge shows at a key: of the ops holding one,
// the greatest by counter, then actor ID.
func winner(ops []regOp, actor func(uint32) []byte) (regOp, bool) {
	if len(ops) == 0 {
		return regOp{}, false
	}
	return slices.MaxFunc(ops, func(x, y regOp) int {
		if x.id.Ctr != y.id.Ctr {
			if x.id.Ctr < y.id.Ctr {
				return -1
			}
			return 1
		}
		return bytes.Compare(actor(x.id.Actor), actor(y.id.Actor))
	}), true
}

func isTrue(r regOp, ok bool) bool {
	return ok && r.action == ActSet && r.value.Type == valTrue
}

// Deleted reports whether the record is deleted: its root "$deleted" shows
// true.
func (ix *Index) Deleted() bool {
	return isTrue(winner(ix.reserved[DeletedKey], func(a uint32) []byte { return ix.actors[a] }))
}

// Deleted reports whether the record is deleted with the Tx's changes.
func (tx *Tx) Deleted() bool {
	return isTrue(winner(tx.reservedOf(DeletedKey), tx.actorBytes))
}

// TouchedReserved reports whether the Tx's changes set or removed a
// reserved root key.
func (tx *Tx) TouchedReserved() bool { return len(tx.reserved) > 0 }

func isReservedRoot(obj OpID, key Key) bool {
	return obj.IsZero() && key.IsMap && strings.HasPrefix(key.Map, ReservedPrefix)
}

func cloneReserved(m map[string][]regOp) map[string][]regOp {
	if m == nil {
		return nil
	}
	out := make(map[string][]regOp, len(m))
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}

// ReservedChange makes the change that puts v at reserved root key k (or
// removes the key when v is nil), as actor at time t (Unix seconds), on top
// of the record's heads: the change a server makes for a plain delete or
// undelete. Like an Automerge transaction, it names every value at the key
// as a predecessor. It returns false when the record already shows that
// (v is the only value there, or the key is absent and v is nil).
func (ix *Index) ReservedChange(actor []byte, k string, v *Value, t int64) (Change, bool, error) {
	if !strings.HasPrefix(k, ReservedPrefix) {
		return Change{}, false, fmt.Errorf("crdt: %q is not a reserved key", k)
	}
	cur := ix.reserved[k]
	switch {
	case v == nil && len(cur) == 0:
		return Change{}, false, nil
	case v != nil && len(cur) == 1 && cur[0].action == ActSet && cur[0].value.Equal(*v):
		return Change{}, false, nil
	}
	actors := ix.actors
	own, ok := ix.actorOf(actor)
	if !ok {
		actors = append(slices.Clip(actors), actor)
		own = uint32(len(actors) - 1)
	}
	var seq uint64 = 1
	if int(own) < len(ix.bySeq) {
		seq = uint64(len(ix.bySeq[own])) + 1
	}
	heads := ix.Heads()
	var maxOp uint64
	for _, h := range heads {
		i, _ := ix.indexOf(h)
		maxOp = max(maxOp, ix.maxOp[i])
	}
	op := Op{ID: OpID{Ctr: maxOp + 1, Actor: own}, Key: Key{Map: k, IsMap: true}, Action: ActDel}
	if v != nil {
		op.Action, op.Value = ActSet, *v
	}
	for _, r := range cur {
		op.Pred = append(op.Pred, r.id)
	}
	c, err := EncodeChange(ChangeHeader{Deps: heads, Seq: seq, StartOp: maxOp + 1, Time: t}, actors, own, []Op{op})
	return c, err == nil, err
}
