package server

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// builtinPage is served at "/" when Options.Assets is nil.
const builtinPage = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>dynamerge</title></head>
<body>
<h1>dynamerge</h1>
<p>This is a dynamerge sync server: offline-first records kept as Automerge
documents, merged here and stored durably.</p>
<ul>
<li>API: <code>POST /v1/sync</code>, <code>GET /v1/collections/{collection}/docs/{id}</code>,
<code>GET /v1/collections/{collection}/feed</code>, <code>GET /v1/events</code>
(see the protocol, PROTOCOL.md, and <code>schema/openapi.yaml</code>).</li>
<li>Operations: <a href="/healthz">/healthz</a>, <a href="/readyz">/readyz</a>,
<a href="/metrics">/metrics</a>.</li>
</ul>
</body>
</html>
`

// handleStatic serves Options.Assets (or the built-in page) for every GET
// outside the API. Unknown /v1 paths stay JSON not_found errors, so API
// clients never get an HTML page.
func (s *Server) handleStatic(c echo.Context) error {
	p := c.Request().URL.Path
	if p == "/v1" || strings.HasPrefix(p, "/v1/") {
		return echo.ErrNotFound
	}
	if s.opts.Assets == nil {
		if p != "/" {
			return echo.ErrNotFound
		}
		return c.HTML(http.StatusOK, builtinPage)
	}
	name := strings.TrimPrefix(path.Clean("/"+p), "/")
	if name == "" {
		name = "index.html"
	}
	st, err := fs.Stat(s.opts.Assets, name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return echo.ErrNotFound
		}
		return err
	}
	file := name
	if st.IsDir() {
		// FileServer answers a directory with its index.html (or 404).
		file = path.Join(name, "index.html")
		if st, err = fs.Stat(s.opts.Assets, file); err != nil {
			return echo.ErrNotFound
		}
	}
	a, err := s.assetTags.get(s.opts.Assets, file, st)
	if err != nil {
		return err
	}
	// Assets have fixed URLs (/, /dynamerge.js): a browser must revalidate
	// them on every use, or it would keep running an old bundle against an
	// upgraded server. The content ETag makes that check a cheap 304, which
	// http.ServeContent answers from the header set here. A name that
	// carries its content's hash (automerge.<hash>.wasm) never changes
	// meaning: browsers keep it, and its compiled code, without asking.
	h := c.Response().Header()
	if a.immutable {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	if a.gz != nil {
		// Add, not Set: CORS put "Vary: Origin" already.
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(c.Request().Header.Get("Accept-Encoding")) {
			// The gzipped bytes are another representation: their own
			// strong ETag, so that a cache never answers one with the other.
			h.Set("ETag", a.gzTag)
			h.Set("Content-Encoding", "gzip")
			if ct := mime.TypeByExtension(path.Ext(file)); ct != "" {
				h.Set("Content-Type", ct)
			}
			http.ServeContent(c.Response(), c.Request(), file, a.mod, bytes.NewReader(a.gz))
			return nil
		}
	}
	h.Set("ETag", a.tag)
	// http.FileServerFS handles ranges, modification times and content
	// types; directories without an index are not listed.
	http.FileServerFS(noDirListing{s.opts.Assets}).ServeHTTP(c.Response(), c.Request())
	return nil
}

// noDirListing hides directories that have no index.html.
type noDirListing struct{ fsys fs.FS }

func (n noDirListing) Open(name string) (fs.File, error) {
	f, err := n.fsys.Open(name)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	if st.IsDir() {
		if _, err := fs.Stat(n.fsys, path.Join(name, "index.html")); err != nil {
			_ = f.Close()
			return nil, fs.ErrNotExist
		}
	}
	return f, nil
}

// acceptsGzip reports whether an Accept-Encoding header accepts gzip with a
// non-zero quality, by name or, when gzip is not named, through "*".
func acceptsGzip(accept string) bool {
	star := false
	for _, part := range strings.Split(accept, ",") {
		coding, params, _ := strings.Cut(part, ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		q := strings.ReplaceAll(strings.ToLower(params), " ", "")
		ok := true
		if v, found := strings.CutPrefix(q, "q="); found && strings.Trim(v, "0.") == "" {
			ok = false // q=0, q=0.0, …: refused
		}
		switch coding {
		case "gzip":
			return ok
		case "*":
			star = ok
		}
	}
	return star
}

// Gzip applies to text assets (the bundle, the demo's HTML, CSS and script)
// and WebAssembly (Automerge's shrinks to a third) of at least
// gzipMinBytes; images and fonts are compressed already.
const gzipMinBytes = 1024

var gzipTypes = map[string]bool{".js": true, ".mjs": true, ".css": true, ".html": true, ".svg": true, ".json": true, ".map": true, ".txt": true, ".wasm": true}

// hashedName matches an asset name that carries a content hash before its
// extension, as browser/scripts/build.mjs names Automerge's WebAssembly:
// automerge.2a613b3ba5576898.wasm. The hash is the first 16 hex digits of
// the content's SHA-256.
var hashedName = regexp.MustCompile(`\.([0-9a-f]{16})\.[a-z0-9]+$`)

// contentNamed tells whether the file's name carries the hash of its
// content (hex SHA-256): only then may browsers cache it for good. A name
// that merely looks hashed but is not, stays revalidated.
func contentNamed(name, sum string) bool {
	m := hashedName.FindStringSubmatch(path.Base(name))
	return m != nil && strings.HasPrefix(sum, m[1])
}

// assetTags memoises the content ETag of each asset, and the gzipped bytes
// of each text asset, so that a bundle of a few MB is hashed and compressed
// once rather than on every request. An entry is recomputed when the file's
// size or modification time changes, which covers an FS that changes under
// a running server (an embedded FS never does). Its zero value is ready to
// use.
type assetTags struct {
	mu   sync.Mutex
	tags map[string]assetTag
}

type assetTag struct {
	size int64
	mod  time.Time
	tag  string
	// gz is the gzipped file and gzTag its ETag; nil when the asset is
	// not compressed.
	gz    []byte
	gzTag string
	// immutable: the name carries the content's hash (contentNamed).
	immutable bool
}

// get returns what is memoised of the file name of fsys, whose Stat is st.
func (a *assetTags) get(fsys fs.FS, name string, st fs.FileInfo) (assetTag, error) {
	a.mu.Lock()
	e, ok := a.tags[name]
	a.mu.Unlock()
	if ok && e.size == st.Size() && e.mod.Equal(st.ModTime()) {
		return e, nil
	}
	f, err := fsys.Open(name)
	if err != nil {
		return assetTag{}, fmt.Errorf("asset %s: %w", name, err)
	}
	defer f.Close()
	h := sha256.New()
	var zbuf bytes.Buffer
	var w io.Writer = h
	var zw *gzip.Writer
	compress := gzipTypes[path.Ext(name)] && st.Size() >= gzipMinBytes
	if compress {
		zw, _ = gzip.NewWriterLevel(&zbuf, gzip.BestCompression) // a valid level: no error
		w = io.MultiWriter(h, zw)
	}
	if _, err := io.Copy(w, f); err != nil {
		return assetTag{}, fmt.Errorf("asset %s: %w", name, err)
	}
	// 128 bits of SHA-256 are plenty to tell versions of one file apart.
	sum := hex.EncodeToString(h.Sum(nil)[:16])
	full := hex.EncodeToString(h.Sum(nil))
	e = assetTag{size: st.Size(), mod: st.ModTime(), tag: `"` + sum + `"`, immutable: contentNamed(name, full)}
	if compress {
		if err := zw.Close(); err != nil {
			return assetTag{}, fmt.Errorf("asset %s: gzip: %w", name, err)
		}
		e.gz, e.gzTag = zbuf.Bytes(), `"`+sum+`-gzip"`
	}
	a.mu.Lock()
	if a.tags == nil {
		a.tags = map[string]assetTag{}
	}
	a.tags[name] = e
	a.mu.Unlock()
	return e, nil
}
