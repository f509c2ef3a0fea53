package crdt

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var graphSeed = flag.Uint64("graph.seed", 0, "seed for the random DAG tests (0: time-based)")

// emptyChange makes a real change without ops by a fresh actor (seq 1, start
// op 1), with a unique hash: enough for the change graph.
func emptyChange(tb testing.TB, n int, deps ...Hash) Change {
	tb.Helper()
	actor := []byte(fmt.Sprintf("actor-%08d", n))
	c, err := EncodeChange(ChangeHeader{Deps: deps, Seq: 1, StartOp: 1}, [][]byte{actor}, 0, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func mustAdd(tb testing.TB, ix *Index, cs ...Change) {
	tb.Helper()
	if err := ix.AddAll(cs); err != nil {
		tb.Fatalf("AddAll: %v", err)
	}
}

func TestIndex_AddHeadsMissing(t *testing.T) {
	a := emptyChange(t, 1)
	b := emptyChange(t, 2, a.Hash)
	c := emptyChange(t, 3, a.Hash)
	d := emptyChange(t, 4, b.Hash, c.Hash)
	orphan := emptyChange(t, 5, emptyChange(t, 99).Hash)

	ix := NewIndex()
	if got := ix.Heads(); len(got) != 0 {
		t.Fatalf("empty Heads()=%v, want none", got)
	}
	mustAdd(t, ix, a, b, c)
	want := []Hash{b.Hash, c.Hash}
	slices.SortFunc(want, compareHashes)
	if got := ix.Heads(); !slices.Equal(got, want) {
		t.Fatalf("Heads()=%v, want %v", got, want)
	}
	mustAdd(t, ix, d, d, b) // re-adding is a no-op
	if got, want := ix.Heads(), []Hash{d.Hash}; !slices.Equal(got, want) {
		t.Fatalf("Heads()=%v, want %v", got, want)
	}
	if err := ix.AddAll([]Change{orphan}); !errors.Is(err, ErrMissingDeps) {
		t.Fatalf("AddAll(orphan)=%v, want ErrMissingDeps", err)
	}
	if ix.Has(orphan.Hash) || ix.Len() != 4 {
		t.Fatalf("a refused change was added: Len()=%d", ix.Len())
	}
	if got := ix.Missing([]Hash{a.Hash, orphan.Hash, orphan.Hash}); !slices.Equal(got, []Hash{orphan.Hash}) {
		t.Fatalf("Missing()=%v", got)
	}
	// Out of order within one call is fine.
	ix2 := NewIndex()
	mustAdd(t, ix2, d, c, b, a)
	if got, want := ix2.Heads(), []Hash{d.Hash}; !slices.Equal(got, want) {
		t.Fatalf("Heads()=%v, want %v", got, want)
	}
}

// TestIndex_SinceRandom checks Since against a brute-force ancestor
// computation on random DAGs, and that its result is in dependency order.
func TestIndex_SinceRandom(t *testing.T) {
	seed := *graphSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -graph.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	for round := range 100 {
		n := 1 + rng.IntN(60)
		ix := NewIndex()
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
			c := emptyChange(t, round*1000+i, deps...)
			all = append(all, c)
			mustAdd(t, ix, c)
		}
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
		byRaw := map[string]Change{}
		for _, c := range all {
			byRaw[string(c.Raw)] = c
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
				have = append(have, emptyChange(t, -1-round).Hash) // unknown to the index
			}
			anc := ancestors(haveIdx)
			var want []Hash
			for i, c := range all {
				if !anc[i] {
					want = append(want, c.Hash)
				}
			}
			raw, needSnap := ix.Since(have)
			if needSnap {
				t.Fatal("Since needs a snapshot, but every change is held")
			}
			gotSet := map[Hash]bool{}
			for _, r := range raw {
				c := byRaw[string(r)]
				for _, d := range c.Deps {
					if !gotSet[d] && slices.Contains(want, d) {
						t.Fatalf("round %d: %s comes before its dep %s", round, c.Hash, d)
					}
				}
				gotSet[c.Hash] = true
			}
			if len(raw) != len(want) || len(gotSet) != len(want) {
				t.Fatalf("round %d have %v: got %d changes, want %d", round, haveIdx, len(raw), len(want))
			}
		}
	}
}

// linearIndex returns an index of n changes, each depending on the previous
// one, with an occasional two-way branch to keep the walk honest.
func linearIndex(tb testing.TB, n int) (*Index, []Change) {
	tb.Helper()
	ix := NewIndex()
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
		all = append(all, emptyChange(tb, i, deps...))
	}
	mustAdd(tb, ix, all...)
	return ix, all
}

func benchmarkSince(b *testing.B, n int) {
	ix, all := linearIndex(b, n)
	have := []Hash{all[n-2].Hash}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if got, _ := ix.Since(have); len(got) != 1 {
			b.Fatalf("Since()=%d changes, want 1", len(got))
		}
	}
}

func BenchmarkSince_History100(b *testing.B)  { benchmarkSince(b, 100) }
func BenchmarkSince_History10K(b *testing.B)  { benchmarkSince(b, 10_000) }
func BenchmarkSince_History100K(b *testing.B) { benchmarkSince(b, 100_000) }

