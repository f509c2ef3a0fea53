package crdt

import (
	"fmt"
	"slices"
)

// Index is the compact record of one Automerge document that the write path
// validates changes against, without the document itself: every change (hash,
// dependencies, actor, seq, op counters), and what every operation is (its
// object, key and kind) as runs of operations, not one entry per operation.
// A paste of a million characters by one actor is one run; a document of
// typing changes costs a run per change at most (16 bytes), and one per
// actor's uninterrupted stretch of typing at best; unlike ops in a row (a
// change that sets many keys) share a mixed run, at 4 bytes per op.
//
// An Index holds the raw bytes of the changes added since the last call to
// Fold (those a snapshot does not hold) and serves deltas from them (Since).
//
// Reads of an Index may run concurrently with each other and with a Tx's
// validation; Tx.Commit, AddTrusted and Fold need exclusive access.
type Index struct {
	actors   [][]byte
	actorIdx map[string]uint32

	// Changes, in insertion order, which is a topological order: a change's
	// index is higher than every one of its ancestors'.
	hash    []Hash
	actor   []uint32
	startOp []uint64
	nOps    []uint32
	time    []int64 // the change's own timestamp (what the history lists)
	// message holds the messages of the changes that have one (few do).
	message map[int32]string
	maxOp   []uint64 // highest op counter of the change's causal past, itself included
	depOff  []uint32 // deps of change i: deps[depOff[i]:depOff[i+1]]
	deps    []int32
	byHash  hashTable // change index by hash
	bySeq   [][]int32 // per actor: change index by seq-1
	heads   map[int32]struct{}
	raw     [][]byte // raw chunks of changes rawFrom, rawFrom+1, …
	rawFrom int
	snapLen int // changes (a prefix) that the record's snapshot holds

	bytes, ops, budget int64

	runs   [][]opRun // per actor, ascending counters
	infos  []opInfo
	infoOf map[opInfo]uint32
	// opInfos holds, for a mixed run, the info of each of its ops: a change
	// that sets many keys of a map is one run of 4 bytes per op instead of
	// a 16-byte run per op.
	opInfos []uint32

	// reserved holds, per reserved root key ("$deleted"), the ops that
	// hold a value there now: what the record's lifecycle needs to know
	// without a document.
	reserved map[string][]regOp
}

// opRun is a run of consecutive operations of one actor (counters ctr …
// ctr+n-1) that are alike: same kind, object and key (info is their
// opInfo), or a mixed run: info has mixedRun set, and the rest of it is
// where the infos of the run's ops start in opInfos.
type opRun struct {
	ctr  uint64
	n    uint32
	info uint32
}

// mixedRun marks the info of a mixed run.
const mixedRun = 1 << 31

// infoOf returns the info index of op ctr of run r.
func (r opRun) infoOf(ctr uint64, opInfos func(uint32) uint32) uint32 {
	if r.info&mixedRun == 0 {
		return r.info
	}
	return opInfos(r.info&^mixedRun + uint32(ctr-r.ctr))
}

// opInfo is what later operations need to know of an operation. Actor
// indices are the Index's.
type opInfo struct {
	obj  OpID
	key  string // map key
	elem OpID   // list element (non-insert ops)
	kind opKind
}

type opKind uint8

const (
	kindMakeMap   opKind = iota + 1 // a map or table, in a map or at a list element
	kindMakeSeq                     // a list or text
	kindScalar                      // a value (or mark) set at a map key or list element
	kindInc                         // a counter increment
	kindDel                         // a deletion: never an object, element or predecessor
	kindInsScalar                   // an inserted list element holding a value
	kindInsMap                      // an inserted element that is a map
	kindInsSeq                      // an inserted element that is a list or text
	kindInsMark                     // an inserted mark boundary
)

func (k opKind) insert() bool { return k >= kindInsScalar }
func (k opKind) isMap() bool  { return k == kindMakeMap || k == kindInsMap }
func (k opKind) isSeq() bool  { return k == kindMakeSeq || k == kindInsSeq }

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{
		actorIdx: map[string]uint32{},
		depOff:   []uint32{0},
		heads:    map[int32]struct{}{},
		infoOf:   map[opInfo]uint32{},
	}
}

