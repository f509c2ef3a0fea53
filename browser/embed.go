// Package browser embeds the browser side of dynamerge into the Go binary:
// the demo app (demo/) and the built browser library (dist/dynamerge.js,
// with Automerge's WebAssembly as dist/automerge.<hash>.wasm and its base64
// fallback dist/automerge-wasm.js), so that `go run ./cmd/dynamerge` serves
// them with no npm step.
//
// # What is served
//
// [Assets] is one file tree: the files of demo/ at its root (index.html is
// the app at "/") and the bundle beside them as "dynamerge.js", which is what
// the demo, and any page of the same origin, imports as "/dynamerge.js".
// The React bindings are there too, as "react.js" (they import "react",
// which a page without a bundler maps with an import map, and
// "./dynamerge.js"); apps with a bundler get both from the npm package.
// Beside the bundle, "automerge.<hash>.wasm" is what it fetches the first
// time a change must be made or merged; its name carries the first 16 hex
// digits of its SHA-256, so the server lets browsers cache it for good
// (server/static.go). "automerge-wasm.js" is the base64 copy the bundle
// imports only when that file cannot be loaded.
//
// # Keeping the bundle fresh
//
// dist/dynamerge.js is built from src/ by `npm run build` and committed.
// TestBundleFresh rebuilds it into a temporary directory and fails when the
// committed bytes differ, so a change to src/ without a rebuild cannot land.
package browser

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
)

// BundleName is the name the browser library is served under, at the root
// of [Assets] and so at "/dynamerge.js" on the server.
const BundleName = "dynamerge.js"

//go:embed demo dist/dynamerge.js dist/react.js dist/automerge-wasm.js dist/*.wasm
var embedded embed.FS

// Assets returns the demo app with the browser library beside it, for
// server.Options.Assets. Every call returns a view of the same embedded,
// read-only files.
func Assets() fs.FS {
	demo, err := fs.Sub(embedded, "demo")
	if err != nil {
		// fs.Sub fails only on an invalid directory name, a constant here.
		panic(fmt.Sprintf("browser: %v", err))
	}
	dist, err := fs.Sub(embedded, "dist")
	if err != nil {
		panic(fmt.Sprintf("browser: %v", err))
	}
	return overlay{dist, demo}
}

// overlay merges file trees: a name opens in the first layer that has it,
// and a directory lists the union of its entries in every layer. It keeps
// demo/ and dist/ apart in the repository while serving them as one root.
type overlay []fs.FS

// Open implements fs.FS.
func (o overlay) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	for i, layer := range o {
		f, err := layer.Open(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		st, err := f.Stat()
		if err != nil {
			_ = f.Close()
			return nil, err
		}
		if !st.IsDir() {
			return f, nil
		}
		return &overlayDir{File: f, layers: o[i:], name: name}, nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

// overlayDir is a directory of an overlay: Stat is its first layer's, and
// ReadDir lists the entries of every layer, the first layer winning a name.
type overlayDir struct {
	fs.File
	layers  []fs.FS
	name    string
	entries []fs.DirEntry // nil until the first ReadDir
	read    bool
}

// ReadDir implements fs.ReadDirFile, with its paging contract: n > 0
// returns at most n entries and io.EOF at the end; n <= 0 returns the rest.
func (d *overlayDir) ReadDir(n int) ([]fs.DirEntry, error) {
	if !d.read {
		seen := map[string]bool{}
		for _, layer := range d.layers {
			entries, err := fs.ReadDir(layer, d.name)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			for _, e := range entries {
				if !seen[e.Name()] {
					seen[e.Name()] = true
					d.entries = append(d.entries, e)
				}
			}
		}
		slices.SortFunc(d.entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
		d.read = true
	}
	if n <= 0 {
		rest := d.entries
		d.entries = nil
		return rest, nil
	}
	if len(d.entries) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(d.entries))
	page := d.entries[:n]
	d.entries = d.entries[n:]
	return page, nil
}