func TestIndex_SinceIsODelta(t *testing.T) {
	// Not a timing test: a 1-change delta on a long history costs about
	// what it costs on a short one, in allocations (which track the
	// visited set).
	if testing.Short() {
		t.Skip("builds a 100k-change index")
	}
	small, smallAll := linearIndex(t, 100)
	big, bigAll := linearIndex(t, 100_000)
	a := testing.AllocsPerRun(20, func() { small.Since([]Hash{smallAll[98].Hash}) })
	b := testing.AllocsPerRun(20, func() { big.Since([]Hash{bigAll[99_998].Hash}) })
	if b > a+2 {
		t.Fatalf("Since allocs: %v at 100k changes vs %v at 100", b, a)
	}
}

func TestIndex_Golden(t *testing.T) {
	for _, g := range loadGolden(t) {
		t.Run(g.name, func(t *testing.T) {
			cs, err := Split(g.changes)
			if err != nil {
				t.Fatal(err)
			}
			ix := NewIndex()
			// One change at a time, as pushes arrive.
			for _, c := range cs {
				mustAdd(t, ix, c)
			}
			if got, want := ix.Heads(), g.heads; !slices.Equal(got, want) {
				t.Fatalf("Heads()=%v, want %v", got, want)
			}
			raw, _ := ix.Since(nil)
			if got := len(raw); got != len(cs) {
				t.Fatalf("Since(nil) = %d changes, want %d", got, len(cs))
			}
		})
	}
}

// TestIndex_MixedRuns: ops of one change on random keys (runs of equal
// keys among them) are found with their keys, also after a refused change
// rolled back what it had added to the same runs.
func TestIndex_MixedRuns(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	b := newBuilder(t, "aaaa")
	var ops []Op
	var want []string
	last := map[string]OpID{}
	for i := range 3000 {
		k := fmt.Sprintf("k%d", rng.IntN(6))
		if rng.IntN(3) == 0 && i > 0 {
			k = want[i-1] // a stretch of one key
		}
		var pred []OpID
		if p, ok := last[k]; ok {
			pred = []OpID{p}
		}
		ops = append(ops, set(k, IntValue(int64(i)), pred...))
		want = append(want, k)
		last[k] = OpID{Ctr: uint64(i + 1)}
	}
	c1 := b.change(0, 1, 1, nil, ops...)
	ix := NewIndex()
	tx := ix.Begin()
	if _, err := tx.Add([]Change{c1}); err != nil {
		t.Fatal(err)
	}
	// A change that extends the runs, then fails: rolled back.
	bad := b.change(0, 2, 3001, []Hash{c1.Hash}, set("k0", IntValue(1), last["k0"]), set("k9", IntValue(1)), set(want[0]+"x", IntValue(2), OpID{Ctr: 1}))
	if _, err := tx.Add([]Change{bad}); err == nil {
		t.Fatal("a change whose predecessor is at another key was accepted")
	}
	check := func(what string, get func(ctr uint64) (opInfo, bool)) {
		for i, k := range want {
			in, ok := get(uint64(i + 1))
			if !ok || in.key != k {
				t.Fatalf("%s: op %d: key %q (found %v), want %q", what, i+1, in.key, ok, k)
			}
		}
		if _, ok := get(3001); ok {
			t.Fatalf("%s: op 3001 of the refused change is there", what)
		}
	}
	check("in the Tx", func(ctr uint64) (opInfo, bool) { return tx.op(0, ctr) })
	tx.Commit()
	check("in the Index", func(ctr uint64) (opInfo, bool) { return ix.run(0, ctr) })
	if n := len(ix.runs[0]); n > 2000 {
		t.Errorf("%d runs for 3,000 ops", n)
	}
}

// TestIndex_TimeMessagePosition: the index keeps each change's own time and
// message (what a history lists without a document), and finds a change's
// place in insertion order.
func TestIndex_TimeMessagePosition(t *testing.T) {
	actor := bytes.Repeat([]byte{9}, 16)
	a, err := EncodeChange(ChangeHeader{Seq: 1, StartOp: 1, Time: 1_700_000_000, Message: "first"}, [][]byte{actor}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := EncodeChange(ChangeHeader{Deps: []Hash{a.Hash}, Seq: 2, StartOp: 1}, [][]byte{actor}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	ix := NewIndex()
	if err := ix.AddAll([]Change{a, b}); err != nil {
		t.Fatal(err)
	}
	for i, want := range []Change{a, b} {
		p, ok := ix.Position(want.Hash)
		if !ok || p != i {
			t.Fatalf("Position(%s) = %d %v, want %d", want.Hash, p, ok, i)
		}
		got := ix.ChangeAt(p)
		if got.Hash != want.Hash || got.Time != want.Time || got.Message != want.Message || got.Seq != want.Seq {
			t.Fatalf("ChangeAt(%d) = %+v, want time %d message %q seq %d", p, got, want.Time, want.Message, want.Seq)
		}
	}
	if _, ok := ix.Position(Hash{1}); ok {
		t.Fatal("Position of an unknown change")
	}
}
