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

var _ = bytes.Equal
