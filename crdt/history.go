package crdt

import (
	"fmt"
	"slices"
)

// history indexes what Doc.Apply needs to check a change against the
// document before automerge-go sees it: every change's actor, seq and the
// highest op counter of its causal past, by hash and by (actor, seq).
//
// Why: the header of a change carries seq and start op, and Automerge
// rebuilds both from the document when a saved document is loaded (seq
// from the actor's chain, start op from the ops). automerge-go applies a
// change whose seq or start op disagree with its history, but the document
// then fails to load ("changes out of order", "mismatching heads"), in Go
// and in JS. Automerge writes seq = the actor's previous seq + 1 and start
// op = 1 + the highest op counter among the change's ancestors, so those
// are the rules.
//
// Each check costs O(deps), plus for seq > 1 a walk back from the deps that
// stops at changes older than the actor's previous change: usually a few
// steps, never the whole history.
type history struct {
	byHash map[Hash]*changeMeta
	bySeq  map[actorSeq]Hash
	// ops holds, per actor, the op counter ranges of its changes in seq
	// order (so ascending): an op ID exists iff a range holds it.
	ops map[string][]opRange
	// opInfo holds what every op of the document is (object, key, kind),
	// to check what the ops of a new change refer to. It costs memory in
	// proportion to the document's ops; a document is only held in a
	// worker, and only while its record is hot.
	opInfo map[opID]opMeta
	// base, if set, is the history this one adds a batch to: lookups fall
	// through to it, and commit moves the batch into it in O(batch).
	base *history
}

// overlay returns an empty batch on top of h.
func (h *history) overlay() *history {
	return &history{byHash: map[Hash]*changeMeta{}, bySeq: map[actorSeq]Hash{}, ops: map[string][]opRange{}, opInfo: map[opID]opMeta{}, base: h}
}

// commit adds the batch to its base and returns the base.
func (h *history) commit() *history {
	for k, v := range h.byHash {
		h.base.byHash[k] = v
	}
	for k, v := range h.bySeq {
		h.base.bySeq[k] = v
	}
	for k, v := range h.ops {
		h.base.ops[k] = append(h.base.ops[k], v...)
	}
	for k, v := range h.opInfo {
		h.base.opInfo[k] = v
	}
	return h.base
}

func (h *history) meta(x Hash) *changeMeta {
	for ; h != nil; h = h.base {
		if m := h.byHash[x]; m != nil {
			return m
		}
	}
	return nil
}

func (h *history) seqHash(k actorSeq) (Hash, bool) {
	for ; h != nil; h = h.base {
		if x, ok := h.bySeq[k]; ok {
			return x, true
		}
	}
	return Hash{}, false
}

type changeMeta struct {
	actor string
	seq   uint64
	maxOp uint64 // highest op counter of the change and all its ancestors
	deps  []Hash
}

type opRange struct{ start, end uint64 } // [start, end)

// opMeta is what later ops need to know of an op.
type opMeta struct {
	obj    opID
	action int64
	insert bool
	mapKey bool
	key    string
	elem   opID
}

type actorSeq struct {
	actor string
	seq   uint64
}

func newHistory() *history {
	return &history{byHash: map[Hash]*changeMeta{}, bySeq: map[actorSeq]Hash{}, ops: map[string][]opRange{}, opInfo: map[opID]opMeta{}}
}

// add records a change that is in the document.
func (h *history) add(c *Change, maxOp uint64) {
	m := &changeMeta{actor: string(c.Actor), seq: c.Seq, maxOp: maxOp, deps: c.Deps}
	h.byHash[c.Hash] = m
	h.bySeq[actorSeq{m.actor, m.seq}] = c.Hash
	if c.Ops > 0 {
		h.ops[m.actor] = append(h.ops[m.actor], opRange{c.StartOp, c.StartOp + uint64(c.Ops)})
	}
}

func (h *history) op(id opID) (opMeta, bool) {
	for ; h != nil; h = h.base {
		if m, ok := h.opInfo[id]; ok {
			return m, true
		}
	}
	return opMeta{}, false
}

// addOps records the ops of a change.
func (h *history) addOps(ops []opInfo) {
	for _, o := range ops {
		h.opInfo[o.id] = opMeta{obj: o.obj, action: o.action, insert: o.insert, mapKey: o.mapKey, key: o.key, elem: o.elem}
	}
}

