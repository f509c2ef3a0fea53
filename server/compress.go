package server

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
)

// syncGzipMinBytes is the smallest /v1/sync answer sent gzipped: below it,
// gzip's 18 bytes of framing and the CPU are not worth it (a pure pull of
// an unchanged record is ~150 bytes).
const syncGzipMinBytes = 1024

// gzipWriters recycles gzip writers: each holds ~800 KB of compressor state,
// too much to allocate per answer.
var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	return w
}}

// decodedBody returns the request body decoded as its Content-Encoding
// says: identity as is, gzip inflated and capped at MaxBodyBytes of
// DECODED bytes (the wire bytes are capped by limitBody already), so that a
// small gzip bomb gets 413 too_large like a large plain body, having
// inflated no more than the cap. Other codings get 400 bad_request.
func (s *Server) decodedBody(c echo.Context) (io.Reader, error) {
	req := c.Request()
	switch ce := strings.ToLower(strings.TrimSpace(req.Header.Get("Content-Encoding"))); ce {
	case "", "identity":
		return req.Body, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, badRequest("empty body")
			}
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, err
			}
			return nil, badRequest("Content-Encoding gzip: body is not gzip: %v", err)
		}
		return &gzipBody{r: http.MaxBytesReader(c.Response(), io.NopCloser(zr), s.opts.MaxBodyBytes)}, nil
	default:
		return nil, badRequest("Content-Encoding %q is not supported (gzip or identity)", ce)
	}
}

// gzipBody reads an inflating body and tells corruption of the gzip stream
// apart from bad JSON inside it.
type gzipBody struct{ r io.Reader }

func (b *gzipBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		var mbe *http.MaxBytesError
		if !errors.As(err, &mbe) && !errors.Is(err, os.ErrDeadlineExceeded) {
			err = badRequest("Content-Encoding gzip: corrupt gzip stream: %v", err)
		}
	}
	return n, err
}

// writeSyncBody answers body (of type contentType), gzipped when the client
// accepts gzip and the answer is large enough to gain from it.
func writeSyncBody(c echo.Context, status int, contentType string, body []byte) error {
	h := c.Response().Header()
	h.Add("Vary", "Accept-Encoding")
	h.Set(echo.HeaderContentType, contentType)
	if len(body) < syncGzipMinBytes || !acceptsGzip(c.Request().Header.Get("Accept-Encoding")) {
		return c.Blob(status, contentType, body)
	}
	var buf bytes.Buffer
	buf.Grow(len(body) / 3)
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(&buf)
	_, _ = zw.Write(body) // a bytes.Buffer does not fail
	_ = zw.Close()
	gzipWriters.Put(zw)
	h.Set("Content-Encoding", "gzip")
	return c.Blob(status, contentType, buf.Bytes())
}

// writeSyncJSON answers v as JSON through writeSyncBody.
func writeSyncJSON(c echo.Context, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	body = append(body, '\n') // as c.JSON writes it
	return writeSyncBody(c, status, echo.MIMEApplicationJSON, body)
}
