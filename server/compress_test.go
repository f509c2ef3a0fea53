package server

import (
	"context"

	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/protocol"
)

func gzipped(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// postSync sends body to /v1/sync with the given headers, without Go's
// transparent decompression, and returns the answer and its raw body.
func postSync(tb testing.TB, base string, body []byte, headers map[string]string) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/v1/sync", bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, raw
}

// TestSyncGzip: gzip request bodies are inflated, large answers are
// gzipped for clients that accept it and plain for the others, and what a
// gzip body inflates to is held to MaxBodyBytes (a bomb is 413, and stores
// nothing); corrupt or unknown encodings are 400.
func TestSyncGzip(t *testing.T) {
	const maxBody = 64 << 10
	rs := newRealServer(t, Options{MaxBodyBytes: maxBody}, engine.Options{})
	h := newHistory()
	big := h.edit(t, "notes", strings.Repeat("lorem ipsum ", 1000)) // ~12 KB, compressible
	push := []byte(syncBody(docJSON("todos", "z", b64(big))))

	resp, raw := postSync(t, rs.url, gzipped(t, push), map[string]string{"Content-Encoding": "gzip"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("gzip push: status %d: %s", resp.StatusCode, raw)
	}
	pull := []byte(syncBody(docJSON("todos", "z", "")))
	for _, tc := range []struct {
		name   string
		accept string
		gz     bool
	}{
		{"accepts gzip", "gzip, deflate", true},
		{"identity only", "", false},
		{"gzip refused", "gzip;q=0, identity", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, raw := postSync(t, rs.url, pull, map[string]string{"Accept-Encoding": tc.accept})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, raw)
			}
			if got := resp.Header.Get("Content-Encoding") == "gzip"; got != tc.gz {
				t.Fatalf("Content-Encoding=%q, want gzip=%v", resp.Header.Get("Content-Encoding"), tc.gz)
			}
			if !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
				t.Errorf("Vary=%q, want Accept-Encoding", resp.Header.Get("Vary"))
			}
			body := raw
			if tc.gz {
				zr, err := gzip.NewReader(bytes.NewReader(raw))
				if err != nil {
					t.Fatal(err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
				if len(raw) >= len(body)/2 {
					t.Errorf("gzipped answer %d bytes for %d of JSON: not compressed", len(raw), len(body))
				}
			}
			var sr protocol.SyncResponse
			if err := json.Unmarshal(body, &sr); err != nil {
				t.Fatalf("answer: %v", err)
			}
			if got, want := sr.Docs[0].Changes, b64(big); got != want {
				t.Fatalf("pulled %d base64 characters, want the pushed change (%d)", len(got), len(want))
			}
		})
	}

	// A small answer is not worth gzip.
	resp, _ = postSync(t, rs.url, []byte(syncBody(docJSON("todos", "z", "", headsOf(t, rs.url, "todos", "z")))), map[string]string{"Accept-Encoding": "gzip"})
	if ce := resp.Header.Get("Content-Encoding"); ce != "" {
		t.Errorf("small answer Content-Encoding=%q, want none", ce)
	}

	// A gzip bomb: a few KB on the wire that inflate past MaxBodyBytes.
	bomb := h.edit(t, "bomb", strings.Repeat("a", 4*maxBody))
	bombBody := []byte(syncBody(docJSON("todos", "bomb", b64(bomb))))
	wire := gzipped(t, append(bombBody, bytes.Repeat([]byte(" "), 4*maxBody)...))
	if len(wire) >= maxBody {
		t.Fatalf("bomb is %d bytes on the wire, want under %d", len(wire), maxBody)
	}
	resp, raw = postSync(t, rs.url, wire, map[string]string{"Content-Encoding": "gzip"})
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(raw), `"too_large"`) {
		t.Fatalf("gzip bomb: status %d %s, want 413 too_large", resp.StatusCode, raw)
	}
	if got := headsOf(t, rs.url, "todos", "bomb"); got != "not_found" {
		t.Fatalf("gzip bomb stored something: heads %s", got)
	}

	for _, tc := range []struct {
		name, encoding string
		body           []byte
	}{
		{"corrupt gzip", "gzip", append(gzipped(t, push)[:40:40], bytes.Repeat([]byte{0xff}, 64)...)},
		{"not gzip", "gzip", push},
		{"unknown encoding", "br", push},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, raw := postSync(t, rs.url, tc.body, map[string]string{"Content-Encoding": tc.encoding})
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), `"bad_request"`) {
				t.Fatalf("status %d %s, want 400 bad_request", resp.StatusCode, raw)
			}
		})
	}
}

// encodingTransport records the encodings of /v1/sync exchanges as they
// cross the wire.
type encodingTransport struct {
	sent, got []string // Content-Encoding of each request and answer
}

func (t *encodingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil && req.URL.Path == "/v1/sync" {
		t.sent = append(t.sent, req.Header.Get("Content-Encoding"))
		t.got = append(t.got, resp.Header.Get("Content-Encoding"))
	}
	return resp, err
}

// TestClientGzipReal: the Go client sends plain bodies until the server has
// shown it takes gzip, then gzips large ones, and decodes gzipped answers.
func TestClientGzipReal(t *testing.T) {
	rs := newRealServer(t, Options{}, engine.Options{})
	tr := &encodingTransport{}
	c := &client.Client{BaseURL: rs.url, HTTP: &http.Client{Transport: tr}}
	ctx := context.Background()
	h := newHistory()
	first := h.edit(t, "a", strings.Repeat("first ", 400))
	second := h.edit(t, "b", strings.Repeat("second ", 400))
	for i, ch := range [][]byte{first, second} {
		res, err := c.Sync(ctx, []client.Doc{{Collection: "todos", ID: "gz", Changes: ch}})
		if err != nil || res[0].Err != nil {
			t.Fatalf("sync %d: %v %v", i, err, res[0].Err)
		}
	}
	if got, want := strings.Join(tr.sent, ","), ",gzip"; got != want {
		t.Fatalf("request encodings %q, want %q (plain until the server shows it takes gzip)", got, want)
	}
	res, err := c.Sync(ctx, []client.Doc{{Collection: "todos", ID: "gz"}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("pull: %v %v", err, res[0].Err)
	}
	if got := tr.got[len(tr.got)-1]; got != "gzip" {
		t.Fatalf("pull answer Content-Encoding=%q, want gzip", got)
	}
	if got, want := len(res[0].Changes), len(first)+len(second); got != want {
		t.Fatalf("pulled %d bytes, want %d", got, want)
	}
}
