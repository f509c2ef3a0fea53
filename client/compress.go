package client

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"sync"
)

// gzipMinBytes is the smallest request body the client gzips: below it the
// framing and the CPU cost more than they save.
const gzipMinBytes = 1024

// gzipServers remembers, per BaseURL, that the server inflates gzip request
// bodies: a server that does says so by varying its sync answers on
// Accept-Encoding. Until then bodies go plain, so a server that predates
// gzip keeps working. Kept outside Client so that Client stays a plain
// value that callers copy.
var gzipServers sync.Map // BaseURL → true

func (c *Client) serverTakesGzip() bool {
	_, ok := gzipServers.Load(c.BaseURL)
	return ok
}

// noteGzip learns from a sync answer whether its server takes gzip.
func (c *Client) noteGzip(h http.Header) {
	for _, v := range h.Values("Vary") {
		if strings.Contains(strings.ToLower(v), "accept-encoding") {
			gzipServers.Store(c.BaseURL, true)
			return
		}
	}
}

// gzipBody compresses a request body.
func gzipBody(b []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(b) / 3)
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	_, _ = zw.Write(b) // a bytes.Buffer does not fail
	_ = zw.Close()
	return buf.Bytes()
}

// answerBody returns the body of resp decoded as its Content-Encoding says.
// The client asks for gzip itself (rather than leaving it to net/http), so
// what crosses the wire stays visible to a RoundTripper that counts it.
func answerBody(resp *http.Response) (io.Reader, error) {
	if !strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		return resp.Body, nil
	}
	return gzip.NewReader(resp.Body)
}
