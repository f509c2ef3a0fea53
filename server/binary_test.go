package server

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/protocol"
)

// TestSyncBinaryReal: a client with the binary body pushes, pulls and gets
// per-doc errors exactly as over JSON, and moves fewer bytes; a JSON client
// of the same record keeps working; a binary request asking for JSON gets
// JSON; malformed binary bodies, bad ids and too many docs are refused as
// over JSON, and store nothing.
func TestSyncBinaryReal(t *testing.T) {
	rs := newRealServer(t, Options{MaxDocsPerSync: 4}, engine.Options{})
	ctx := context.Background()
	bin := &client.Client{BaseURL: rs.url, HTTP: http.DefaultClient, Binary: true}
	js := client.New(rs.url)

	h := newHistory()
	first, second := h.edit(t, "title", "binary"), h.edit(t, "n", 2)
	res, err := bin.Sync(ctx, []client.Doc{{Collection: "todos", ID: "bin", Changes: append(append([]byte{}, first...), second...)}})
	if err != nil || res[0].Err != nil || len(res[0].Heads) != 1 {
		t.Fatalf("binary push: %+v, %v", res, err)
	}
	heads := res[0].Heads
	// A JSON client pulls what the binary one pushed, and the other way.
	pj, err := js.Sync(ctx, []client.Doc{{Collection: "todos", ID: "bin"}})
	if err != nil || !bytes.Equal(pj[0].Changes, append(append([]byte{}, first...), second...)) {
		t.Fatalf("JSON pull of a binary push: %+v, %v", pj, err)
	}
	pb, err := bin.Sync(ctx, []client.Doc{{Collection: "todos", ID: "bin", Have: []string{}}, {Collection: "todos", ID: "never"}})
	if err != nil || !bytes.Equal(pb[0].Changes, pj[0].Changes) || strings.Join(pb[0].Heads, ",") != strings.Join(heads, ",") || len(pb[1].Heads) != 0 {
		t.Fatalf("binary pull: %+v, %v", pb, err)
	}
	// A change whose dependency the server lacks: the per-doc error.
	h2 := newHistory()
	_ = h2.edit(t, "a", 1)
	orphan := h2.edit(t, "b", 2)
	pe, err := bin.Sync(ctx, []client.Doc{{Collection: "todos", ID: "orphan", Changes: orphan}})
	if err != nil || pe[0].Err == nil || pe[0].Err.Code != protocol.CodeMissingDeps {
		t.Fatalf("binary push of an orphan: %+v, %v; want the per-doc missing_deps", pe, err)
	}

	post := func(body []byte, hdr ...string) (int, http.Header, []byte) {
		t.Helper()
		return httpCall(t, "POST", rs.url+"/v1/sync", "", string(body), append([]string{"Content-Type", protocol.ContentTypeSyncBinary}, hdr...)...)
	}
	pull := protocol.AppendSyncRequest(nil, []protocol.RawSyncDoc{{Collection: "todos", ID: "bin"}})
	st, hdr, body := post(pull, "Accept", "application/json")
	if st != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") || !strings.Contains(string(body), heads[0]) {
		t.Fatalf("binary request asking for JSON: %d %s %s", st, hdr.Get("Content-Type"), body)
	}
	st, hdr, body = post(pull, "Accept", protocol.ContentTypeSyncBinary)
	if st != 200 || hdr.Get("Content-Type") != protocol.ContentTypeSyncBinary {
		t.Fatalf("binary request asking for binary: %d %s", st, hdr.Get("Content-Type"))
	}
	if rs, err := protocol.ParseSyncResponse(body); err != nil || len(rs) != 1 || len(rs[0].Changes) != len(first)+len(second) {
		t.Fatalf("binary answer: %+v, %v", rs, err)
	}
	_, _, jsonBody := httpCall(t, "POST", rs.url+"/v1/sync", "", `{"docs":[{"collection":"todos","id":"bin","have":[]}]}`)
	t.Logf("a pull of %d change bytes: %d bytes as binary, %d as JSON", len(first)+len(second), len(body), len(jsonBody))
	if len(body) >= len(jsonBody) {
		t.Errorf("binary answer %d bytes, JSON %d: want fewer", len(body), len(jsonBody))
	}

	five := make([]protocol.RawSyncDoc, 5)
	for i := range five {
		five[i] = protocol.RawSyncDoc{Collection: "todos", ID: "x"}
	}
	for _, tc := range []struct {
		name   string
		body   []byte
		status int
		code   string
	}{
		{"not binary", []byte(`{"docs":[]}`), 400, CodeBadRequest},
		{"truncated", pull[:len(pull)-1], 400, CodeBadRequest},
		{"trailing bytes", append(append([]byte{}, pull...), 0), 400, CodeBadRequest},
		{"bad id", protocol.AppendSyncRequest(nil, []protocol.RawSyncDoc{{Collection: "todos", ID: "no spaces", Changes: first}}), 400, CodeInvalidID},
		{"too many docs", protocol.AppendSyncRequest(nil, five), 413, CodeTooLarge},
		{"invalid change", protocol.AppendSyncRequest(nil, []protocol.RawSyncDoc{{Collection: "todos", ID: "bad", Changes: []byte("not automerge")}}), 200, ""},
	} {
		st, _, body := post(tc.body, "Accept", "application/json")
		if st != tc.status || (tc.code != "" && errCode(body) != tc.code) {
			t.Errorf("%s: %d %s, want %d %s", tc.name, st, body, tc.status, tc.code)
		}
	}
	if _, err := js.Get(ctx, "todos", "bad"); !client.IsCode(err, client.CodeNotFound) {
		t.Fatalf("a refused binary push stored something: %v", err)
	}
}