// Len returns the number of changes.
func (ix *Index) Len() int { return len(ix.hash) }

// Bytes returns the total size of the changes' raw chunks.
func (ix *Index) Bytes() int64 { return ix.bytes }

// Ops returns the total number of operations.
func (ix *Index) Ops() int64 { return ix.ops }

// Budget returns the operations other than deletions (see Limits).
func (ix *Index) Budget() int64 { return ix.budget }

// indexOf returns the index of the change with hash h.
func (ix *Index) indexOf(h Hash) (int32, bool) { return ix.byHash.get(ix.hash, h) }

// Has reports whether the record holds the change with hash h.
func (ix *Index) Has(h Hash) bool {
	_, ok := ix.indexOf(h)
	return ok
}

// Roots returns the hashes of the changes that have no dependencies: what
// a tombstone keeps to recognise the record's history once it is purged.
func (ix *Index) Roots() []Hash {
	var roots []Hash
	for i := range ix.hash {
		if ix.depOff[i] == ix.depOff[i+1] {
			roots = append(roots, ix.hash[i])
		}
	}
	return roots
}

// Heads returns the hashes of the changes no other change depends on, sorted.
func (ix *Index) Heads() []Hash {
	hs := make([]Hash, 0, len(ix.heads))
	for i := range ix.heads {
		hs = append(hs, ix.hash[i])
	}
	slices.SortFunc(hs, compareHashes)
	return hs
}

// Missing returns the hashes among hs that the record does not hold, in the
// order given, without duplicates.
func (ix *Index) Missing(hs []Hash) []Hash {
	var missing []Hash
	for _, h := range hs {
		if !ix.Has(h) && !slices.Contains(missing, h) {
			missing = append(missing, h)
		}
	}
	return missing
}

// MemoryBytes estimates the Go heap the index takes: what the cache counts.
// Measured by TestIndexMemory.
func (ix *Index) MemoryBytes() int64 {
	// Capacities, not lengths: append's slack is memory held too.
	n := int64(cap(ix.hash))
	b := int64(4 << 10)                   // the maps' and slices' fixed cost
	b += n * (32 + 4 + 8 + 4 + 8 + 8 + 4) // per-change arrays
	for _, m := range ix.message {
		b += int64(len(m)) + 48
	}
	b += int64(cap(ix.depOff)+cap(ix.deps)) * 4
	b += ix.byHash.bytes()
	b += int64(len(ix.heads)) * 16
	for _, r := range ix.raw {
		b += int64(len(r)) + 24
	}
	for _, rs := range ix.runs {
		b += int64(cap(rs)) * 16
	}
	b += int64(cap(ix.opInfos)) * 4
	for _, s := range ix.bySeq {
		b += int64(cap(s)) * 4
	}
	b += int64(len(ix.infos)) * 256 // the info, its key, and its infoOf entry
	for _, a := range ix.actors {
		b += int64(len(a)) * 3
	}
	return b
}

// actorOf returns the index of actor a, or false.
func (ix *Index) actorOf(a []byte) (uint32, bool) {
	i, ok := ix.actorIdx[string(a)]
	return i, ok
}

// run returns the info of op (actor, ctr), if the record holds it.
func (ix *Index) run(actor uint32, ctr uint64) (opInfo, bool) {
	if int(actor) >= len(ix.runs) {
		return opInfo{}, false
	}
	return ix.findRun(ix.runs[actor], ctr)
}

func (ix *Index) opInfoAt(i uint32) uint32 { return ix.opInfos[i] }

func (ix *Index) findRun(rs []opRun, ctr uint64) (opInfo, bool) {
	i, ok := findRunIndex(rs, ctr)
	if !ok {
		return opInfo{}, false
	}
	return ix.infos[rs[i].infoOf(ctr, ix.opInfoAt)], true
}