// checkOps checks what the ops of a change refer to: objects that are
// objects of the right kind for the key, list elements of the same object,
// predecessors on the same object and key. automerge-go applies ops that
// get these wrong, and the document then no longer loads (Go and JS:
// "mismatching heads", "ops out of order", "Missing from Index"). The ops
// of the change itself must already be added (refs to them resolve).
func (h *history) checkOps(c *Change, ops []opInfo) error {
	bad := func(i int, format string, args ...any) error {
		return fmt.Errorf("%w: change %s op %d: %s", ErrInvalidChange, c.Hash, i, fmt.Sprintf(format, args...))
	}
	for i, o := range ops {
		if o.action == actMark {
			// Marks (rich text, Automerge 2.2+) are newer than the Rust
			// core automerge-go bundles (0.5), which applies them but
			// saves documents that no longer load.
			return bad(i, "marks are not supported")
		}
		if o.obj != (opID{}) {
			m, ok := h.op(o.obj)
			if !ok {
				return bad(i, "object %d@%x is not in the document", o.obj.ctr, o.obj.actor)
			}
			switch m.action {
			case actMakeMap, actMakeTable:
				if !o.mapKey {
					return bad(i, "element key in a map")
				}
			case actMakeList, actMakeText:
				if o.mapKey {
					return bad(i, "map key in a list")
				}
			default:
				return bad(i, "object %d@%x is not an object", o.obj.ctr, o.obj.actor)
			}
		}
		if !o.mapKey && o.elem != (opID{}) {
			m, ok := h.op(o.elem)
			if !ok || !m.insert || m.obj != o.obj {
				return bad(i, "element %d@%x is not an element of its object", o.elem.ctr, o.elem.actor)
			}
		}
		for _, p := range o.preds {
			m, ok := h.op(p)
			if !ok || m.obj != o.obj {
				return bad(i, "predecessor %d@%x is not on the op's object", p.ctr, p.actor)
			}
			same := m.mapKey == o.mapKey && m.key == o.key && m.elem == o.elem
			if m.insert {
				same = !o.mapKey && o.elem == p
			}
			if !same {
				return bad(i, "predecessor %d@%x is on another key", p.ctr, p.actor)
			}
		}
	}
	return nil
}

// hasOp reports whether a change of the document made op ID (actor, ctr).
func (h *history) hasOp(actor []byte, ctr uint64) bool {
	for ; h != nil; h = h.base {
		rs := h.ops[string(actor)]
		i, _ := slices.BinarySearchFunc(rs, ctr, func(r opRange, c uint64) int {
			switch {
			case r.end <= c:
				return -1
			case r.start > c:
				return 1
			}
			return 0
		})
		if i < len(rs) && rs[i].start <= ctr && ctr < rs[i].end {
			return true
		}
	}
	return false
}

// check verifies seq and start op of c, whose deps must all be in h, and
// returns the highest op counter of c's causal past including c.
func (h *history) check(c *Change) (uint64, error) {
	var depMax uint64
	for _, d := range c.Deps {
		m := h.meta(d)
		if m == nil {
			return 0, fmt.Errorf("%w: change %s needs %s", ErrMissingDeps, c.Hash, d)
		}
		depMax = max(depMax, m.maxOp)
	}
	if c.StartOp != depMax+1 {
		return 0, fmt.Errorf("%w: change %s starts at op %d, its history ends at op %d", ErrInvalidChange, c.Hash, c.StartOp, depMax)
	}
	if other, ok := h.seqHash(actorSeq{string(c.Actor), c.Seq}); ok {
		return 0, fmt.Errorf("%w: change %s reuses seq %d of actor %x (change %s)", ErrInvalidChange, c.Hash, c.Seq, c.Actor, other)
	}
	if c.Seq > 1 {
		prev, ok := h.seqHash(actorSeq{string(c.Actor), c.Seq - 1})
		if !ok || !h.reaches(c.Deps, prev) {
			return 0, fmt.Errorf("%w: change %s has seq %d but does not follow seq %d of actor %x", ErrInvalidChange, c.Hash, c.Seq, c.Seq-1, c.Actor)
		}
	}
	// Every op ID the change refers to must exist, and be older than the
	// change. automerge-go applies changes that refer to ops it does not
	// have; Automerge JS refuses them ("Missing from Index").
	for _, r := range c.refs {
		if r.ctr > depMax || !h.hasOp(r.actor, r.ctr) {
			return 0, fmt.Errorf("%w: change %s refers to op %d@%x, which is not in its history", ErrInvalidChange, c.Hash, r.ctr, r.actor)
		}
	}
	// A change's own ops end at StartOp+Ops-1; an empty change adds none.
	return max(depMax, c.StartOp+uint64(c.Ops)-1), nil
}

// reaches reports whether target is one of from or their ancestors. A change
// whose causal past ends below target's cannot have target as an ancestor,
// which bounds the walk to the changes made since target.
func (h *history) reaches(from []Hash, target Hash) bool {
	floor := h.meta(target).maxOp
	seen := map[Hash]bool{}
	stack := append([]Hash(nil), from...)
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if x == target {
			return true
		}
		if seen[x] {
			continue
		}
		seen[x] = true
		m := h.meta(x)
		if m == nil || m.maxOp < floor {
			continue
		}
		stack = append(stack, m.deps...)
	}
	return false
}
