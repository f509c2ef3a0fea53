package crdt

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var graphSeed = flag.Uint64("graph.seed", 0, "seed for the random DAG tests (0: time-based)")

// fakeChange makes a change with a unique hash; the graph only looks at
// Hash, Deps and Raw.
func fakeChange(n int, deps ...Hash) Change {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	return Change{Hash: sha256.Sum256(b[:]), Deps: deps, Raw: b[:]}
}

func mustAdd(tb testing.TB, g *Graph, cs ...Change) {
	tb.Helper()
	for _, c := range cs {
		if err := g.Add(c); err != nil {
			tb.Fatalf("Add(%s): %v", c.Hash, err)
		}
	}
}

func hashesOf(cs []Change) []Hash {
	hs := make([]Hash, len(cs))
	for i, c := range cs {
		hs[i] = c.Hash
	}
	return hs
}

func TestGraph_AddHeadsMissing(t *testing.T) {
	a := fakeChange(1)
	b := fakeChange(2, a.Hash)
	c := fakeChange(3, a.Hash)
	d := fakeChange(4, b.Hash, c.Hash)
	orphan := fakeChange(5, fakeChange(99).Hash)

	g := NewGraph()
	if got := g.Heads(); len(got) != 0 {
		t.Fatalf("empty Heads()=%v, want none", got)
	}
	mustAdd(t, g, a, b, c)
	want := []Hash{b.Hash, c.Hash}
	slices.SortFunc(want, compareHashes)
	if got := g.Heads(); !slices.Equal(got, want) {
		t.Fatalf("Heads()=%v, want %v", got, want)
	}
	mustAdd(t, g, d, d, b) // re-adding is a no-op
	if got, want := g.Heads(), []Hash{d.Hash}; !slices.Equal(got, want) {
		t.Fatalf("Heads()=%v, want %v", got, want)
	}
	if got, want := g.Len(), 4; got != want {
		t.Fatalf("Len()=%d, want %d", got, want)
	}
	if got, want := g.Bytes(), int64(4*8); got != want {
		t.Fatalf("Bytes()=%d, want %d", got, want)
	}
	if err := g.Add(orphan); !errors.Is(err, ErrMissingDeps) {
		t.Fatalf("Add(orphan)=%v, want ErrMissingDeps", err)
	}
	if g.Has(orphan.Hash) || g.Len() != 4 {
		t.Fatalf("a refused change was added")
	}
	if got, want := g.Missing([]Hash{a.Hash, orphan.Deps[0], orphan.Deps[0], d.Hash}), orphan.Deps; !slices.Equal(got, want) {
		t.Fatalf("Missing()=%v, want %v", got, want)
	}
	if got, ok := g.Get(c.Hash); !ok || got.Hash != c.Hash {
		t.Fatalf("Get(c)=%v,%v", got.Hash, ok)
	}
}

func TestGraph_Since(t *testing.T) {
	// a ← b ← d, a ← c ← d, c ← e (two heads: d and e)
	a := fakeChange(1)
	b := fakeChange(2, a.Hash)
	c := fakeChange(3, a.Hash)
	d := fakeChange(4, b.Hash, c.Hash)
	e := fakeChange(5, c.Hash)
	unknown := fakeChange(42).Hash
	g := NewGraph()
	mustAdd(t, g, a, b, c, d, e)

	for _, tc := range []struct {
		name string
		have []Hash
		want []Hash
	}{
		{"nothing", nil, []Hash{a.Hash, b.Hash, c.Hash, d.Hash, e.Hash}},
		{"only unknown", []Hash{unknown}, []Hash{a.Hash, b.Hash, c.Hash, d.Hash, e.Hash}},
		{"root", []Hash{a.Hash}, []Hash{b.Hash, c.Hash, d.Hash, e.Hash}},
		{"one branch", []Hash{b.Hash}, []Hash{c.Hash, d.Hash, e.Hash}},
		{"heads", []Hash{d.Hash, e.Hash}, nil},
		{"heads and unknown", []Hash{unknown, e.Hash, d.Hash}, nil},
		{"one head", []Hash{d.Hash}, []Hash{e.Hash}},
		{"other head", []Hash{e.Hash}, []Hash{b.Hash, d.Hash}},
		{"redundant", []Hash{a.Hash, c.Hash, b.Hash}, []Hash{d.Hash, e.Hash}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := hashesOf(g.Since(tc.have)); !slices.Equal(got, tc.want) {
				t.Fatalf("Since()=%v, want %v", got, tc.want)
			}
		})
	}
}

