package crdt

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// golden is one case of testdata/, written by tools/node/make-golden.mjs
// with Automerge JS.
type golden struct {
	name    string
	changes []byte
	doc     []byte
	view    []byte
	heads   []Hash
}

func loadGolden(tb testing.TB) []golden {
	tb.Helper()
	dirs, err := filepath.Glob(filepath.Join("testdata", "*", "changes.bin"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(dirs) < 8 {
		tb.Fatalf("found %d golden cases, want at least 8: run node tools/node/make-golden.mjs", len(dirs))
	}
	var out []golden
	for _, p := range dirs {
		dir := filepath.Dir(p)
		read := func(name string) []byte {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				tb.Fatal(err)
			}
			return b
		}
		var hs []string
		if err := json.Unmarshal(read("heads.json"), &hs); err != nil {
			tb.Fatal(err)
		}
		heads, err := ParseHashes(hs)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, golden{
			name: filepath.Base(dir), changes: read("changes.bin"), doc: read("doc.bin"),
			view: read("view.json"), heads: heads,
		})
	}
	return out
}

// sameJSON compares two JSON texts structurally.
func sameJSON(tb testing.TB, got, want []byte) bool {
	tb.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		tb.Fatalf("bad JSON %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		tb.Fatalf("bad JSON %s: %v", want, err)
	}
	return reflect.DeepEqual(g, w)
}

func TestGolden(t *testing.T) {
	for _, g := range loadGolden(t) {
		t.Run(g.name, func(t *testing.T) {
			changes, err := Split(g.changes)
			if err != nil {
				t.Fatalf("Split: %v", err)
			}
			if got := Join(changes); !bytes.Equal(got, g.changes) {
				t.Fatalf("Join(Split(b)) != b")
			}
			for _, c := range changes {
				if c.Ops == 0 || c.Seq == 0 || len(c.Actor) == 0 || c.Time == 0 {
					t.Errorf("change %s: implausible fields %+v", c.Hash, c)
				}
			}

			// Apply the changes made by JS to an empty document.
			d := NewDoc()
			if err := d.Apply(changes); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if got, want := HashStrings(d.Heads()), HashStrings(g.heads); !reflect.DeepEqual(got, want) {
				t.Fatalf("Heads()=%v, want %v", got, want)
			}
			view, err := d.JSON(nil)
			if err != nil {
				t.Fatalf("JSON: %v", err)
			}
			if !sameJSON(t, view, g.view) {
				t.Fatalf("JSON()=%s\nwant %s", view, g.view)
			}

			// Load the document saved by JS.
			ld, err := LoadDoc(g.doc)
			if err != nil {
				t.Fatalf("LoadDoc: %v", err)
			}
			if got, want := HashStrings(ld.Heads()), HashStrings(g.heads); !reflect.DeepEqual(got, want) {
				t.Fatalf("LoadDoc Heads()=%v, want %v", got, want)
			}
			lview, err := ld.JSON(nil)
			if err != nil {
				t.Fatalf("JSON: %v", err)
			}
			if !sameJSON(t, lview, g.view) {
				t.Fatalf("loaded JSON()=%s\nwant %s", lview, g.view)
			}

			// The history of the loaded document parses, in dependency
			// order, with the hashes the JS changes have.
			hist, err := ld.Changes()
			if err != nil {
				t.Fatalf("Changes: %v", err)
			}
			if got, want := len(hist), len(changes); got != want {
				t.Fatalf("len(Changes())=%d, want %d", got, want)
			}
			seen := map[Hash]bool{}
			want := map[Hash]bool{}
			for _, c := range changes {
				want[c.Hash] = true
			}
			for _, c := range hist {
				for _, dep := range c.Deps {
					if !seen[dep] {
						t.Fatalf("change %s comes before its dep %s", c.Hash, dep)
					}
				}
				seen[c.Hash] = true
				if !want[c.Hash] {
					t.Fatalf("Changes() has %s, not among the JS changes", c.Hash)
				}
			}

			// Save round-trip in Go.
			rd, err := LoadDoc(d.Save())
			if err != nil {
				t.Fatalf("LoadDoc(Save()): %v", err)
			}
			if got, want := HashStrings(rd.Heads()), HashStrings(g.heads); !reflect.DeepEqual(got, want) {
				t.Fatalf("reloaded Heads()=%v, want %v", got, want)
			}
		})
	}
}
