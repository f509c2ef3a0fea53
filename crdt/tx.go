package crdt

import (
	"bytes"
	"fmt"
	"slices"
)

// Tx validates changes against an Index and gathers them for one write,
// leaving the Index untouched until Commit: readers never see changes that
// are not durable yet. Several pushes can be added to one Tx (group commit);
// a push that fails is rolled back alone.
//
// A change is checked in full against the record: its dependencies exist
// (else ErrMissingDeps); seq and start op follow from them, as Automerge
// writes them and rebuilds them from a saved document; every object, element
// and predecessor its operations name exists, is older than the change, and
// has the right kind, object and key; a deletion deletes something, and
// nothing is overwritten twice in one change; and an operation on a map key
// or list element overwrites every value the change itself put there before.
// Automerge JS and automerge-go apply changes that get these wrong and then
// fail to load the document, or load something else, on some replicas.
//
// A Tx is not safe for concurrent use. The Index must not change while a Tx
// is open (the engine holds the record's read lock while it validates).
type Tx struct {
	ix *Index

	changes []Change
	pos     map[Hash]int32 // global index of pending changes
	maxOp   []uint64
	deps    [][]int32
	actors  [][]byte // actors new to the index: global index len(ix.actors)+i
	actorOf map[string]uint32
	seqs    map[uint32][]int32 // pending changes per actor, in seq order
	runs    map[uint32][]opRun
	infos   []opInfo // global index len(ix.infos)+i
	infoOf  map[opInfo]uint32
	opInfos []uint32 // op infos of mixed runs, global index len(ix.opInfos)+i
	// reserved holds the registers of reserved root keys the Tx touched
	// (see reserved.go); the others are the Index's.
	reserved map[string][]regOp
	// trusted skips the checks of what a change's ops name (LoadRecord:
	// a snapshot's changes were checked when accepted, and their rebuilt
	// hashes must still match the document's heads).
	trusted bool

	bytes, ops, budget int64
}

// Begin starts a transaction on ix.
func (ix *Index) Begin() *Tx {
	return &Tx{
		ix: ix, pos: map[Hash]int32{}, actorOf: map[string]uint32{},
		seqs: map[uint32][]int32{}, runs: map[uint32][]opRun{}, infoOf: map[opInfo]uint32{},
	}
}

// reserve makes room for n more changes (loading a snapshot: their number
// is known, and growing the slices one change at a time would copy them
// over and over).
func (tx *Tx) reserve(n int) {
	tx.changes = slices.Grow(tx.changes, n)
	tx.maxOp = slices.Grow(tx.maxOp, n)
	tx.deps = slices.Grow(tx.deps, n)
	if len(tx.pos) == 0 {
		tx.pos = make(map[Hash]int32, n)
	}
}

// Changes returns the changes added, in dependency order.
func (tx *Tx) Changes() []Change { return tx.changes }

// Bytes, Ops and Budget total the changes added (see Index).
func (tx *Tx) Bytes() int64  { return tx.bytes }
func (tx *Tx) Ops() int64    { return tx.ops }
func (tx *Tx) Budget() int64 { return tx.budget }

// Has reports whether the record or the Tx holds change h.
func (tx *Tx) Has(h Hash) bool {
	if tx.ix.Has(h) {
		return true
	}
	_, ok := tx.pos[h]
	return ok
}

// Heads returns the record's heads once the Tx is committed, sorted.
func (tx *Tx) Heads() []Hash {
	base := len(tx.ix.hash)
	dropped := map[int32]bool{}
	for _, ds := range tx.deps {
		for _, d := range ds {
			dropped[d] = true
		}
	}
	var hs []Hash
	for i := range tx.ix.heads {
		if !dropped[i] {
			hs = append(hs, tx.ix.hash[i])
		}
	}
	for i, c := range tx.changes {
		if !dropped[int32(base+i)] {
			hs = append(hs, c.Hash)
		}
	}
	slices.SortFunc(hs, compareHashes)
	return hs
}

// txMark is what rollback needs to undo an Add.
type txMark struct {
	changes, actors, infos, opInfos int
	runs                            map[uint32]runMark
	reserved                        map[string][]regOp
	bytes, ops, budget              int64
}

