package server

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"
)

// TestStaticCaching checks that assets are revalidated on every use against
// a strong content ETag: the demo app and /dynamerge.js have fixed URLs, so a
// browser must never keep running an old bundle after an upgrade, and an
// unchanged file costs a 304 instead of its bytes.
func TestStaticCaching(t *testing.T) {
	assets := fstest.MapFS{
		"index.html":     {Data: []byte("<h1>demo app</h1>")},
		"dynamerge.js":   {Data: []byte("export const x = 1;\n")},
		"sub/index.html": {Data: []byte("<p>sub</p>")},
	}
	files := &lockedFS{files: assets}
	srv := newFakeServer(t, Options{Assets: files})

	get := func(t *testing.T, url string, hdr map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, srv.url+url, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}

	for _, url := range []string{"/", "/dynamerge.js", "/sub/"} {
		t.Run(url, func(t *testing.T) {
			resp, _ := get(t, url, nil)
			if got, want := resp.StatusCode, http.StatusOK; got != want {
				t.Fatalf("status=%d, want %d", got, want)
			}
			if got, want := resp.Header.Get("Cache-Control"), "no-cache"; got != want {
				t.Errorf("Cache-Control=%q, want %q", got, want)
			}
			etag := resp.Header.Get("ETag")
			if len(etag) < 10 || etag[0] != '"' || etag[len(etag)-1] != '"' {
				t.Fatalf("ETag=%q, want a strong quoted validator", etag)
			}
			again, _ := get(t, url, nil)
			if got := again.Header.Get("ETag"); got != etag {
				t.Errorf("second ETag=%q, want the same %q", got, etag)
			}
			resp, body := get(t, url, map[string]string{"If-None-Match": etag})
			if got, want := resp.StatusCode, http.StatusNotModified; got != want {
				t.Fatalf("If-None-Match: status=%d, want %d", got, want)
			}
			if len(body) != 0 {
				t.Errorf("304 with a body of %d bytes", len(body))
			}
			resp, _ = get(t, url, map[string]string{"If-None-Match": `"other"`})
			if got, want := resp.StatusCode, http.StatusOK; got != want {
				t.Fatalf("other If-None-Match: status=%d, want %d", got, want)
			}
		})
	}

	// Distinct contents get distinct validators.
	a, _ := get(t, "/", nil)
	b, _ := get(t, "/dynamerge.js", nil)
	if a.Header.Get("ETag") == b.Header.Get("ETag") {
		t.Errorf("index.html and dynamerge.js share the ETag %q", a.Header.Get("ETag"))
	}

	// A changed file (same name, new content and time) gets a new ETag, so
	// an FS that changes under a running server is never served stale.
	old := b.Header.Get("ETag")
	files.set("dynamerge.js", &fstest.MapFile{Data: []byte("export const x = 2;\n"), ModTime: time.Unix(1, 0)})
	c, body := get(t, "/dynamerge.js", map[string]string{"If-None-Match": old})
	if got, want := c.StatusCode, http.StatusOK; got != want {
		t.Fatalf("changed file: status=%d, want %d", got, want)
	}
	if string(body) != "export const x = 2;\n" || c.Header.Get("ETag") == old {
		t.Errorf("changed file: body %q ETag %q (old %q)", body, c.Header.Get("ETag"), old)
	}

	// API answers keep their own caching rules.
	resp, _ := get(t, "/v1/nothing", nil)
	if resp.Header.Get("ETag") != "" {
		t.Errorf("API 404 has an asset ETag %q", resp.Header.Get("ETag"))
	}
}

// lockedFS is a MapFS that a test may change while the server reads it.
type lockedFS struct {
	mu    sync.Mutex
	files fstest.MapFS
}

func (l *lockedFS) Open(name string) (fs.File, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.files.Open(name)
}

func (l *lockedFS) set(name string, f *fstest.MapFile) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.files[name] = f
}