// ChangeOf returns the hash of the change that made op (actor, ctr), where
// actor is the actor's ID.
func (ix *Index) ChangeOf(actor []byte, ctr uint64) (Hash, bool) {
	a, ok := ix.actorOf(actor)
	if !ok {
		return Hash{}, false
	}
	i, ok := ix.changeOfOp(a, ctr)
	if !ok {
		return Hash{}, false
	}
	return ix.hash[i], true
}

func (ix *Index) changeOfOp(a uint32, ctr uint64) (int32, bool) {
	if int(a) >= len(ix.bySeq) {
		return 0, false
	}
	cs := ix.bySeq[a]
	// The actor's changes have ascending start ops: the last one that starts
	// at or before ctr holds it, if it is long enough.
	j, _ := slices.BinarySearchFunc(cs, ctr, func(c int32, ctr uint64) int {
		if ix.startOp[c] <= ctr {
			return -1
		}
		return 1
	})
	if j == 0 {
		return 0, false
	}
	c := cs[j-1]
	if ctr >= ix.startOp[c]+uint64(ix.nOps[c]) {
		return 0, false
	}
	return c, true
}

// Raw returns the raw chunk of the change with hash h, if the index still
// holds it (changes folded into a snapshot are not held).
func (ix *Index) Raw(h Hash) ([]byte, bool) {
	i, ok := ix.indexOf(h)
	if !ok || int(i) < ix.rawFrom {
		return nil, false
	}
	return ix.raw[int(i)-ix.rawFrom], true
}

// Fold records that the record's snapshot now holds its first covered
// changes, and drops the raw bytes of all but the last window of them: a
// client a little behind the snapshot still gets exactly the changes it
// lacks, one further behind gets the snapshot (see Since).
func (ix *Index) Fold(covered, window int) {
	covered = min(covered, len(ix.hash))
	ix.snapLen = max(ix.snapLen, covered)
	from := max(ix.snapLen-window, ix.rawFrom)
	drop := from - ix.rawFrom
	ix.raw = slices.Clone(ix.raw[drop:])
	ix.rawFrom = from
}

// Held returns how many changes at the end the index holds raw bytes of.
func (ix *Index) Held() int { return len(ix.hash) - ix.rawFrom }

// Since returns the raw chunks of every change that is not an ancestor of
// (or equal to) one of have, dependencies first. Hashes in have that the
// record does not hold are ignored. When some of those changes are no longer
// held (folded into the snapshot), it returns needSnapshot true and only the
// changes after the snapshot: the caller sends the snapshot with them.
//
// Its cost follows the delta, not the history: it walks back from the heads
// in descending insertion index, marking what is reachable from have, and
// stops as soon as every change still queued is an ancestor of have. Because
// every change's index is higher than its ancestors', a change popped from
// the queue has already been reached from every queued descendant, so its
// mark is final when it is popped.
func (ix *Index) Since(have []Hash) (raw [][]byte, needSnapshot bool) {
	idx := ix.since(have)
	if len(idx) > 0 && int(idx[0]) < ix.rawFrom {
		needSnapshot = true
	}
	for _, i := range idx {
		if needSnapshot && int(i) < ix.snapLen {
			continue
		}
		raw = append(raw, ix.raw[int(i)-ix.rawFrom])
	}
	return raw, needSnapshot
}

