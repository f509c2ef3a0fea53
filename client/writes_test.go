package client

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestWriteRequests: each write sends its method, path, Content-Type,
// If-Match and body as PROTOCOL.md says, and reads the view, its ETag and
// whether it was created.
func TestWriteRequests(t *testing.T) {
	type seen struct{ method, path, ctype, ifMatch, body string }
	var got seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = seen{r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("If-Match"), string(b)}
		w.Header().Set("ETag", `"e"`)
		status := http.StatusOK
		if r.Method == http.MethodPost && r.URL.Path == "/v1/collections/todos/docs" {
			status = http.StatusCreated
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"collection":"todos","id":"x","heads":["h"],"doc":{"a":1},"conflicts":[]}`))
	}))
	defer srv.Close()
	c := New(srv.URL)
	ctx := context.Background()
	opts := WriteOptions{IfMatch: `"old"`}
	for _, tt := range []struct {
		name    string
		call    func() (*Record, error)
		want    seen
		created bool
	}{
		{"create", func() (*Record, error) { return c.Create(ctx, "todos", map[string]int{"a": 1}) },
			seen{"POST", "/v1/collections/todos/docs", "application/json", "", `{"a":1}`}, true},
		{"put", func() (*Record, error) { return c.Put(ctx, "todos", "x", json.RawMessage(`{"a":1}`), opts) },
			seen{"PUT", "/v1/collections/todos/docs/x", "application/json", `"old"`, `{"a":1}`}, false},
		{"merge patch", func() (*Record, error) { return c.MergePatch(ctx, "todos", "x", json.RawMessage(`{"a":null}`), opts) },
			seen{"PATCH", "/v1/collections/todos/docs/x", "application/merge-patch+json", `"old"`, `{"a":null}`}, false},
		{"JSON Patch", func() (*Record, error) {
			return c.JSONPatch(ctx, "todos", "x", []PatchOp{{Op: "add", Path: "/a", Value: json.RawMessage(`null`)}, {Op: "move", From: "/a", Path: "/b"}}, WriteOptions{})
		}, seen{"PATCH", "/v1/collections/todos/docs/x", "application/json-patch+json", "", `[{"op":"add","path":"/a","value":null},{"op":"move","path":"/b","from":"/a"}]`}, false},
		{"restore", func() (*Record, error) { return c.Restore(ctx, "todos", "x", []string{"h1"}, opts) },
			seen{"POST", "/v1/collections/todos/docs/x/restore", "application/json", `"old"`, `{"heads":["h1"]}`}, false},
	} {
		rec, err := tt.call()
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got != tt.want {
			t.Errorf("%s sent %+v, want %+v", tt.name, got, tt.want)
		}
		if rec.Created != tt.created || rec.ETag != `"e"` || string(rec.Doc) != `{"a":1}` || rec.Conflicts == nil {
			t.Errorf("%s read %+v", tt.name, rec)
		}
	}
	if _, err := c.GetWith(ctx, "todos", "x", GetOptions{Conflicts: true}); err != nil {
		t.Fatal(err)
	}
}