// TestCSPAllowsWebAssembly: the browser library compiles Automerge's
// WebAssembly, which a Content-Security-Policy without 'wasm-unsafe-eval'
// forbids ("default-src 'self'" alone makes open() fail in Chromium), while
// script evaluation from strings stays forbidden.
func TestCSPAllowsWebAssembly(t *testing.T) {
	srv := newFakeServer(t, Options{Assets: fstest.MapFS{"index.html": {Data: []byte("<h1>demo</h1>")}}})
	resp, err := http.Get(srv.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	var scriptSrc string
	for _, d := range strings.Split(csp, ";") {
		if f := strings.Fields(d); len(f) > 0 && f[0] == "script-src" {
			scriptSrc = strings.Join(f[1:], " ")
		}
	}
	if !strings.Contains(scriptSrc, "'wasm-unsafe-eval'") || !strings.Contains(scriptSrc, "'self'") {
		t.Errorf("Content-Security-Policy %q: script-src must allow 'self' and 'wasm-unsafe-eval'", csp)
	}
	if strings.Contains(csp, "'unsafe-eval'") || strings.Contains(csp, "'unsafe-inline'") {
		t.Errorf("Content-Security-Policy %q allows eval or inline scripts", csp)
	}
}

// TestStaticGzip: text assets go out gzipped to clients that accept it (the
// browser bundle is ~4.8 MB, ~1.6 MB gzipped), as a representation of their
// own: a distinct ETag, Vary: Accept-Encoding, and 304s on revalidation.
// Clients that do not accept gzip, and files too small to gain, get the
// bytes as they are.
func TestStaticGzip(t *testing.T) {
	bundle := []byte(strings.Repeat("export const greeting = 'hello, world';\n", 2000))
	srv := newFakeServer(t, Options{Assets: fstest.MapFS{
		"index.html":   {Data: []byte("<h1>demo</h1>")},
		"dynamerge.js": {Data: bundle},
		"demo.png":     {Data: bytes.Repeat([]byte{0x89, 'P', 'N', 'G'}, 1000)},
	}})
	get := func(t *testing.T, path string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		return getEncoded(t, srv.url+path, hdr...)
	}

	plain, body := get(t, "/dynamerge.js")
	if plain.Header.Get("Content-Encoding") != "" || !bytes.Equal(body, bundle) {
		t.Fatalf("without Accept-Encoding: Content-Encoding %q, %d bytes; want the file as it is (%d bytes)",
			plain.Header.Get("Content-Encoding"), len(body), len(bundle))
	}
	if got := plain.Header.Get("Vary"); got != "Accept-Encoding" {
		t.Errorf("Vary=%q on the identity answer, want Accept-Encoding (caches must keep both)", got)
	}

	gz, zbody := get(t, "/dynamerge.js", "Accept-Encoding", "br, gzip;q=0.9")
	if got := gz.Header.Get("Content-Encoding"); got != "gzip" {
		t.Fatalf("Content-Encoding=%q, want gzip", got)
	}
	if got := gz.Header.Get("Content-Type"); got != "text/javascript; charset=utf-8" {
		t.Errorf("Content-Type=%q, want text/javascript; charset=utf-8", got)
	}
	if len(zbody) >= len(bundle)/4 {
		t.Errorf("gzipped body %d bytes of %d: not compressed", len(zbody), len(bundle))
	}
	zr, err := gzip.NewReader(bytes.NewReader(zbody))
	if err != nil {
		t.Fatal(err)
	}
	if unzipped, err := io.ReadAll(zr); err != nil || !bytes.Equal(unzipped, bundle) {
		t.Fatalf("gzipped body does not decompress to the file: %v", err)
	}
	tag := gz.Header.Get("ETag")
	if tag == "" || tag == plain.Header.Get("ETag") {
		t.Errorf("gzip ETag %q, identity ETag %q: want two different strong validators", tag, plain.Header.Get("ETag"))
	}
	if star, _ := get(t, "/dynamerge.js", "Accept-Encoding", "*;q=0, gzip; q=0.5"); star.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf(`Accept-Encoding "*;q=0, gzip; q=0.5": Content-Encoding %q, want gzip (named beats "*")`, star.Header.Get("Content-Encoding"))
	}
	if nm, _ := get(t, "/dynamerge.js", "Accept-Encoding", "gzip", "If-None-Match", tag); nm.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation of the gzipped bundle: %d, want 304", nm.StatusCode)
	}

	for _, tc := range []struct{ path, accept, why string }{
		{"/dynamerge.js", "gzip;q=0", "gzip refused"},
		{"/dynamerge.js", "identity", "gzip not offered"},
		{"/dynamerge.js", "gzip;q=0, *", "gzip refused by name"},
		{"/", "gzip", "too small to gain"},
		{"/demo.png", "gzip", "already compressed"},
	} {
		resp, _ := get(t, tc.path, "Accept-Encoding", tc.accept)
		if got := resp.Header.Get("Content-Encoding"); got != "" {
			t.Errorf("%s with Accept-Encoding %q (%s): Content-Encoding %q, want none", tc.path, tc.accept, tc.why, got)
		}
	}
}