type runMark struct {
	n    int
	last opRun
}

func (tx *Tx) mark() txMark {
	m := txMark{changes: len(tx.changes), actors: len(tx.actors), infos: len(tx.infos), opInfos: len(tx.opInfos), reserved: cloneReserved(tx.reserved),
		runs: make(map[uint32]runMark, len(tx.runs)), bytes: tx.bytes, ops: tx.ops, budget: tx.budget}
	for a, rs := range tx.runs {
		rm := runMark{n: len(rs)}
		if len(rs) > 0 {
			rm.last = rs[len(rs)-1]
		}
		m.runs[a] = rm
	}
	return m
}

func (tx *Tx) rollback(m txMark) {
	for _, c := range tx.changes[m.changes:] {
		delete(tx.pos, c.Hash)
	}
	for a, s := range tx.seqs {
		k := 0
		for k < len(s) && int(s[k])-len(tx.ix.hash) < m.changes {
			k++
		}
		if k == 0 {
			delete(tx.seqs, a)
		} else {
			tx.seqs[a] = s[:k]
		}
	}
	tx.changes, tx.maxOp, tx.deps = tx.changes[:m.changes], tx.maxOp[:m.changes], tx.deps[:m.changes]
	tx.opInfos = tx.opInfos[:m.opInfos]
	tx.reserved = m.reserved
	for _, a := range tx.actors[m.actors:] {
		delete(tx.actorOf, string(a))
	}
	tx.actors = tx.actors[:m.actors]
	for _, in := range tx.infos[m.infos:] {
		delete(tx.infoOf, in)
	}
	tx.infos = tx.infos[:m.infos]
	for a := range tx.runs {
		rm, ok := m.runs[a]
		if !ok || rm.n == 0 {
			delete(tx.runs, a)
			continue
		}
		rs := tx.runs[a][:rm.n]
		rs[rm.n-1] = rm.last
		tx.runs[a] = rs
	}
	tx.bytes, tx.ops, tx.budget = m.bytes, m.ops, m.budget
}

// Add validates changes (in any order; those the record or the Tx already
// holds are skipped) and adds the new ones, dependencies first. On error
// nothing of them is added, and the Tx is as before. It returns the changes
// added.
func (tx *Tx) Add(changes []Change) ([]Change, error) {
	if len(changes) == 1 {
		// One change (a typical push, and every change of a snapshot
		// being loaded): no sorting, no copies.
		c := &changes[0]
		if tx.Has(c.Hash) {
			return nil, nil
		}
		var missing []Hash
		for _, d := range c.Deps {
			if !tx.Has(d) {
				missing = append(missing, d)
			}
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("%w: %s", ErrMissingDeps, hashList(missing))
		}
		m := tx.mark()
		if err := tx.add(c); err != nil {
			tx.rollback(m)
			return nil, err
		}
		return changes, nil
	}
	var fresh []Change
	seen := map[Hash]bool{}
	for _, c := range changes {
		if !tx.Has(c.Hash) && !seen[c.Hash] {
			seen[c.Hash] = true
			fresh = append(fresh, c)
		}
	}
	sorted, missing := sortChanges(fresh, tx.Has)
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrMissingDeps, hashList(missing))
	}
	m := tx.mark()
	for i := range sorted {
		if err := tx.add(&sorted[i]); err != nil {
			tx.rollback(m)
			return nil, err
		}
	}
	return sorted, nil
}

func hashList(hs []Hash) string {
	if len(hs) > 4 {
		return fmt.Sprintf("%s and %d more", HashStrings(hs[:4]), len(hs)-4)
	}
	return fmt.Sprint(HashStrings(hs))
}

