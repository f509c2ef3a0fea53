package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

type sseEvent struct{ event, data string }

func TestReadSSE(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		want   []sseEvent
	}{
		{"one event", "event: change\ndata: {\"id\":\"a\"}\n\n", []sseEvent{{"change", `{"id":"a"}`}}},
		{"crlf", "event: change\r\ndata: x\r\n\r\n", []sseEvent{{"change", "x"}}},
		{"lone cr", "event: change\rdata: x\r\r", []sseEvent{{"change", "x"}}},
		{"default type", "data: x\n\n", []sseEvent{{"message", "x"}}},
		{"multi-line data", "data: a\ndata: b\n\n", []sseEvent{{"message", "a\nb"}}},
		{"no space after colon", "event:change\ndata:x\n\n", []sseEvent{{"change", "x"}}},
		{"only one space stripped", "data:  x\n\n", []sseEvent{{"message", " x"}}},
		{"comments and pings", ": subscribed\n\n: ping\n\nevent: change\n: inline comment\ndata: x\n\n", []sseEvent{{"change", "x"}}},
		{"id and retry ignored", "id: 7\nretry: 1000\nevent: change\ndata: x\n\n", []sseEvent{{"change", "x"}}},
		{"unknown field ignored", "foo: bar\ndata: x\n\n", []sseEvent{{"message", "x"}}},
		{"event without data is dropped", "event: change\n\ndata: y\n\n", []sseEvent{{"message", "y"}}},
		{"type resets between events", "event: change\ndata: x\n\ndata: y\n\n", []sseEvent{{"change", "x"}, {"message", "y"}}},
		{"cut-off event dropped", "data: x\n\ndata: partial", []sseEvent{{"message", "x"}}},
		{"bom", "\uFEFFdata: x\n\n", []sseEvent{{"message", "x"}}},
		{"field without colon", "data\n\n", []sseEvent{{"message", ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []struct {
				name string
				r    io.Reader
			}{
				{"whole", strings.NewReader(tt.stream)},
				{"byte by byte", iotest.OneByteReader(strings.NewReader(tt.stream))},
			} {
				var got []sseEvent
				if err := readSSE(r.r, func(event, data string) bool {
					got = append(got, sseEvent{event, data})
					return true
				}); err != nil {
					t.Fatalf("%s: readSSE: %v", r.name, err)
				}
				if len(got) != len(tt.want) {
					t.Fatalf("%s: got %q, want %q", r.name, got, tt.want)
				}
				for i := range got {
					if got[i] != tt.want[i] {
						t.Fatalf("%s: event %d = %q, want %q", r.name, i, got[i], tt.want[i])
					}
				}
			}
		})
	}
}

func TestReadSSEStops(t *testing.T) {
	n := 0
	err := readSSE(strings.NewReader("data: 1\n\ndata: 2\n\n"), func(string, string) bool { n++; return false })
	if err != nil || n != 1 {
		t.Fatalf("readSSE after stop: n=%d err=%v, want 1 event, nil", n, err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		v    string
		want time.Duration
	}{
		{"", 0},
		{"2", 2 * time.Second},
		{" 10 ", 10 * time.Second},
		{"-1", 0},
		{"soon", 0},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{now.Add(-30 * time.Second).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.v, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q)=%v, want %v", tt.v, got, tt.want)
		}
	}
}

func TestReadError(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		retryAfter string
		code       string
		message    string
		temporary  bool
	}{
		{"protocol error", 400, `{"error":{"code":"invalid_id","message":"bad id"}}`, "", CodeInvalidID, "bad id", false},
		{"unavailable", 503, `{"error":{"code":"unavailable","message":"later"}}`, "3", CodeUnavailable, "later", true},
		{"rate limited", 429, `{"error":{"code":"rate_limited","message":"slow down"}}`, "1", CodeRateLimited, "slow down", true},
		{"proxy html 502", 502, `<html>bad gateway</html>`, "", CodeUnavailable, "<html>bad gateway</html>", true},
		{"empty 500", 500, ``, "", CodeInternal, "Internal Server Error", false},
		{"unknown 418", 418, `teapot`, "", "bad_request", "teapot", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tt.status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(tt.body))}
			if tt.retryAfter != "" {
				resp.Header.Set("Retry-After", tt.retryAfter)
			}
			e := readError(resp)
			if e.Status != tt.status || e.Code != tt.code || e.Message != tt.message || e.Temporary() != tt.temporary {
				t.Fatalf("readError=%+v (temporary %v), want %d %q %q temporary %v", e, e.Temporary(), tt.status, tt.code, tt.message, tt.temporary)
			}
			if (tt.retryAfter != "") != (e.RetryAfter > 0) {
				t.Fatalf("RetryAfter=%v with header %q", e.RetryAfter, tt.retryAfter)
			}
		})
	}
}

// stubServer answers every request with handler and records the requests.
func stubServer(tb testing.TB, handler http.HandlerFunc) *Client {
	tb.Helper()
	hs := httptest.NewServer(handler)
	tb.Cleanup(hs.Close)
	c := New(hs.URL + "/")
	c.Token = "tok"
	return c
}