// TestStaticVaryKeepsOrigin: with CORS on, a compressible asset varies on
// both Origin and Accept-Encoding; the second must not replace the first
// (issue 18, item 7), or a cache could hand one origin's answer to another.
func TestStaticVaryKeepsOrigin(t *testing.T) {
	srv := newFakeServer(t, Options{
		CORSOrigins: []string{"https://app.example"},
		Assets:      fstest.MapFS{"dynamerge.js": {Data: []byte(strings.Repeat("export const x = 1;\n", 200))}},
	})
	_, hdr, _ := httpCall(t, "GET", srv.url+"/dynamerge.js", "", "", "Origin", "https://app.example", "Accept-Encoding", "gzip")
	vary := strings.Join(hdr.Values("Vary"), ", ")
	for _, want := range []string{"Origin", "Accept-Encoding"} {
		if !strings.Contains(vary, want) {
			t.Errorf("Vary %q lacks %s", vary, want)
		}
	}
}

// TestStaticImmutableHashedNames: an asset whose name carries the first 16
// hex digits of its content's SHA-256 (the browser build names Automerge's
// WebAssembly so) is cacheable for good, and .wasm goes out as
// application/wasm, gzipped or not, which streaming compilation requires.
// A name that looks hashed but does not match its content is revalidated
// like any other asset.
func TestStaticImmutableHashedNames(t *testing.T) {
	wasm := append([]byte("\x00asm\x01\x00\x00\x00"), bytes.Repeat([]byte("automerge wasm section "), 500)...)
	sum := sha256.Sum256(wasm)
	hashed := "automerge." + hex.EncodeToString(sum[:])[:16] + ".wasm"
	srv := newFakeServer(t, Options{Assets: fstest.MapFS{
		"index.html":                  {Data: []byte("<h1>demo</h1>")},
		hashed:                        {Data: wasm},
		"stale.0123456789abcdef.wasm": {Data: wasm},
		"plain.wasm":                  {Data: wasm},
	}})
	get := func(t *testing.T, path, accept string) (*http.Response, []byte) {
		t.Helper()
		return getEncoded(t, srv.url+path, "Accept-Encoding", accept)
	}
	for _, accept := range []string{"identity", "gzip"} {
		resp, body := get(t, "/"+hashed, accept)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s (%s): status %d", hashed, accept, resp.StatusCode)
		}
		if got, want := resp.Header.Get("Content-Type"), "application/wasm"; got != want {
			t.Errorf("%s (%s): Content-Type=%q, want %q", hashed, accept, got, want)
		}
		if got, want := resp.Header.Get("Cache-Control"), "public, max-age=31536000, immutable"; got != want {
			t.Errorf("%s (%s): Cache-Control=%q, want %q", hashed, accept, got, want)
		}
		if accept == "gzip" {
			if got := resp.Header.Get("Content-Encoding"); got != "gzip" {
				t.Fatalf("%s: Content-Encoding=%q, want gzip", hashed, got)
			}
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if body, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(body, wasm) {
			t.Errorf("%s (%s): body differs from the file", hashed, accept)
		}
	}
	for _, name := range []string{"stale.0123456789abcdef.wasm", "plain.wasm", "index.html"} {
		resp, _ := get(t, "/"+name, "gzip")
		if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("%s: Cache-Control=%q, want no-cache (its name does not carry its content's hash)", name, got)
		}
	}
}

// getEncoded GETs url with the headers hdr (name, value, ...) and returns the
// answer and its body as sent: the transport neither asks for gzip nor undoes
// it behind the test's back.
func getEncoded(t *testing.T, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	hc := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}
