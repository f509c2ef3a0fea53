package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/protocol"
)

// httpCall sends one request and returns status, headers and body.
func httpCall(tb testing.TB, method, u, token, body string, hdr ...string) (int, http.Header, []byte) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, u, err)
	}
	defer res.Body.Close()
	if strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		// A stream: read its first comment only.
		line, _ := bufio.NewReader(res.Body).ReadString('\n')
		return res.StatusCode, res.Header, []byte(line)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return res.StatusCode, res.Header, b
}

func errCode(body []byte) string {
	var eb protocol.ErrorBody
	_ = json.Unmarshal(body, &eb)
	return eb.Error.Code
}

// policy is the collections claim of every user in the matrix.
var matrixPolicy = map[string]any{
	"notes-{sub}": "rw",
	"public":      "r",
	"team-*":      "r",
	"shared":      "rw",
}

// matrixAllows is what matrixPolicy means, written out independently.
func matrixAllows(user, collection string, write bool) bool {
	switch {
	case collection == "notes-"+user, collection == "shared":
		return true
	case collection == "public", strings.HasPrefix(collection, "team-"):
		return !write
	}
	return false
}

// TestAccessMatrix: users × collections × operations (push, pull, JSON
// view, feed, events), with HS256 tokens and with RS256/ES256 tokens from a
// JWKS file, on reused and guessed record ids. Every answer must match the
// policy; refused answers must carry nothing of the record; afterwards each
// record holds exactly the writes the policy allowed.
func TestAccessMatrix(t *testing.T) {
	k := sharedKeys()
	for _, mode := range []struct {
		name string
		sign func(tb testing.TB, c jwt.MapClaims) string
	}{
		{"HS256", signHS},
		{"RS256-JWKS-file", func(tb testing.TB, c jwt.MapClaims) string { return signRS(tb, "rsa-1", k.rsa, c) }},
		{"ES256-JWKS-file", func(tb testing.TB, c jwt.MapClaims) string { return signES(tb, "ec-1", c) }},
	} {
		t.Run(mode.name, func(t *testing.T) {
			rs := newRealServer(t, Options{Authorizer: newTestAuth(t), PingInterval: time.Hour}, engine.Options{})
			base := rs.url
			users := []string{"alice", "bob", "carol"}
			tokens := map[string]string{}
			for _, u := range users {
				tokens[u] = mode.sign(t, claimsFor(u, matrixPolicy))
			}
			admin := mode.sign(t, claimsFor("admin", map[string]any{"*": "rw"}))
			collections := []string{"notes-alice", "notes-bob", "notes-carol", "public", "team-x", "shared", "admin-only"}
			const reused = "rec-1"                                 // every collection holds it
			const guessed = "00000000-0000-4000-8000-000000000001" // nobody wrote it

			// The admin seeds every collection with a secret marker.
			for _, col := range collections {
				h := newHistory()
				marker := "secret-of-" + col
				st, _, body := httpCall(t, "POST", base+"/v1/sync", admin, syncBody(docJSON(col, reused, b64(h.edit(t, "marker", marker)))))
				if st != 200 || strings.Contains(string(body), `"error"`) {
					t.Fatalf("seed %s: %d %s", col, st, body)
				}
			}

			violations, checks := 0, 0
			fail := func(format string, args ...any) {
				violations++
				t.Errorf(format, args...)
			}
			for _, u := range users {
				tok := tokens[u]
				for _, col := range collections {
					canRead, canWrite := matrixAllows(u, col, false), matrixAllows(u, col, true)
					marker := "secret-of-" + col
					for _, id := range []string{reused, guessed} {
						// push
						checks++
						h := newHistory()
						st, _, body := httpCall(t, "POST", base+"/v1/sync", tok, syncBody(docJSON(col, id, b64(h.edit(t, "by_"+u, 1)))))
						var sr protocol.SyncResponse
						_ = json.Unmarshal(body, &sr)
						if st != 200 || len(sr.Docs) != 1 {
							fail("%s push %s/%s: %d %s", u, col, id, st, body)
							continue
						}
						d := sr.Docs[0]
						switch {
						case canWrite && d.Error != nil:
							fail("%s push %s/%s refused: %s", u, col, id, body)
						case !canWrite && (d.Error == nil || d.Error.Code != CodeForbidden):
							fail("%s push %s/%s not forbidden: %s", u, col, id, body)
						case !canWrite && (d.Changes != "" || len(d.Heads) != 0):
							fail("%s push %s/%s refused but leaks state: %s", u, col, id, body)
						}
						// pull
						checks++
						st, _, body = httpCall(t, "POST", base+"/v1/sync", tok, syncBody(docJSON(col, id, "")))
						sr = protocol.SyncResponse{}
						_ = json.Unmarshal(body, &sr)
						if st != 200 || len(sr.Docs) != 1 {
							fail("%s pull %s/%s: %d %s", u, col, id, st, body)
							continue
						}
						d = sr.Docs[0]
						switch {
						case canRead && d.Error != nil:
							fail("%s pull %s/%s refused: %s", u, col, id, body)
						case canRead && id == reused && d.Changes == "":
							fail("%s pull %s/%s got nothing: %s", u, col, id, body)
						case !canRead && (d.Error == nil || d.Error.Code != CodeForbidden || d.Changes != "" || len(d.Heads) != 0):
							fail("%s pull %s/%s not forbidden or leaks: %s", u, col, id, body)
						}
						// JSON view
						checks++
						st, _, body = httpCall(t, "GET", base+"/v1/collections/"+col+"/docs/"+id, tok, "")
						switch {
						case canRead && id == reused && (st != 200 || !strings.Contains(string(body), marker)):
							fail("%s json %s/%s: %d %s", u, col, id, st, body)
						case canRead && id == guessed && st != 200 && st != 404:
							fail("%s json %s/%s: %d %s", u, col, id, st, body)
						case !canRead && (st != 403 || errCode(body) != CodeForbidden || strings.Contains(string(body), marker)):
							// 403 whether the record exists or not: no
							// existence oracle for guessed ids.
							fail("%s json %s/%s: %d %s", u, col, id, st, body)
						}
					}
					// feed
					checks++
					st, _, body := httpCall(t, "GET", base+"/v1/collections/"+col+"/feed", tok, "")
					switch {
					case canRead && (st != 200 || !strings.Contains(string(body), reused)):
						fail("%s feed %s: %d %s", u, col, st, body)
					case !canRead && (st != 403 || strings.Contains(string(body), reused)):
						fail("%s feed %s: %d %s", u, col, st, body)
					}
					// events, with the token in the query as EventSource sends it
					checks++
					st, _, body = httpCall(t, "GET", base+"/v1/events?collections="+col+"&access_token="+url.QueryEscape(tok), "", "")
					switch {
					case canRead && (st != 200 || !strings.HasPrefix(string(body), ": subscribed")):
						fail("%s events %s: %d %s", u, col, st, body)
					case !canRead && st != 403:
						fail("%s events %s: %d %s", u, col, st, body)
					}
					// events with a forbidden collection among allowed ones:
					// the whole subscription is refused.
					if !canRead {
						checks++
						st, _, body = httpCall(t, "GET", base+"/v1/events?collections=shared,"+col, tok, "")
						if st != 403 {
							fail("%s events shared+%s: %d %s", u, col, st, body)
						}
					}
				}
			}

			// Exactly the allowed writes landed, on both ids.
			for _, col := range collections {
				for _, id := range []string{reused, guessed} {
					st, _, body := httpCall(t, "GET", base+"/v1/collections/"+col+"/docs/"+id, admin, "")
					var dr struct {
						Doc map[string]any `json:"doc"`
					}
					_ = json.Unmarshal(body, &dr)
					if st != 200 && st != 404 {
						t.Fatalf("admin json %s/%s: %d %s", col, id, st, body)
					}
					for _, u := range users {
						checks++
						_, wrote := dr.Doc["by_"+u]
						if wrote != matrixAllows(u, col, true) {
							fail("%s/%s: write by %s present=%v, policy says %v", col, id, u, wrote, matrixAllows(u, col, true))
						}
					}
				}
			}
			t.Logf("%s: %d checks, %d violations (cross-tenant reads or writes, wrong answers)", mode.name, checks, violations)
		})
	}
}

