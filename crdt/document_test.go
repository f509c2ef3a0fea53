package crdt

import (
	"errors"
	"fmt"
	"github.com/automerge/automerge-go"

	"github.com/dynamerge/dynamerge/internal/amjs"
	"slices"
	"testing"
)

func mustSplit(tb testing.TB, b []byte) []Change {
	tb.Helper()
	cs, err := Split(b)
	if err != nil {
		tb.Fatal(err)
	}
	return cs
}

// docOf validates changes with an Index and applies them to a new Doc.
func docOf(tb testing.TB, cs []Change) *Doc {
	tb.Helper()
	mustAdd(tb, NewIndex(), cs...)
	d := NewDoc()
	if err := d.Apply(cs); err != nil {
		tb.Fatalf("Apply: %v", err)
	}
	return d
}

func TestDoc_Golden(t *testing.T) {
	for _, g := range loadGolden(t) {
		t.Run(g.name, func(t *testing.T) {
			d := docOf(t, mustSplit(t, g.changes))
			if got, want := d.Heads(), g.heads; !slices.Equal(got, want) {
				t.Fatalf("Heads()=%v, want %v", got, want)
			}
			view, err := d.JSON(JSONOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !sameJSON(t, view, g.view) {
				t.Fatalf("JSON()=%s\nwant %s", view, g.view)
			}
		})
	}
}

func TestDoc_JSONTimeTravel(t *testing.T) {
	cs := mustSplit(t, goldenChanges(t, "text"))
	d := docOf(t, cs)
	tests := []struct {
		heads []Hash
		want  string
	}{
		{[]Hash{cs[0].Hash}, `{"title":"Hello world"}`},
		{[]Hash{cs[1].Hash}, `{"title":"¡Hello, Automerge"}`},
		{nil, `{"title":"¡Bye 👋, Automerge"}`},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			got, err := d.JSON(JSONOptions{Heads: tt.heads})
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("JSON(%v)=%s, want %s", tt.heads, got, tt.want)
			}
		})
	}
	if _, err := d.JSON(JSONOptions{Heads: []Hash{{1}}}); !errors.Is(err, ErrMissingDeps) {
		t.Fatalf("JSON(unknown head)=%v, want ErrMissingDeps", err)
	}
}

func TestDoc_LoadGolden(t *testing.T) {
	for _, g := range loadGolden(t) {
		t.Run(g.name, func(t *testing.T) {
			// A document saved by Automerge JS.
			d, rebuilt, err := LoadDoc(g.doc)
			if err != nil {
				t.Fatalf("LoadDoc: %v", err)
			}
			if got, want := d.Heads(), g.heads; !slices.Equal(got, want) {
				t.Fatalf("Heads()=%v, want %v", got, want)
			}
			view, err := d.JSON(JSONOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !sameJSON(t, view, g.view) {
				t.Fatalf("JSON()=%s\nwant %s", view, g.view)
			}
			want := map[Hash]bool{}
			for _, c := range mustSplit(t, g.changes) {
				want[c.Hash] = true
			}
			for _, c := range rebuilt {
				if !want[c.Hash] {
					t.Fatalf("rebuilt change %s is not among the JS changes", c.Hash)
				}
			}
			if len(rebuilt) != len(want) {
				t.Fatalf("rebuilt %d changes, want %d", len(rebuilt), len(want))
			}
			// The rebuilt changes pass the index (they are what a client
			// would send).
			mustAdd(t, NewIndex(), rebuilt...)

			// Save in Go, load in Go.
			saved := docOf(t, mustSplit(t, g.changes)).Save()
			ld, _, err := LoadDoc(saved)
			if err != nil {
				t.Fatalf("LoadDoc(Save()): %v", err)
			}
			if got, want := ld.Heads(), g.heads; !slices.Equal(got, want) {
				t.Fatalf("reloaded Heads()=%v, want %v", got, want)
			}
			lview, _ := ld.JSON(JSONOptions{})
			if !sameJSON(t, lview, g.view) {
				t.Fatalf("reloaded JSON()=%s\nwant %s", lview, g.view)
			}
		})
	}
}

// TestDoc_SavedLoadsInJS: Automerge JS 3.5 loads what Save writes, with the
// same heads and view.
func TestDoc_SavedLoadsInJS(t *testing.T) {
	for _, g := range loadGolden(t) {
		t.Run(g.name, func(t *testing.T) {
			saved := docOf(t, mustSplit(t, g.changes)).Save()
			res, err := amjs.Start(t).Load(saved)
			if err != nil {
				t.Fatalf("JS load: %v", err)
			}
			if got, want := res.Heads, HashStrings(g.heads); !slices.Equal(got, want) {
				t.Fatalf("JS heads %v, want %v", got, want)
			}
			if !sameJSON(t, res.View, g.view) {
				t.Fatalf("JS view %s\nwant %s", res.View, g.view)
			}
		})
	}
}

// TestDoc_SavedLoadsInAutomergeGo: automerge-go (Rust core 0.5, what the Go
// client uses) loads what Save writes, also incrementally on top of an empty
// document.
func TestDoc_SavedLoadsInAutomergeGo(t *testing.T) {
	for _, g := range loadGolden(t) {
		t.Run(g.name, func(t *testing.T) {
			saved := docOf(t, mustSplit(t, g.changes)).Save()
			am, err := automerge.Load(saved)
			if err != nil {
				t.Fatalf("automerge.Load: %v", err)
			}
			var got []Hash
			for _, h := range am.Heads() {
				got = append(got, Hash(h))
			}
			slices.SortFunc(got, compareHashes)
			if !slices.Equal(got, g.heads) {
				t.Fatalf("heads %v, want %v", got, g.heads)
			}
			inc := automerge.New()
			if err := inc.LoadIncremental(saved); err != nil {
				t.Fatalf("LoadIncremental: %v", err)
			}
			if n := len(inc.Heads()); n != len(g.heads) {
				t.Fatalf("LoadIncremental: %d heads, want %d", n, len(g.heads))
			}
		})
	}
}
