package browser

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// TestAssets checks the served tree: a valid fs.FS (fstest.TestFS checks
// Open, ReadDir paging, Stat, Glob and Sub agree), with the demo's files and
// the bundle at its root, byte for byte the committed files.
func TestAssets(t *testing.T) {
	assets := Assets()
	demo := demoFiles(t)
	want := append([]string{BundleName}, demo...)
	if err := fstest.TestFS(assets, want...); err != nil {
		t.Fatal(err)
	}
	for _, name := range want {
		src := filepath.Join("demo", name)
		if name == BundleName {
			src = filepath.Join("dist", BundleName)
		}
		onDisk, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		served, err := fs.ReadFile(assets, name)
		if err != nil {
			t.Fatalf("ReadFile(%s): %v", name, err)
		}
		if !bytes.Equal(served, onDisk) {
			t.Errorf("%s: served %d bytes differ from %s (%d bytes)", name, len(served), src, len(onDisk))
		}
	}
	// Whatever else the build emits for the browser (a separate .wasm, a
	// chunk) must be served too; type declarations and maps need not be.
	for _, name := range listFiles(t, os.DirFS("dist")) {
		if strings.HasSuffix(name, ".d.ts") || strings.HasSuffix(name, ".map") {
			continue
		}
		if _, err := fs.Stat(assets, name); err != nil {
			t.Errorf("dist/%s is built but not served: add it to the go:embed line of embed.go", name)
		}
	}
	if _, err := fs.Stat(assets, "index.html"); err != nil {
		t.Fatalf("no index.html at the root: %v", err)
	}
	for _, hidden := range []string{"dist/dynamerge.js", "demo/index.html", "embed.go", "../embed.go"} {
		if _, err := assets.Open(hidden); err == nil {
			t.Errorf("Open(%q) succeeded; only the demo and the bundle are served", hidden)
		}
	}
}

// TestDemoNamesDoNotShadowTheBundle guards against a demo file named like the
// bundle, which the overlay would silently hide.
func TestDemoNamesDoNotShadowTheBundle(t *testing.T) {
	if slices.Contains(demoFiles(t), BundleName) {
		t.Fatalf("demo/%s would hide the built bundle; rename it", BundleName)
	}
}

// TestDemoReferencesExist checks that every root-relative URL the demo's
// HTML, CSS and JS refer to is served, so a renamed file cannot leave the
// page half-loaded.
func TestDemoReferencesExist(t *testing.T) {
	assets := Assets()
	ref := regexp.MustCompile(`(?:src|href)="(/[^"]*)"|from "(/[^"]*)"|import\("(/[^"]*)"\)|url\((/[^)]*)\)`)
	found := 0
	for _, name := range demoFiles(t) {
		if !strings.HasSuffix(name, ".html") && !strings.HasSuffix(name, ".js") && !strings.HasSuffix(name, ".css") {
			continue
		}
		b, err := fs.ReadFile(assets, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ref.FindAllStringSubmatch(string(b), -1) {
			u := strings.Join(m[1:], "")
			found++
			p := strings.TrimPrefix(strings.SplitN(u, "?", 2)[0], "/")
			if p == "" {
				p = "index.html"
			}
			if _, err := fs.Stat(assets, p); err != nil {
				t.Errorf("%s refers to %s, which is not served: %v", name, u, err)
			}
		}
	}
	if found < 4 {
		t.Fatalf("found %d references in the demo; the pattern no longer matches how it links its files", found)
	}
}

// TestBundleFresh rebuilds the library from src/ into a temporary directory
// and compares it with the committed dist/: a change to the sources without
// `npm run build` (or a build from other dependency versions than the lock
// file's) fails here instead of shipping a stale bundle in the binary.
func TestBundleFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the npm rebuild of the bundle")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node is not installed")
	}
	if _, err := os.Stat(filepath.Join("node_modules", ".package-lock.json")); err != nil {
		missing(t, "browser/node_modules is missing (run scripts/npm-install.sh browser, part of make deps)")
	}
	out := t.TempDir()
	start := time.Now()
	cmd := exec.Command(node, "scripts/build.mjs", "--outdir", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("node scripts/build.mjs --outdir %s: %v\n%s", out, err, b)
	}
	t.Logf("rebuilt the bundle in %v", time.Since(start).Round(time.Millisecond))

	built := listFiles(t, os.DirFS(out))
	committed := listFiles(t, os.DirFS("dist"))
	if !slices.Contains(built, BundleName) {
		t.Fatalf("the build made %v, without %s", built, BundleName)
	}
	for _, name := range built {
		fresh, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		old, err := os.ReadFile(filepath.Join("dist", name))
		if errors.Is(err, fs.ErrNotExist) {
			t.Errorf("dist/%s is not committed: run `npm run build` in browser/ and commit dist/", name)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fresh, old) {
			t.Errorf("dist/%s is stale (%d bytes committed, %d built from src/): run `npm run build` in browser/ and commit dist/", name, len(old), len(fresh))
		}
	}
	for _, name := range committed {
		if !slices.Contains(built, name) {
			t.Errorf("dist/%s is no longer built from src/: remove it", name)
		}
	}
}

// missing skips a test whose tools are absent, except in CI (CI=true), where
// `make test` installs them and their absence is a broken set-up to fail on.
func missing(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s; CI must install it", why)
	}
	t.Skipf("%s; skipping", why)
}

// demoFiles lists the files of demo/ on disk, as paths relative to it.
func demoFiles(t *testing.T) []string {
	t.Helper()
	return listFiles(t, os.DirFS("demo"))
}

func listFiles(t *testing.T, fsys fs.FS) []string {
	t.Helper()
	var names []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}