func TestSyncWire(t *testing.T) {
	var got struct {
		Docs []map[string]any `json:"docs"`
	}
	var auth, ct string
	c := stubServer(t, func(w http.ResponseWriter, r *http.Request) {
		auth, ct = r.Header.Get("Authorization"), r.Header.Get("Content-Type")
		if r.URL.Path != "/v1/sync" || r.Method != http.MethodPost {
			http.Error(w, "wrong endpoint", 404)
			return
		}
		_ = json.NewDecoder(r.Body).Decode(&got)
		_, _ = io.WriteString(w, `{"docs":[{"collection":"todos","id":"a","heads":["h"],"changes":"AQI="},
			{"collection":"todos","id":"b","heads":[],"changes":"","error":{"code":"missing_deps","message":"resend"}}]}`)
	})
	res, err := c.Sync(context.Background(), []Doc{
		{Collection: "todos", ID: "a", Changes: []byte{1, 2, 3}},
		{Collection: "todos", ID: "b", Have: []string{"x"}},
	})
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if auth != "Bearer tok" || !strings.HasPrefix(ct, "application/json") {
		t.Errorf("headers Authorization=%q Content-Type=%q", auth, ct)
	}
	if got.Docs[0]["changes"] != "AQID" || got.Docs[1]["have"].([]any)[0] != "x" {
		t.Errorf("request body %v", got.Docs)
	}
	if _, ok := got.Docs[1]["changes"]; ok {
		t.Errorf("empty changes sent: %v", got.Docs[1])
	}
	if string(res[0].Changes) != "\x01\x02" || res[0].Heads[0] != "h" || res[0].Err != nil {
		t.Errorf("res[0]=%+v", res[0])
	}
	if res[1].Err == nil || res[1].Err.Code != CodeMissingDeps || res[1].Err.Status != 0 {
		t.Errorf("res[1].Err=%+v, want missing_deps", res[1].Err)
	}
}

func TestSyncAnswerMismatch(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"too few", `{"docs":[]}`},
		{"wrong doc", `{"docs":[{"collection":"todos","id":"zzz","heads":[]}]}`},
		{"bad base64", `{"docs":[{"collection":"todos","id":"a","heads":[],"changes":"!"}]}`},
		{"not json", `<html>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := stubServer(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, tt.body) })
			if _, err := c.Sync(context.Background(), []Doc{{Collection: "todos", ID: "a"}}); err == nil {
				t.Fatal("Sync accepted a malformed answer")
			}
		})
	}
}

func TestGetAndFeedWire(t *testing.T) {
	c := stubServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/collections/todos/docs/a":
			if r.URL.Query().Get("heads") != "h1,h2" {
				http.Error(w, "heads", 400)
				return
			}
			w.Header().Set("ETag", `"e"`)
			_, _ = io.WriteString(w, `{"collection":"todos","id":"a","heads":["h1","h2"],"doc":{"x":1}}`)
		case "/v1/collections/todos/feed":
			if r.URL.Query().Get("after") != "c1" || r.URL.Query().Get("limit") != "5" {
				http.Error(w, "query", 400)
				return
			}
			_, _ = io.WriteString(w, `{"docs":[{"id":"a","heads":["h"]}],"cursor":"c2","more":true}`)
		default:
			w.WriteHeader(404)
			_, _ = io.WriteString(w, `{"error":{"code":"not_found","message":"nope"}}`)
		}
	})
	ctx := context.Background()
	rec, err := c.Get(ctx, "todos", "a", "h1", "h2")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if rec.ETag != `"e"` || string(rec.Doc) != `{"x":1}` || len(rec.Heads) != 2 {
		t.Fatalf("Get=%+v", rec)
	}
	page, err := c.Feed(ctx, "todos", "c1", 5)
	if err != nil {
		t.Fatalf("Feed: %v", err)
	}
	if page.Cursor != "c2" || !page.More || page.Docs[0].ID != "a" {
		t.Fatalf("Feed=%+v", page)
	}
	_, err = c.Get(ctx, "todos", "missing")
	var e *Error
	if !errors.As(err, &e) || e.Status != 404 || e.Code != CodeNotFound || !IsCode(err, CodeNotFound) {
		t.Fatalf("Get missing: %v", err)
	}
}

func TestEventsWire(t *testing.T) {
	c := stubServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("collections") != "a,b" {
			w.WriteHeader(400)
			_, _ = io.WriteString(w, `{"error":{"code":"bad_request","message":"collections"}}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, ": hi\n\nevent: other\ndata: {}\n\nevent: change\ndata: not json\n\nevent: change\ndata: {\"collection\":\"a\",\"id\":\"x\",\"heads\":[\"h\"]}\n\n")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	events, err := c.Events(ctx, "a", "b")
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	var got []Event
	for ev := range events {
		got = append(got, ev)
	}
	if len(got) != 1 || got[0].ID != "x" || got[0].Heads[0] != "h" {
		t.Fatalf("events %+v, want the one change event", got)
	}
	if _, err := c.Events(ctx, "bad"); !IsCode(err, CodeBadRequest) {
		t.Fatalf("Events with an error answer: %v, want bad_request", err)
	}
}

func TestEventsNotSSE(t *testing.T) {
	c := stubServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html>")
	})
	if _, err := c.Events(context.Background(), "a"); err == nil {
		t.Fatal("Events accepted an HTML answer")
	}
}