// TestBadTokens: every bad-token case answers 401 on every endpoint, even an
// empty sync, with WWW-Authenticate, and nothing is stored.
func TestBadTokens(t *testing.T) {
	rs := newRealServer(t, Options{Authorizer: newTestAuth(t)}, engine.Options{})
	base := rs.url
	admin := signHS(t, claimsFor("admin", map[string]any{"*": "rw"}))
	h := newHistory()
	push := syncBody(docJSON("todos", "t1", b64(h.edit(t, "x", 1))))
	type call struct{ name, method, path, body string }
	calls := []call{
		{"sync push", "POST", "/v1/sync", push},
		{"sync empty", "POST", "/v1/sync", `{"docs":[]}`},
		{"sync garbage body", "POST", "/v1/sync", `{{{`},
		{"json view", "GET", "/v1/collections/todos/docs/t1", ""},
		{"feed", "GET", "/v1/collections/todos/feed", ""},
		{"events", "GET", "/v1/events?collections=todos", ""},
	}
	n := 0
	for name, tok := range badTokens(t) {
		for _, c := range calls {
			for _, inQuery := range []bool{false, true} {
				if inQuery && !strings.HasPrefix(c.path, "/v1/events") {
					continue
				}
				u, hdrTok := base+c.path, tok
				if inQuery {
					u += "&access_token=" + url.QueryEscape(tok)
					hdrTok = ""
				}
				if name == "empty bearer" && !inQuery {
					st, hdr, body := httpCall(t, c.method, u, "", c.body, "Authorization", "Bearer ")
					checkUnauthorized(t, name+"/"+c.name, st, hdr, body)
					n++
					continue
				}
				st, hdr, body := httpCall(t, c.method, u, hdrTok, c.body)
				checkUnauthorized(t, fmt.Sprintf("%s/%s/query=%v", name, c.name, inQuery), st, hdr, body)
				n++
			}
		}
	}
	// Other schemes and a token in the query outside /v1/events.
	for _, c := range []struct {
		name string
		u    string
		hdr  []string
	}{
		{"basic auth", "/v1/collections/todos/feed", []string{"Authorization", "Basic YWxpY2U6c2VjcmV0"}},
		{"no credentials", "/v1/collections/todos/feed", nil},
		{"token in query of feed", "/v1/collections/todos/feed?access_token=" + admin, nil},
	} {
		st, hdr, body := httpCall(t, "GET", base+c.u, "", "", c.hdr...)
		checkUnauthorized(t, c.name, st, hdr, body)
		n++
	}
	st, _, body := httpCall(t, "GET", base+"/v1/collections/todos/docs/t1", admin, "")
	if st != 404 {
		t.Fatalf("a refused push was stored: %d %s", st, body)
	}
	t.Logf("%d bad-token requests, all 401", n)
}

func checkUnauthorized(tb testing.TB, name string, st int, hdr http.Header, body []byte) {
	tb.Helper()
	if st != 401 || errCode(body) != CodeUnauthorized {
		tb.Errorf("%s: %d %s, want 401 unauthorized", name, st, body)
	}
	if !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
		tb.Errorf("%s: WWW-Authenticate %q", name, hdr.Get("WWW-Authenticate"))
	}
	if hdr.Get("X-Content-Type-Options") != "nosniff" || hdr.Get("Content-Security-Policy") == "" {
		tb.Errorf("%s: security headers missing: %v", name, hdr)
	}
}
