package server

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path"
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
	tag, err := s.assetTags.get(s.opts.Assets, file, st)
	if err != nil {
		return err
	}
	// Assets have fixed URLs (/, /dynamerge.js): a browser must revalidate
	// them on every use, or it would keep running an old bundle against an
	// upgraded server. The content ETag makes that check a cheap 304, which
	// http.ServeContent answers from the header set here.
	h := c.Response().Header()
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", tag)
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

// assetTags memoises the content ETag of each asset, so that a bundle of a
// few MB is hashed once rather than on every request. An entry is recomputed
// when the file's size or modification time changes, which covers an FS that
// changes under a running server (an embedded FS never does). Its zero value
// is ready to use.
type assetTags struct {
	mu   sync.Mutex
	tags map[string]assetTag
}

type assetTag struct {
	size int64
	mod  time.Time
	tag  string
}

// get returns the strong ETag of the file name of fsys, whose Stat is st.
func (a *assetTags) get(fsys fs.FS, name string, st fs.FileInfo) (string, error) {
	a.mu.Lock()
	e, ok := a.tags[name]
	a.mu.Unlock()
	if ok && e.size == st.Size() && e.mod.Equal(st.ModTime()) {
		return e.tag, nil
	}
	f, err := fsys.Open(name)
	if err != nil {
		return "", fmt.Errorf("asset %s: %w", name, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("asset %s: %w", name, err)
	}
	// 128 bits of SHA-256 are plenty to tell versions of one file apart.
	e = assetTag{size: st.Size(), mod: st.ModTime(), tag: `"` + hex.EncodeToString(h.Sum(nil)[:16]) + `"`}
	a.mu.Lock()
	if a.tags == nil {
		a.tags = map[string]assetTag{}
	}
	a.tags[name] = e
	a.mu.Unlock()
	return e.tag, nil
}
