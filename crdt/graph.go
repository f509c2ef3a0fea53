package crdt

import (
	"bytes"
	"fmt"
	"slices"
)

// Graph is the change graph of one record, in pure Go: every change, indexed
// by hash, with its dependencies resolved to insertion indices. The engine
// serves deltas from it without loading the record into automerge-go, whose
// Doc.Changes(heads) walks the whole history (see DESIGN.md).
//
// Changes are added dependencies first, so insertion order is a topological
// order, and a change's index is always higher than the index of each of its
// ancestors. Since relies on that to stop early.
//
// A Graph is not safe for concurrent use; its owner serialises access (reads
// may share a lock as long as nothing adds).
type Graph struct {
	changes []Change
	deps    [][]int32 // deps[i]: indices of changes[i].Deps
	index   map[Hash]int32
	heads   map[int32]struct{}
	bytes   int64
	ops     int64
}

// NewGraph returns an empty graph.
func NewGraph() *Graph {
	return &Graph{index: make(map[Hash]int32), heads: make(map[int32]struct{})}
}

// Len returns the number of changes.
func (g *Graph) Len() int { return len(g.changes) }

// Bytes returns the total size of the raw change chunks.
func (g *Graph) Bytes() int64 { return g.bytes }

// Ops returns the total number of operations of the changes.
func (g *Graph) Ops() int64 { return g.ops }

// Has reports whether the graph holds the change with hash h.
func (g *Graph) Has(h Hash) bool {
	_, ok := g.index[h]
	return ok
}

// Get returns the change with hash h.
func (g *Graph) Get(h Hash) (Change, bool) {
	i, ok := g.index[h]
	if !ok {
		return Change{}, false
	}
	return g.changes[i], true
}

// Add adds c. Adding a change the graph already has does nothing and returns
// nil (retries are free). Every dependency of c must already be in the graph;
// otherwise Add returns an error wrapping ErrMissingDeps and adds nothing.
func (g *Graph) Add(c Change) error {
	if g.Has(c.Hash) {
		return nil
	}
	deps := make([]int32, 0, len(c.Deps))
	for _, d := range c.Deps {
		j, ok := g.index[d]
		if !ok {
			return fmt.Errorf("%w: change %s depends on %s", ErrMissingDeps, c.Hash, d)
		}
		deps = append(deps, j)
	}
	if len(g.changes) >= 1<<31-1 {
		// int32 indices keep the index small; two billion changes in one
		// record is far beyond any sane limit.
		return fmt.Errorf("crdt: graph full")
	}
	i := int32(len(g.changes))
	g.changes = append(g.changes, c)
	g.deps = append(g.deps, deps)
	g.index[c.Hash] = i
	for _, j := range deps {
		delete(g.heads, j)
	}
	g.heads[i] = struct{}{}
	g.bytes += int64(len(c.Raw))
	g.ops += int64(c.Ops)
	return nil
}

// Heads returns the hashes of the changes no other change depends on, sorted.
func (g *Graph) Heads() []Hash {
	hs := make([]Hash, 0, len(g.heads))
	for i := range g.heads {
		hs = append(hs, g.changes[i].Hash)
	}
	slices.SortFunc(hs, compareHashes)
	return hs
}

// Missing returns the hashes among deps that the graph does not hold, in the
// order given, without duplicates.
func (g *Graph) Missing(deps []Hash) []Hash {
	var missing []Hash
	for _, d := range deps {
		if !g.Has(d) && !slices.Contains(missing, d) {
			missing = append(missing, d)
		}
	}
	return missing
}

// All returns every change in insertion (dependency) order. The slice is
// shared: do not modify it.
func (g *Graph) All() []Change { return g.changes[:len(g.changes):len(g.changes)] }

// Since returns every change that is not an ancestor of (or equal to) one of
// have, dependencies first. Hashes in have that the graph does not hold are
// ignored: a client that has something the server lacks still gets
// everything else it needs.
//
// Its cost follows the delta, not the history: it walks back from the heads
// in descending insertion index, marking what is reachable from have, and
// stops as soon as every change still queued is an ancestor of have. Because
// every change's index is higher than its ancestors', a change popped from
// the queue has already been reached from every queued descendant, so its
// mark is final when it is popped.
func (g *Graph) Since(have []Hash) []Change {
	if len(g.changes) == 0 {
		return nil
	}
	known := 0
	for _, h := range have {
		if g.Has(h) {
			known++
		}
	}
	if known == 0 {
		return slices.Clone(g.changes)
	}

	// reached maps a queued or popped index to whether it is an ancestor of
	// have (or in have).
	reached := make(map[int32]bool, 2*len(g.heads)+2*len(have))
	q := make(graphHeap, 0, len(g.heads)+len(have))
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
		if i, ok := g.index[h]; ok {
			visit(i, true)
		}
	}
	for i := range g.heads {
		visit(i, false)
	}

	var out []Change
	for pending > 0 {
		i := q.pop()
		inHave := reached[i]
		if !inHave {
			pending--
			out = append(out, g.changes[i])
		}
		for _, d := range g.deps[i] {
			visit(d, inHave)
		}
	}
	slices.Reverse(out)
	return out
}

func compareHashes(a, b Hash) int { return bytes.Compare(a[:], b[:]) }

// graphHeap is a binary max-heap of change indices. Hand-written rather than
// container/heap so that Since does not box every index into an interface.
type graphHeap []int32

func (h *graphHeap) push(x int32) {
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

func (h *graphHeap) pop() int32 {
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
