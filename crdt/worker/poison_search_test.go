package worker

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/internal/mutate"
)

// The poison corpus in testdata/poison was found by TestSearchPoison:
//
//	go test ./crdt/worker -run TestSearchPoison -poison.search -v
//
// It rewrites testdata/poison: base.bin (the history the changes apply to,
// change chunks concatenated) and NNNN-XX.bin (the target change with byte
// NNNN XORed with XX, checksum fixed), one per mutation that aborts a worker.
var searchPoison = flag.Bool("poison.search", false, "search for single-byte mutations that abort automerge-go and rewrite testdata/poison")

const poisonDir = "testdata/poison"

// poisonSource returns a deterministic history and a change on top of it
// that touches map keys, list elements and text, the op kinds whose
// corruptions reach the Rust core's comparison code.
func poisonSource(tb testing.TB) (base [][]byte, target []byte) {
	tb.Helper()
	doc := automerge.New()
	if err := doc.SetActorID("0123456789abcdef0123456789abcdef"); err != nil {
		tb.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	commit := func() []byte {
		h, err := doc.Commit("edit", automerge.CommitOptions{Time: &at})
		if err != nil {
			tb.Fatal(err)
		}
		c, err := doc.Change(h)
		if err != nil {
			tb.Fatal(err)
		}
		return c.Save()
	}
	root := doc.RootMap()
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	must(root.Set("title", "shopping"))
	must(root.Set("items", automerge.NewList()))
	must(root.Set("notes", automerge.NewText("milk and bread")))
	base = append(base, commit())
	items := doc.Path("items").List()
	must(items.Append("apples", 3, true))
	m := automerge.NewMap()
	must(items.Append(m))
	base = append(base, commit())

	// The target: map sets and deletes, list inserts and sets, a text splice.
	must(root.Set("title", "groceries"))
	must(root.Set("done", false))
	must(root.Delete("done"))
	must(items.Insert(1, "pears"))
	must(items.Set(0, "green apples"))
	notes := doc.Path("notes").Text()
	must(notes.Splice(0, 4, "oat milk"))
	inner := doc.Path("items", 4).Map()
	must(inner.Set("qty", 2))
	target = commit()
	return base, target
}

func TestSearchPoison(t *testing.T) {
	if !*searchPoison {
		t.Skip("run with -poison.search to search for poison changes")
	}
	base, target := poisonSource(t)
	p := newTestPool(t, Options{Procs: 2, Timeout: 5 * time.Second})
	var joined []byte
	for _, c := range base {
		joined = append(joined, c...)
	}
	baseFn := func() (Base, error) { return Base{Seq: uint64(len(base)), Changes: joined}, nil }
	t.Logf("target change: %d bytes", len(target))

	if err := os.MkdirAll(poisonDir, 0o755); err != nil {
		t.Fatal(err)
	}
	old, _ := filepath.Glob(filepath.Join(poisonDir, "*.bin"))
	for _, f := range old {
		_ = os.Remove(f)
	}
	if err := os.WriteFile(filepath.Join(poisonDir, "base.bin"), joined, 0o644); err != nil {
		t.Fatal(err)
	}

	var tried, refused, applied, invalid, missing, poison int
	for pos := 8; pos < len(target); pos++ {
		for xi := 1; xi < 256; xi++ {
			x := byte(xi)
			mut := mutate.Flip(target, pos, x)
			if _, err := crdt.Split(mut); err != nil {
				refused++ // never reaches automerge-go
				continue
			}
			tried++
			key := fmt.Sprintf("search-%d-%d", pos, x)
			err := p.Apply(context.Background(), key, uint64(len(base)), uint64(len(base))+1, baseFn, mut)
			switch {
			case err == nil:
				applied++
			case errors.Is(err, ErrPoison):
				poison++
				name := filepath.Join(poisonDir, fmt.Sprintf("%04d-%02x.bin", pos, x))
				if err := os.WriteFile(name, mut, 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("poison: byte %d ^ %#02x", pos, x)
			case errors.Is(err, crdt.ErrMissingDeps):
				missing++
			case errors.Is(err, crdt.ErrInvalidChange):
				invalid++
			default:
				t.Errorf("byte %d ^ %#02x: unexpected error %v", pos, x, err)
			}
			p.Evict(key)
		}
	}
	t.Logf("%d mutations refused by Split; of %d that pass it: %d applied, %d invalid, %d missing deps, %d poison",
		refused, tried, applied, invalid, missing, poison)
}