// since returns the indices of the changes that are not ancestors of have,
// ascending.
func (ix *Index) since(have []Hash) []int32 {
	if len(ix.hash) == 0 {
		return nil
	}
	known := 0
	for _, h := range have {
		if ix.Has(h) {
			known++
		}
	}
	if known == 0 {
		out := make([]int32, len(ix.hash))
		for i := range out {
			out[i] = int32(i)
		}
		return out
	}

	// reached maps a queued or popped index to whether it is an ancestor of
	// have (or in have).
	reached := make(map[int32]bool, 2*len(ix.heads)+2*len(have))
	q := make(indexHeap, 0, len(ix.heads)+len(have))
	pending := 0 // queued entries not (yet) known to be ancestors of have
	visit := func(i int32, inHave bool) {
		was, seen := reached[i]
		switch {
		case !seen:
			reached[i] = inHave
			q.push(i)
			if !inHave {
				pending++
			}
		case inHave && !was:
			// Still queued: a node's mark can only change before it is
			// popped, because everything pointing to it has a higher index.
			reached[i] = true
			pending--
		}
	}
	for _, h := range have {
		if i, ok := ix.indexOf(h); ok {
			visit(i, true)
		}
	}
	for i := range ix.heads {
		visit(i, false)
	}

	var out []int32
	for pending > 0 {
		i := q.pop()
		inHave := reached[i]
		if !inHave {
			pending--
			out = append(out, i)
		}
		for _, d := range ix.deps[ix.depOff[i]:ix.depOff[i+1]] {
			visit(d, inHave)
		}
	}
	slices.Reverse(out)
	return out
}

// indexHeap is a binary max-heap of change indices. Hand-written rather than
// container/heap so that Since does not box every index into an interface.
type indexHeap []int32

func (h *indexHeap) push(x int32) {
	*h = append(*h, x)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if s[p] >= s[i] {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *indexHeap) pop() int32 {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && s[l] > s[m] {
			m = l
		}
		if r < n && s[r] > s[m] {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// ChangeInfo is what the index knows of one change.
type ChangeInfo struct {
	Hash    Hash
	Deps    []Hash
	Actor   []byte
	Seq     uint64
	StartOp uint64
	Ops     int
	Time    int64  // the change's own timestamp, as its author wrote it; 0 if none
	Message string // the change's message, "" if none
}

// Change returns what the index knows of the change with hash h.
func (ix *Index) Change(h Hash) (ChangeInfo, bool) {
	i, ok := ix.indexOf(h)
	if !ok {
		return ChangeInfo{}, false
	}
	return ix.info(i), true
}

// seqOf returns the seq of change i: its place among its actor's changes,
// found rather than kept (8 bytes a change), as an actor's changes are
// indexed in seq order (each depends on the one before).
func (ix *Index) seqOf(i int32) uint64 {
	j, _ := slices.BinarySearch(ix.bySeq[ix.actor[i]], i)
	return uint64(j) + 1
}

func (ix *Index) info(i int32) ChangeInfo {
	deps := make([]Hash, 0, ix.depOff[i+1]-ix.depOff[i])
	for _, d := range ix.deps[ix.depOff[i]:ix.depOff[i+1]] {
		deps = append(deps, ix.hash[d])
	}
	slices.SortFunc(deps, compareHashes)
	return ChangeInfo{
		Hash: ix.hash[i], Deps: deps, Actor: ix.actors[ix.actor[i]], Seq: ix.seqOf(i),
		StartOp: ix.startOp[i], Ops: int(ix.nOps[i]), Time: ix.time[i], Message: ix.message[i],
	}
}

// Position returns the place of the change with hash h in insertion order
// (what ChangeAt takes), if the index holds it.
func (ix *Index) Position(h Hash) (int, bool) {
	i, ok := ix.indexOf(h)
	return int(i), ok
}

// ChangeAt returns what the index knows of change number i in insertion
// order, 0 <= i < Len().
func (ix *Index) ChangeAt(i int) ChangeInfo { return ix.info(int32(i)) }

// actorChanges returns the indexes of actor's changes, in seq order.
func (ix *Index) actorChanges(actor []byte) []int32 {
	a, ok := ix.actorOf(actor)
	if !ok {
		return nil
	}
	return ix.bySeq[a]
}

// Walk calls fn for every change in insertion (dependency) order, from
// change number from on.
func (ix *Index) Walk(from int, fn func(ChangeInfo) bool) {
	for i := from; i < len(ix.hash); i++ {
		if !fn(ix.info(int32(i))) {
			return
		}
	}
}

func (ix *Index) String() string {
	return fmt.Sprintf("Index{%d changes, %d ops, %d actors}", len(ix.hash), ix.ops, len(ix.actors))
}
