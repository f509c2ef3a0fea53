package server

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dynamerge/dynamerge/protocol"
)

func TestDecodeSyncRequest(t *testing.T) {
	tests := []struct {
		name string
		body string
		docs int
		code string // "" for success
	}{
		{"empty docs", `{"docs":[]}`, 0, ""},
		{"one doc", `{"docs":[{"collection":"todos","id":"a"}]}`, 1, ""},
		{"unknown fields ignored", `{"docs":[{"collection":"todos","id":"a","x":1}],"v":2}`, 1, ""},
		{"trailing whitespace", "{\"docs\":[]}\n\t ", 0, ""},
		{"empty body", ``, 0, CodeBadRequest},
		{"not json", `hello`, 0, CodeBadRequest},
		{"truncated", `{"docs":[`, 0, CodeBadRequest},
		{"array", `[]`, 0, CodeBadRequest},
		{"null", `null`, 0, CodeBadRequest},
		{"no docs", `{}`, 0, CodeBadRequest},
		{"docs null", `{"docs":null}`, 0, CodeBadRequest},
		{"docs object", `{"docs":{}}`, 0, CodeBadRequest},
		{"id number", `{"docs":[{"collection":"todos","id":1}]}`, 0, CodeBadRequest},
		{"have string", `{"docs":[{"collection":"todos","id":"a","have":"x"}]}`, 0, CodeBadRequest},
		{"changes number", `{"docs":[{"collection":"todos","id":"a","changes":5}]}`, 0, CodeBadRequest},
		{"two values", `{"docs":[]}{"docs":[]}`, 0, CodeBadRequest},
		{"trailing garbage", `{"docs":[]} x`, 0, CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := decodeSyncRequest(strings.NewReader(tt.body))
			if tt.code == "" {
				if err != nil {
					t.Fatalf("decodeSyncRequest: %v", err)
				}
				if got, want := len(docs), tt.docs; got != want {
					t.Fatalf("len(docs)=%d, want %d", got, want)
				}
				return
			}
			var ae *apiError
			if !errors.As(err, &ae) || ae.Code != tt.code {
				t.Fatalf("decodeSyncRequest err=%v, want code %q", err, tt.code)
			}
		})
	}
}

func TestDecodeSyncRequestBodyLimit(t *testing.T) {
	rec := httptest.NewRecorder()
	body := http.MaxBytesReader(rec, io.NopCloser(strings.NewReader(`{"docs":[{"collection":"todos","id":"aaaaaaaa"}]}`)), 10)
	_, err := decodeSyncRequest(body)
	var mbe *http.MaxBytesError
	if !errors.As(err, &mbe) {
		t.Fatalf("err=%v, want *http.MaxBytesError", err)
	}
	if ae, _ := classify(err); ae.Status != http.StatusRequestEntityTooLarge || ae.Code != CodeTooLarge {
		t.Fatalf("classify=%+v, want 413 too_large", ae)
	}
}

func TestParseSyncDocs(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	tests := []struct {
		name string
		doc  protocol.SyncDoc
		code string
	}{
		{"pull", protocol.SyncDoc{Collection: "todos", ID: "a"}, ""},
		{"have and changes", protocol.SyncDoc{Collection: "todos", ID: "a", Have: []string{hash}, Changes: "AAEC"}, ""},
		{"bad collection", protocol.SyncDoc{Collection: "Todos", ID: "a"}, CodeInvalidID},
		{"empty collection", protocol.SyncDoc{Collection: "", ID: "a"}, CodeInvalidID},
		{"bad id", protocol.SyncDoc{Collection: "todos", ID: "a/b"}, CodeInvalidID},
		{"long id", protocol.SyncDoc{Collection: "todos", ID: strings.Repeat("a", 129)}, CodeInvalidID},
		{"uppercase hash", protocol.SyncDoc{Collection: "todos", ID: "a", Have: []string{strings.ToUpper(hash)}}, CodeBadRequest},
		{"short hash", protocol.SyncDoc{Collection: "todos", ID: "a", Have: []string{"abcd"}}, CodeBadRequest},
		{"non-hex hash", protocol.SyncDoc{Collection: "todos", ID: "a", Have: []string{strings.Repeat("zz", 32)}}, CodeBadRequest},
		{"bad base64", protocol.SyncDoc{Collection: "todos", ID: "a", Changes: "!!!!"}, CodeBadRequest},
		{"unpadded base64", protocol.SyncDoc{Collection: "todos", ID: "a", Changes: "AAE"}, CodeBadRequest},
		{"url base64", protocol.SyncDoc{Collection: "todos", ID: "a", Changes: "-_-_"}, CodeBadRequest},
		{"non-canonical base64", protocol.SyncDoc{Collection: "todos", ID: "a", Changes: "AAF="}, CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reqs, err := parseSyncDocs([]protocol.SyncDoc{tt.doc})
			if tt.code == "" {
				if err != nil {
					t.Fatalf("parseSyncDocs: %v", err)
				}
				if got, want := reqs[0].Key.ID, tt.doc.ID; got != want {
					t.Fatalf("Key.ID=%q, want %q", got, want)
				}
				return
			}
			var ae *apiError
			if !errors.As(err, &ae) || ae.Code != tt.code {
				t.Fatalf("parseSyncDocs err=%v, want code %q", err, tt.code)
			}
		})
	}
}

func TestRequireJSON(t *testing.T) {
	tests := []struct {
		ct string
		ok bool
	}{
		{"", true},
		{"application/json", true},
		{"application/json; charset=utf-8", true},
		{"text/plain", false},
		{"application/x-www-form-urlencoded", false},
		{";;", false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodPost, "/v1/sync", nil)
		if tt.ct != "" {
			r.Header.Set("Content-Type", tt.ct)
		}
		if err := requireJSON(r); (err == nil) != tt.ok {
			t.Errorf("requireJSON(%q)=%v, want ok=%v", tt.ct, err, tt.ok)
		}
	}
}

func TestEtagMatches(t *testing.T) {
	tests := []struct {
		header string
		want   bool
	}{
		{``, false},
		{`"abc"`, true},
		{`W/"abc"`, true},
		{`"x", "abc"`, true},
		{`*`, true},
		{`"abd"`, false},
	}
	for _, tt := range tests {
		if got := etagMatches(tt.header, `"abc"`); got != tt.want {
			t.Errorf("etagMatches(%q)=%v, want %v", tt.header, got, tt.want)
		}
	}
}

func TestParseCollections(t *testing.T) {
	tests := []struct {
		q    string
		n    int
		code string
	}{
		{"todos", 1, ""},
		{"todos,notes,todos", 2, ""},
		{"", 0, CodeBadRequest},
		{"todos,", 0, CodeInvalidID},
		{"Todos", 0, CodeInvalidID},
		{strings.Repeat("a,", MaxEventCollections) + "a", 0, CodeBadRequest},
	}
	for _, tt := range tests {
		got, err := parseCollections(tt.q)
		if tt.code == "" {
			if err != nil || len(got) != tt.n {
				t.Errorf("parseCollections(%q)=(%v, %v), want %d collections", tt.q, got, err, tt.n)
			}
			continue
		}
		var ae *apiError
		if !errors.As(err, &ae) || ae.Code != tt.code {
			t.Errorf("parseCollections(%q) err=%v, want code %q", tt.q, err, tt.code)
		}
	}
}