// sortChanges orders changes so that each comes after its dependencies among
// them (clients may send them in any order), and returns the dependencies
// found neither among them nor by known.
func sortChanges(cs []Change, known func(Hash) bool) (sorted []Change, missing []Hash) {
	inPush := make(map[Hash]int, len(cs))
	for i, c := range cs {
		inPush[c.Hash] = i
	}
	// Depth-first post-order; change hashes cover their deps, so there are
	// no cycles, but guard anyway against a crafted duplicate.
	const (
		unvisited = iota
		visiting
		done
	)
	state := make([]uint8, len(cs))
	sorted = make([]Change, 0, len(cs))
	missingSet := map[Hash]bool{}
	var visit func(i int)
	visit = func(i int) {
		if state[i] != unvisited {
			return
		}
		state[i] = visiting
		for _, d := range cs[i].Deps {
			if j, ok := inPush[d]; ok {
				visit(j)
			} else if !known(d) && !missingSet[d] {
				missingSet[d] = true
				missing = append(missing, d)
			}
		}
		state[i] = done
		sorted = append(sorted, cs[i])
	}
	for i := range cs {
		visit(i)
	}
	return sorted, missing
}

// changeIndex returns the global index of change h (base or pending).
func (tx *Tx) changeIndex(h Hash) (int32, bool) {
	if i, ok := tx.ix.indexOf(h); ok {
		return i, true
	}
	i, ok := tx.pos[h]
	return i, ok
}

func (tx *Tx) maxOpOf(i int32) uint64 {
	if base := len(tx.ix.hash); int(i) >= base {
		return tx.maxOp[int(i)-base]
	}
	return tx.ix.maxOp[i]
}

func (tx *Tx) depsOf(i int32) []int32 {
	if base := len(tx.ix.hash); int(i) >= base {
		return tx.deps[int(i)-base]
	}
	return tx.ix.deps[tx.ix.depOff[i]:tx.ix.depOff[i+1]]
}

// actorIndex returns the global index of actor a, if known.
func (tx *Tx) actorIndex(a []byte) (uint32, bool) {
	if i, ok := tx.ix.actorIdx[string(a)]; ok {
		return i, true
	}
	i, ok := tx.actorOf[string(a)]
	return i, ok
}

func (tx *Tx) actorBytes(i uint32) []byte {
	if n := uint32(len(tx.ix.actors)); i >= n {
		return tx.actors[i-n]
	}
	return tx.ix.actors[i]
}

// seqCount returns how many changes of actor a the record and the Tx hold,
// and the global index of its last one.
func (tx *Tx) seqCount(a uint32) (int, int32) {
	var base []int32
	if int(a) < len(tx.ix.bySeq) {
		base = tx.ix.bySeq[a]
	}
	p := tx.seqs[a]
	switch {
	case len(p) > 0:
		return len(base) + len(p), p[len(p)-1]
	case len(base) > 0:
		return len(base), base[len(base)-1]
	}
	return 0, -1
}

// op returns the info of op (actor, ctr), in the record or the Tx.
func (tx *Tx) op(a uint32, ctr uint64) (opInfo, bool) {
	if in, ok := tx.ix.run(a, ctr); ok {
		return in, true
	}
	rs := tx.runs[a]
	if len(rs) == 0 {
		return opInfo{}, false
	}
	i, ok := findRunIndex(rs, ctr)
	if !ok {
		return opInfo{}, false
	}
	return tx.infoAt(rs[i].infoOf(ctr, tx.opInfoAt)), true
}

func (tx *Tx) opInfoAt(i uint32) uint32 {
	if n := uint32(len(tx.ix.opInfos)); i >= n {
		return tx.opInfos[i-n]
	}
	return tx.ix.opInfos[i]
}

func findRunIndex(rs []opRun, ctr uint64) (int, bool) {
	i, _ := slices.BinarySearchFunc(rs, ctr, func(r opRun, c uint64) int {
		switch {
		case r.ctr+uint64(r.n) <= c:
			return -1
		case r.ctr > c:
			return 1
		}
		return 0
	})
	return i, i < len(rs) && rs[i].ctr <= ctr && ctr < rs[i].ctr+uint64(rs[i].n)
}

func (tx *Tx) infoAt(i uint32) opInfo {
	if n := uint32(len(tx.ix.infos)); i >= n {
		return tx.infos[i-n]
	}
	return tx.ix.infos[i]
}

