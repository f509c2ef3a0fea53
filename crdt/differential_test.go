package crdt

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/internal/amjs"
	"github.com/dynamerge/dynamerge/internal/mutate"
)

// diffSource is one real change and the history it applies to.
type diffSource struct {
	name     string
	base     []Change
	chunk    []byte // uncompressed
	compress bool   // mutate the uncompressed chunk, then send it compressed
}

func diffSources(tb testing.TB) []diffSource {
	tb.Helper()
	byName := map[string][]Change{}
	for _, g := range loadGolden(tb) {
		byName[g.name] = mustSplit(tb, g.changes)
	}
	pick := func(name string, i int, compress bool) diffSource {
		cs := byName[name]
		if i < 0 {
			i += len(cs)
		}
		return diffSource{name: fmt.Sprintf("%s[%d]", name, i), base: cs[:i], chunk: uncompressed(tb, cs[i]), compress: compress}
	}
	return []diffSource{
		pick("scalars", 0, false),
		pick("nested", 1, false),
		pick("merge", 2, false),
		pick("threeactors", 2, false),
		pick("counters", 1, false),
		pick("text", 1, false),
		pick("longtext", -1, false),
		pick("bytes", 0, true),
		pick("compressed", 0, true),
	}
}

// positions returns the byte positions to corrupt: all of them for small
// chunks; for large ones the header and first columns in full, then a
// stride through the rest, to keep the test within its time budget.
func positions(n int) []int {
	var ps []int
	for i := 0; i < n; i++ {
		if n <= 700 || i < 400 || i >= n-100 || i%23 == 0 {
			ps = append(ps, i)
		}
	}
	return ps
}

var diffXORs = []byte{0x01, 0x02, 0x40, 0x80, 0xff}

// TestDifferentialJS corrupts real changes one byte at a time (checksums
// fixed up) and checks the promise of the write path: every change that
// ParseChanges and the record's Index accept loads in Automerge JS 3.5 with
// the heads the Index says, also after a save and load in JS; and the
// document the Go op set materializes from it saves into a document JS loads
// with the same heads.
func TestDifferentialJS(t *testing.T) {
	if testing.Short() {
		t.Skip("differential test skipped in -short mode")
	}
	js := amjs.Start(t)
	start := time.Now()
	var mutations, splitRefused, indexRefused, accepted, agreed int
	reported := map[string]int{}
	var dump io.Writer = io.Discard
	if path := os.Getenv("DYNAMERGE_DIFF_DUMP"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		dump = f
	}
	fail := func(kind, format string, args ...any) {
		fmt.Fprintf(dump, kind+": "+format+"\n", args...)
		reported[kind]++
		if reported[kind] <= 5 {
			t.Errorf(format, args...)
		}
	}
	for _, src := range diffSources(t) {
		ix := NewIndex()
		mustAdd(t, ix, src.base...)
		seen := map[string]bool{}
		var acc [][]byte
		var accHeads, accWhere []string
		for _, pos := range positions(len(src.chunk)) {
			for _, x := range diffXORs {
				m := mutate.Flip(src.chunk, pos, x)
				if src.compress {
					m = compressChunk(m)
				}
				if seen[string(m)] {
					continue // e.g. flips of checksum bytes, undone by the fix-up
				}
				seen[string(m)] = true
				mutations++
				cs, err := Split(m)
				if err != nil {
					if !errors.Is(err, ErrInvalidChange) {
						t.Fatalf("%s: Split error %v does not wrap ErrInvalidChange", src.name, err)
					}
					splitRefused++
					continue
				}
				tx := ix.Begin()
				if _, err := tx.Add(cs); err != nil {
					if !errors.Is(err, ErrInvalidChange) && !errors.Is(err, ErrMissingDeps) {
						t.Fatalf("%s: Add error %v wraps neither ErrInvalidChange nor ErrMissingDeps", src.name, err)
					}
					indexRefused++
					continue
				}
				// The Go op set takes it too, and saves what it holds.
				d := NewDoc()
				if err := d.Apply(append(append([]Change(nil), src.base...), cs...)); err != nil {
					fail("doc", "%s, byte %d ^ %#02x: accepted by the Index, refused by Doc.Apply: %v\n%x", src.name, pos, x, err, m)
					continue
				}
				if _, _, err := LoadDoc(d.Save()); err != nil {
					fail("save", "%s, byte %d ^ %#02x: the saved document does not load: %v\n%x", src.name, pos, x, err, m)
					continue
				}
				acc = append(acc, m)
				accWhere = append(accWhere, fmt.Sprintf("byte %d ^ %#02x", pos, x))
				accHeads = append(accHeads, strings.Join(HashStrings(tx.Heads()), ","))
			}
		}
		accepted += len(acc)
		for i, c := range acc {
			r, err := js.Check(Join(src.base), c)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case !r.OK:
				fail("js", "%s, %s: accepted by the Index, refused by JS: %s\n%x", src.name, accWhere[i], r.Error, acc[i])
			case strings.Join(r.Heads, ",") != accHeads[i]:
				fail("heads", "%s, %s: heads differ: Go %s, JS %s\n%x", src.name, accWhere[i], accHeads[i], strings.Join(r.Heads, ","), acc[i])
			default:
				agreed++
			}
		}
	}
	t.Logf("differential: %d mutations: %d refused by ParseChanges, %d refused by the Index, %d accepted, %d agreed by JS (%v)",
		mutations, splitRefused, indexRefused, accepted, agreed, time.Since(start).Round(time.Millisecond))
	if len(reported) > 0 {
		t.Errorf("failures by kind (first 5 of each shown): %v", reported)
	}
	if accepted == 0 {
		t.Errorf("no mutation was accepted: the test exercises nothing past ParseChanges")
	}
}