// TestGraph_SinceRandom checks Since against a brute-force ancestor
// computation on random DAGs, and that its result is in dependency order.
func TestGraph_SinceRandom(t *testing.T) {
	seed := *graphSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -graph.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	for round := range 200 {
		n := 1 + rng.IntN(60)
		g := NewGraph()
		var all []Change
		parents := make([][]int, n)
		for i := range n {
			var deps []Hash
			if i > 0 {
				// Mostly recent parents, sometimes far back, like real
				// histories with concurrent branches.
				for k := rng.IntN(3); k >= 0; k-- {
					j := i - 1 - rng.IntN(min(i, 1+rng.IntN(8)))
					if !slices.Contains(parents[i], j) {
						parents[i] = append(parents[i], j)
						deps = append(deps, all[j].Hash)
					}
				}
			}
			c := fakeChange(round*1000+i, deps...)
			all = append(all, c)
			mustAdd(t, g, c)
		}
		// Brute force: ancestors (inclusive) of a set of indices.
		ancestors := func(from []int) map[int]bool {
			seen := map[int]bool{}
			stack := slices.Clone(from)
			for len(stack) > 0 {
				i := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				if seen[i] {
					continue
				}
				seen[i] = true
				stack = append(stack, parents[i]...)
			}
			return seen
		}
		for range 10 {
			var have []Hash
			var haveIdx []int
			for k := rng.IntN(4); k > 0; k-- {
				i := rng.IntN(n)
				have = append(have, all[i].Hash)
				haveIdx = append(haveIdx, i)
			}
			if rng.IntN(4) == 0 {
				have = append(have, fakeChange(-1-round).Hash) // unknown to the graph
			}
			anc := ancestors(haveIdx)
			var want []Hash
			for i, c := range all {
				if !anc[i] {
					want = append(want, c.Hash)
				}
			}
			got := g.Since(have)
			gotSet := map[Hash]bool{}
			for _, c := range got {
				for _, d := range c.Deps {
					// Dependency order: each dep is either earlier in the
					// result or something the client already has.
					if !gotSet[d] && slices.Contains(want, d) {
						t.Fatalf("round %d: %s comes before its dep %s", round, c.Hash, d)
					}
				}
				gotSet[c.Hash] = true
			}
			if len(got) != len(want) || len(gotSet) != len(want) {
				t.Fatalf("round %d have %v: got %d changes, want %d", round, haveIdx, len(got), len(want))
			}
			for _, h := range want {
				if !gotSet[h] {
					t.Fatalf("round %d have %v: %s missing from Since", round, haveIdx, h)
				}
			}
		}
	}
}

// linearGraph returns a graph of n changes, each depending on the previous
// one, with an occasional two-way branch to keep the walk honest.
func linearGraph(tb testing.TB, n int) (*Graph, []Change) {
	tb.Helper()
	g := NewGraph()
	all := make([]Change, 0, n)
	for i := range n {
		var deps []Hash
		switch {
		case i == 0:
		case i%100 == 2:
			deps = []Hash{all[i-1].Hash, all[i-2].Hash}
		case i%100 == 1 && i > 1:
			deps = []Hash{all[i-2].Hash}
		default:
			deps = []Hash{all[i-1].Hash}
		}
		c := fakeChange(i, deps...)
		all = append(all, c)
		mustAdd(tb, g, c)
	}
	return g, all
}

func benchmarkSince(b *testing.B, n int) {
	g, all := linearGraph(b, n)
	have := []Hash{all[n-2].Hash}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if got := g.Since(have); len(got) != 1 {
			b.Fatalf("Since()=%d changes, want 1", len(got))
		}
	}
}

func BenchmarkSince_History100(b *testing.B)  { benchmarkSince(b, 100) }
func BenchmarkSince_History10K(b *testing.B)  { benchmarkSince(b, 10_000) }
func BenchmarkSince_History100K(b *testing.B) { benchmarkSince(b, 100_000) }

func TestGraph_SinceIsODelta(t *testing.T) {
	// Not a timing test: count how far the walk goes by checking that a
	// 1-change delta on a long history costs about what it costs on a
	// short one, in allocations (which track the visited set).
	if testing.Short() {
		t.Skip("builds a 100k-change graph")
	}
	small, smallAll := linearGraph(t, 100)
	big, bigAll := linearGraph(t, 100_000)
	a := testing.AllocsPerRun(20, func() { small.Since([]Hash{smallAll[98].Hash}) })
	b := testing.AllocsPerRun(20, func() { big.Since([]Hash{bigAll[99_998].Hash}) })
	if b > a+2 {
		t.Fatalf("Since allocs: %v at 100k changes vs %v at 100", b, a)
	}
}