func (tx *Tx) intern(in opInfo) uint32 {
	if i, ok := tx.ix.infoOf[in]; ok {
		return i
	}
	if i, ok := tx.infoOf[in]; ok {
		return i
	}
	i := uint32(len(tx.ix.infos) + len(tx.infos))
	tx.infos = append(tx.infos, in)
	tx.infoOf[in] = i
	return i
}

// addRun records op (a, ctr), extending the actor's last run when alike.
// Ops unlike their neighbours (a change setting many keys) share a mixed
// run whose op infos are in opInfos.
func (tx *Tx) addRun(a uint32, ctr uint64, info uint32) {
	rs := tx.runs[a]
	k := len(rs) - 1
	if k < 0 || rs[k].ctr+uint64(rs[k].n) != ctr || rs[k].n == 1<<32-1 {
		tx.runs[a] = append(rs, opRun{ctr: ctr, n: 1, info: info})
		return
	}
	last := &rs[k]
	next := uint32(len(tx.ix.opInfos) + len(tx.opInfos)) // where an op info would go
	switch {
	case last.info == info:
		last.n++
	case last.info&mixedRun != 0 && last.info&^mixedRun+last.n == next:
		// The actor's last run is mixed and ends opInfos.
		end := len(tx.opInfos)
		if tx.opInfos[end-1] != info {
			tx.opInfos = append(tx.opInfos, info)
			last.n++
			return
		}
		// Two alike ops in a row start a plain run: a paste after a few
		// unlike ops costs no op infos.
		tx.opInfos = tx.opInfos[:end-1]
		if last.n--; last.n == 1 {
			last.info = tx.opInfos[end-2]
			tx.opInfos = tx.opInfos[:end-2]
		}
		tx.runs[a] = append(rs, opRun{ctr: ctr - 1, n: 2, info: info})
	case last.info&mixedRun == 0 && last.n == 1 && next < mixedRun-1:
		// Two unlike ops: make a mixed run of them.
		tx.opInfos = append(tx.opInfos, last.info, info)
		last.info, last.n = mixedRun|next, 2
	default:
		tx.runs[a] = append(rs, opRun{ctr: ctr, n: 1, info: info})
	}
}

// reaches reports whether target is one of from or their ancestors. A change
// whose causal past ends below target's cannot have target as an ancestor,
// which bounds the walk to the changes made since target.
func (tx *Tx) reaches(from []int32, target int32) bool {
	floor := tx.maxOpOf(target)
	seen := map[int32]bool{}
	stack := slices.Clone(from)
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if x == target {
			return true
		}
		if seen[x] || tx.maxOpOf(x) < floor {
			continue
		}
		seen[x] = true
		stack = append(stack, tx.depsOf(x)...)
	}
	return false
}

// add validates one change whose dependencies the record or the Tx holds,
// and adds it. On error the Tx may hold part of it: the caller rolls back.
func (tx *Tx) add(c *Change) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: change %s: %s", ErrInvalidChange, c.Hash, fmt.Sprintf(format, args...))
	}
	deps := make([]int32, 0, len(c.Deps))
	var depMax uint64
	for _, d := range c.Deps {
		i, ok := tx.changeIndex(d)
		if !ok {
			return fmt.Errorf("%w: change %s needs %s", ErrMissingDeps, c.Hash, d)
		}
		deps = append(deps, i)
		depMax = max(depMax, tx.maxOpOf(i))
	}
	if c.StartOp != depMax+1 {
		return bad("starts at op %d, its history ends at op %d", c.StartOp, depMax)
	}

	a, known := tx.actorIndex(c.Actor)
	if !known {
		a = uint32(len(tx.ix.actors) + len(tx.actors))
		tx.actors = append(tx.actors, bytes.Clone(c.Actor))
		tx.actorOf[string(c.Actor)] = a
	}
	n, last := tx.seqCount(a)
	switch {
	case c.Seq <= uint64(n):
		return bad("reuses seq %d of actor %x", c.Seq, c.Actor)
	case c.Seq > uint64(n)+1:
		return bad("has seq %d, but the record holds %d changes of actor %x", c.Seq, n, c.Actor)
	case c.Seq > 1 && !tx.trusted && !tx.reaches(deps, last):
		return bad("has seq %d but does not follow seq %d of actor %x", c.Seq, c.Seq-1, c.Actor)
	}

	addOps := tx.addOps
	if tx.trusted {
		addOps = tx.addOpsTrusted
	}
	if err := addOps(c, a, depMax); err != nil {
		return err
	}

	i := int32(len(tx.ix.hash) + len(tx.changes))
	tx.changes = append(tx.changes, *c)
	tx.pos[c.Hash] = i
	tx.maxOp = append(tx.maxOp, max(depMax, c.MaxOp()))
	tx.deps = append(tx.deps, deps)
	tx.seqs[a] = append(tx.seqs[a], i)
	tx.bytes += int64(len(c.Raw))
	tx.ops += int64(c.Ops)
	tx.budget += int64(c.Budget)
	return nil
}

