package lww

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

func newTestServer(t *testing.T) *Client {
	t.Helper()
	st, err := OpenBolt(filepath.Join(t.TempDir(), "lww.db"))
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	hs := httptest.NewServer(NewServer(st, nil))
	t.Cleanup(hs.Close)
	return &Client{BaseURL: hs.URL, HTTP: hs.Client()}
}

func version(time int64, writer, doc string) Version {
	return Version{Stamp: Stamp{Time: time, Writer: writer}, Doc: json.RawMessage(doc)}
}

func TestPutKeepsTheLaterStamp(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		puts  []Version
		want  string // doc stored at the end
		wantW string
	}{
		{"newer replaces", []Version{version(1, "a", `{"v":1}`), version(2, "b", `{"v":2}`)}, `{"v":2}`, "b"},
		{"older is refused", []Version{version(2, "a", `{"v":2}`), version(1, "b", `{"v":1}`)}, `{"v":2}`, "a"},
		{"tie goes to the larger writer", []Version{version(5, "b", `{"v":"b"}`), version(5, "a", `{"v":"a"}`)}, `{"v":"b"}`, "b"},
		{"retry is idempotent", []Version{version(3, "a", `{"v":3}`), version(3, "a", `{"v":3}`)}, `{"v":3}`, "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestServer(t)
			var last Version
			for _, v := range tc.puts {
				var err error
				if last, err = c.Put(ctx, "notes", "r1", v); err != nil {
					t.Fatalf("Put: %v", err)
				}
			}
			if got := string(last.Doc); got != tc.want || last.Stamp.Writer != tc.wantW {
				t.Fatalf("last Put answered %s by %s, want %s by %s", got, last.Stamp.Writer, tc.want, tc.wantW)
			}
			got, err := c.Get(ctx, "notes", "r1")
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if string(got.Doc) != tc.want {
				t.Fatalf("Get()=%s, want %s", got.Doc, tc.want)
			}
		})
	}
}

func TestBadRequestsChangeNothing(t *testing.T) {
	c := newTestServer(t)
	ctx := context.Background()
	if _, err := c.Put(ctx, "notes", "r1", version(1, "a", `{"v":1}`)); err != nil {
		t.Fatalf("Put: %v", err)
	}
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"bad collection", "PUT", "/lww/Notes/r1", `{"stamp":{"time":9,"writer":"x"},"doc":{}}`, 400, "invalid_id"},
		{"bad id", "PUT", "/lww/notes/r%2F1", `{"stamp":{"time":9,"writer":"x"},"doc":{}}`, 400, "invalid_id"},
		{"not json", "PUT", "/lww/notes/r1", `nope`, 400, "bad_request"},
		{"no stamp", "PUT", "/lww/notes/r1", `{"doc":{"v":9}}`, 400, "bad_request"},
		{"doc not an object", "PUT", "/lww/notes/r1", `{"stamp":{"time":9,"writer":"x"},"doc":[1]}`, 400, "bad_request"},
		{"too large", "PUT", "/lww/notes/r1", `{"stamp":{"time":9,"writer":"x"},"doc":{"v":"` + strings.Repeat("x", MaxRecordBytes) + `"}}`, 413, "too_large"},
		{"missing", "GET", "/lww/notes/nope", ``, 404, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, c.BaseURL+tc.path, strings.NewReader(tc.body))
			resp, err := c.HTTP.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e struct {
				Error struct{ Code string } `json:"error"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&e)
			if resp.StatusCode != tc.status || e.Error.Code != tc.code {
				t.Fatalf("%s %s = %d %q, want %d %q", tc.method, tc.path, resp.StatusCode, e.Error.Code, tc.status, tc.code)
			}
		})
	}
	got, err := c.Get(ctx, "notes", "r1")
	if err != nil || string(got.Doc) != `{"v":1}` {
		t.Fatalf("after bad requests Get()=%s, %v; want the first version", got.Doc, err)
	}
	if _, err := c.Get(ctx, "notes", "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(missing) err=%v, want ErrNotFound", err)
	}
}