// globalActors maps a change's actor table to the index's actors; an actor
// with no op in the record yet maps to ^0, which no op has.
func (tx *Tx) globalActors(local [][]byte) []uint32 {
	actors := make([]uint32, len(local))
	for j, la := range local {
		if g, ok := tx.actorIndex(la); ok {
			actors[j] = g
		} else {
			actors[j] = ^uint32(0)
		}
	}
	return actors
}

// globalID is id (its actor an index into a change's table) with the
// index's actor.
func globalID(actors []uint32, id OpID) OpID {
	if id.IsZero() {
		return OpID{}
	}
	return OpID{Ctr: id.Ctr, Actor: actors[id.Actor]}
}

// recordOp records op of actor a, on object obj at element elem (global
// IDs): its run, and the register of a reserved root key it sets.
func (tx *Tx) recordOp(op *Op, a uint32, obj, elem OpID, global func(OpID) OpID) {
	if isReservedRoot(op.Obj, op.Key) {
		preds := make([]OpID, len(op.Pred))
		for j, p := range op.Pred {
			preds[j] = global(p)
		}
		tx.setReserved(op.Key.Map, OpID{Ctr: op.ID.Ctr, Actor: a}, op, preds)
	}
	in := opInfo{kind: kindOfOp(op)}
	if in.kind != kindDel {
		in.obj = obj
		if !op.Insert {
			in.key, in.elem = op.Key.Map, elem
		}
	}
	tx.addRun(a, op.ID.Ctr, tx.intern(in))
}

// addOpsTrusted records the operations of change c (actor a) without
// checking what they name: for a snapshot being loaded, whose changes were
// checked when they were accepted and whose rebuilt hashes must match the
// document's heads (so a damaged snapshot still fails to load).
func (tx *Tx) addOpsTrusted(c *Change, a uint32, _ uint64) error {
	var actors []uint32
	return c.readOps(func(op *Op, local [][]byte) error {
		if actors == nil {
			actors = tx.globalActors(local)
		}
		global := func(id OpID) OpID { return globalID(actors, id) }
		var elem OpID
		if !op.Key.IsMap {
			elem = global(op.Key.Elem)
		}
		tx.recordOp(op, a, global(op.Obj), elem, global)
		return nil
	})
}

// keyOf is a map key or list element of an object, for the rule on values a
// change puts at one key.
type keyOf struct {
	obj  OpID
	key  string
	elem OpID
}

// addOps checks the operations of change c (actor a, history up to depMax)
// and records them.
func (tx *Tx) addOps(c *Change, a uint32, depMax uint64) error {
	bad := func(i int, format string, args ...any) error {
		return fmt.Errorf("%w: change %s op %d: %s", ErrInvalidChange, c.Hash, i, fmt.Sprintf(format, args...))
	}
	// live holds, per key, the ops of this change that hold a value there
	// now: a later op on the key must overwrite them (Automerge's
	// transactions always name what is visible at the key as predecessors).
	live := map[keyOf][]OpID{}
	// overwritten collects the predecessors of every op but increments:
	// nothing may be overwritten twice in one change.
	var overwritten []OpID
	i := 0
	var actors []uint32 // change-local actor index → global, or missing
	err := c.readOps(func(op *Op, local [][]byte) error {
		defer func() { i++ }()
		if actors == nil {
			actors = tx.globalActors(local)
		}
		global := func(id OpID) OpID { return globalID(actors, id) }
		// ref resolves an op the change names: its own earlier ops, or ops
		// of its history (no later than its dependencies reach).
		ref := func(id OpID) (opInfo, bool) {
			g := global(id)
			if g.Actor == ^uint32(0) {
				return opInfo{}, false
			}
			if g.Actor == a && g.Ctr >= c.StartOp {
				return tx.op(g.Actor, g.Ctr)
			}
			if g.Ctr > depMax {
				return opInfo{}, false
			}
			return tx.op(g.Actor, g.Ctr)
		}
		obj := global(op.Obj)
		if !op.Obj.IsZero() {
			in, ok := ref(op.Obj)
			switch {
			case !ok:
				return bad(i, "object %d@%x is not in its history", op.Obj.Ctr, local[op.Obj.Actor])
			case in.kind.isMap():
				if !op.Key.IsMap {
					return bad(i, "element key in a map")
				}
			case in.kind.isSeq():
				if op.Key.IsMap {
					return bad(i, "map key in a list")
				}
			default:
				return bad(i, "object %d@%x is not an object", op.Obj.Ctr, local[op.Obj.Actor])
			}
		}
		var elem OpID
		if !op.Key.IsMap && !op.Key.Elem.IsZero() {
			elem = global(op.Key.Elem)
			in, ok := ref(op.Key.Elem)
			if !ok || !in.kind.insert() || in.obj != obj {
				return bad(i, "element %d@%x is not an element of its object", op.Key.Elem.Ctr, local[op.Key.Elem.Actor])
			}
		}
		for _, p := range op.Pred {
			in, ok := ref(p)
			if !ok || in.kind == kindDel || in.obj != obj {
				return bad(i, "predecessor %d@%x is not an op on the op's object", p.Ctr, local[p.Actor])
			}
			gp := global(p)
			same := in.kind.insert() && !op.Key.IsMap && elem == gp ||
				!in.kind.insert() && (op.Key.IsMap && in.key == op.Key.Map && in.elem == OpID{} || !op.Key.IsMap && in.elem == elem && in.key == "")
			if !same {
				return bad(i, "predecessor %d@%x is on another key", p.Ctr, local[p.Actor])
			}
			if op.Action != ActInc {
				overwritten = append(overwritten, gp)
			}
		}

		// The values this change put at the key before must be overwritten.
		if !op.Insert {
			k := keyOf{obj: obj, key: op.Key.Map, elem: elem}
			if prev := live[k]; len(prev) > 0 && op.Action != ActInc {
				for _, l := range prev {
					if !slices.ContainsFunc(op.Pred, func(p OpID) bool { return global(p) == l }) {
						return bad(i, "leaves the value %d@%x it set at the same key before in place", l.Ctr, tx.actorBytes(l.Actor))
					}
				}
				delete(live, k)
			}
			if op.Action != ActDel && op.Action != ActInc {
				live[k] = append(live[k], OpID{Ctr: op.ID.Ctr, Actor: a})
			}
		}

		tx.recordOp(op, a, obj, elem, global)
		return nil
	})
	if err != nil {
		return err
	}
	return checkOverwrites(overwritten, func(id OpID) error {
		return fmt.Errorf("%w: change %s overwrites op %d@%x twice", ErrInvalidChange, c.Hash, id.Ctr, tx.actorBytes(id.Actor))
	})
}

// checkOverwrites fails when an op ID repeats.
func checkOverwrites(ids []OpID, dup func(OpID) error) error {
	slices.SortFunc(ids, func(x, y OpID) int {
		switch {
		case x.Actor != y.Actor:
			return int(x.Actor) - int(y.Actor)
		case x.Ctr < y.Ctr:
			return -1
		case x.Ctr > y.Ctr:
			return 1
		}
		return 0
	})
	for i := 1; i < len(ids); i++ {
		if ids[i] == ids[i-1] {
			return dup(ids[i])
		}
	}
	return nil
}

func kindOfOp(op *Op) opKind {
	switch {
	case op.Action == ActDel:
		return kindDel
	case op.Action == ActInc:
		return kindInc
	case op.Insert && (op.Action == ActMakeMap || op.Action == ActMakeTable):
		return kindInsMap
	case op.Insert && op.Action.isSeqMake():
		return kindInsSeq
	case op.Insert && op.Action == ActMark:
		return kindInsMark
	case op.Insert:
		return kindInsScalar
	case op.Action == ActMakeMap || op.Action == ActMakeTable:
		return kindMakeMap
	case op.Action.isSeqMake():
		return kindMakeSeq
	}
	return kindScalar
}

// Commit adds the Tx's changes to the Index. The caller has exclusive access
// to the Index.
func (tx *Tx) Commit() {
	ix := tx.ix
	ix.actors = append(ix.actors, tx.actors...)
	for k, v := range tx.actorOf {
		ix.actorIdx[k] = v
	}
	for len(ix.bySeq) < len(ix.actors) {
		ix.bySeq = append(ix.bySeq, nil)
	}
	for len(ix.runs) < len(ix.actors) {
		ix.runs = append(ix.runs, nil)
	}
	ix.infos = append(ix.infos, tx.infos...)
	ix.opInfos = append(ix.opInfos, tx.opInfos...)
	for k, v := range tx.reserved {
		if ix.reserved == nil {
			ix.reserved = map[string][]regOp{}
		}
		ix.reserved[k] = v
	}
	for k, v := range tx.infoOf {
		ix.infoOf[k] = v
	}
	for a, rs := range tx.runs {
		base := ix.runs[a]
		if k := len(base) - 1; k >= 0 && len(rs) > 0 && base[k].info == rs[0].info &&
			base[k].ctr+uint64(base[k].n) == rs[0].ctr && uint64(base[k].n)+uint64(rs[0].n) < 1<<32 {
			base[k].n += rs[0].n
			rs = rs[1:]
		}
		ix.runs[a] = append(base, rs...)
	}
	for a, s := range tx.seqs {
		ix.bySeq[a] = append(ix.bySeq[a], s...)
	}
	n := len(tx.changes)
	ix.hash = slices.Grow(ix.hash, n)
	ix.actor = slices.Grow(ix.actor, n)
	ix.startOp = slices.Grow(ix.startOp, n)
	ix.nOps = slices.Grow(ix.nOps, n)
	ix.time = slices.Grow(ix.time, n)
	ix.maxOp = slices.Grow(ix.maxOp, n)
	ix.depOff = slices.Grow(ix.depOff, n)
	ix.raw = slices.Grow(ix.raw, n)
	ix.byHash.reserve(ix.hash, len(ix.hash)+n)
	for j, c := range tx.changes {
		i := int32(len(ix.hash))
		a := ix.actorIdx[string(c.Actor)]
		ix.hash = append(ix.hash, c.Hash)
		ix.actor = append(ix.actor, a)
		ix.startOp = append(ix.startOp, c.StartOp)
		ix.nOps = append(ix.nOps, uint32(c.Ops))
		ix.time = append(ix.time, c.Time)
		if c.Message != "" {
			if ix.message == nil {
				ix.message = map[int32]string{}
			}
			ix.message[i] = c.Message
		}
		ix.maxOp = append(ix.maxOp, tx.maxOp[j])
		ix.deps = append(ix.deps, tx.deps[j]...)
		ix.depOff = append(ix.depOff, uint32(len(ix.deps)))
		ix.byHash.put(ix.hash, i)
		for _, d := range tx.deps[j] {
			delete(ix.heads, d)
		}
		ix.heads[i] = struct{}{}
		ix.raw = append(ix.raw, c.Raw)
	}
	ix.bytes += tx.bytes
	ix.ops += tx.ops
	ix.budget += tx.budget
	*tx = *ix.Begin()
}

// AddAll validates changes and adds them to the index at once (Begin, Add,
// Commit): for loading a record, whose changes are trusted but checked all
// the same.
func (ix *Index) AddAll(changes []Change) error {
	tx := ix.Begin()
	if _, err := tx.Add(changes); err != nil {
		return err
	}
	tx.Commit()
	return nil
}
