package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/protocol"
)

// scenario is one HTTP exchange of a table test: what is sent and what must
// come back.
type scenario struct {
	name    string
	method  string
	url     string
	headers map[string]string
	body    string

	status   int
	code     string            // whole-request error code, "" when none
	docCodes []string          // per-doc error codes of a sync answer, "" for none
	header   map[string]string // expected response headers ("*" = present)
	contains []string          // substrings of the body
	excludes []string          // substrings the body must not hold
	check    func(tb testing.TB, body []byte)
}

// run sends the scenario to base and checks the answer.
func (sc scenario) run(tb testing.TB, base string) {
	tb.Helper()
	method := sc.method
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequest(method, base+sc.url, strings.NewReader(sc.body))
	if err != nil {
		tb.Fatalf("NewRequest: %v", err)
	}
	if sc.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range sc.headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, sc.url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("read body: %v", err)
	}
	if got, want := resp.StatusCode, sc.status; got != want {
		tb.Fatalf("%s %s: status=%d, want %d; body=%s", method, sc.url, got, want, body)
	}
	if got, want := resp.Header.Get("X-Content-Type-Options"), "nosniff"; got != want {
		tb.Errorf("X-Content-Type-Options=%q, want %q", got, want)
	}
	if resp.Header.Get(HeaderRequestID) == "" {
		tb.Errorf("no %s header", HeaderRequestID)
	}
	if sc.code != "" {
		var eb protocol.ErrorBody
		if err := json.Unmarshal(body, &eb); err != nil {
			tb.Fatalf("error body %q: %v", body, err)
		}
		if got, want := eb.Error.Code, sc.code; got != want {
			tb.Fatalf("code=%q, want %q; body=%s", got, want, body)
		}
		if eb.Error.Message == "" {
			tb.Errorf("error without message: %s", body)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			tb.Errorf("error Content-Type=%q, want application/json", ct)
		}
		if (sc.status == 503 || sc.status == 429) && resp.Header.Get("Retry-After") == "" {
			tb.Errorf("%d without Retry-After", sc.status)
		}
	}
	if sc.docCodes != nil {
		var sr protocol.SyncResponse
		if err := json.Unmarshal(body, &sr); err != nil {
			tb.Fatalf("sync body %q: %v", body, err)
		}
		if got, want := len(sr.Docs), len(sc.docCodes); got != want {
			tb.Fatalf("len(docs)=%d, want %d; body=%s", got, want, body)
		}
		for i, d := range sr.Docs {
			code := ""
			if d.Error != nil {
				code = d.Error.Code
			}
			if code != sc.docCodes[i] {
				tb.Errorf("docs[%d].error.code=%q, want %q; body=%s", i, code, sc.docCodes[i], body)
			}
			if d.Heads == nil {
				tb.Errorf("docs[%d] without heads: %s", i, body)
			}
		}
	}
	for k, v := range sc.header {
		got := resp.Header.Get(k)
		if v == "*" && got == "" || v != "*" && got != v {
			tb.Errorf("header %s=%q, want %q", k, got, v)
		}
	}
	for _, s := range sc.contains {
		if !strings.Contains(string(body), s) {
			tb.Errorf("body lacks %q: %s", s, body)
		}
	}
	for _, s := range sc.excludes {
		if strings.Contains(string(body), s) {
			tb.Errorf("body holds %q: %s", s, body)
		}
	}
	if sc.check != nil {
		sc.check(tb, body)
	}
}

// testAuthorizer accepts "Bearer good" for everything, "Bearer reader" for
// reads only, refuses the collection "secret" to all, and answers 401
// without a known token.
var testAuthorizer = AuthorizerFunc(func(r *http.Request, collection string, write bool) error {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if tok == "" {
		tok = r.URL.Query().Get("access_token")
	}
	switch {
	case tok != "good" && tok != "reader":
		return ErrUnauthorized
	case collection == "secret":
		return fmt.Errorf("collection %s: %w", collection, ErrForbidden)
	case write && tok == "reader":
		return ErrForbidden
	}
	return nil
})

var authGood = map[string]string{"Authorization": "Bearer good"}

// syncLog is a slog handler target that tests can read: access logs and
// internal errors land here instead of the test output.
type syncLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *syncLog) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func syncBody(docs ...string) string { return `{"docs":[` + strings.Join(docs, ",") + `]}` }

func docJSON(collection, id, changes string, have ...string) string {
	m := map[string]any{"collection": collection, "id": id}
	if changes != "" {
		m["changes"] = changes
	}
	if have != nil {
		m["have"] = have
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// honestSyncs runs one honest client per user until ctx is done, each
// pushing edits of its own record notes-<user>/doc with a token of the test
// HS256 key, and returns the syncs made and the slowest one. Any failed
// sync fails tb.
func honestSyncs(ctx context.Context, tb testing.TB, base string, users ...string) (syncs int64, slowest time.Duration) {
	tb.Helper()
	var n, worst atomic.Int64
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client.New(base)
			c.Token = signHS(tb, claimsFor(u, map[string]any{"notes-{sub}": "rw"}))
			hist := newHistory()
			for i := 0; ctx.Err() == nil; i++ {
				ch := hist.edit(tb, "n", i)
				sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				start := time.Now()
				res, err := c.Sync(sctx, []client.Doc{{Collection: "notes-" + u, ID: "doc", Changes: ch}})
				d := time.Since(start)
				cancel()
				if err != nil || res[0].Err != nil {
					tb.Errorf("honest %s sync %d: %v %v", u, i, err, res)
					return
				}
				n.Add(1)
				if int64(d) > worst.Load() {
					worst.Store(int64(d))
				}
			}
		}()
	}
	wg.Wait()
	return n.Load(), time.Duration(worst.Load())
}

// serve runs srv.Serve on a loopback port, as the binary does, so that
// tests go through the HTTP policy that ships (timeouts, header size,
// connection cap), and returns its base URL. The caller shuts srv down.
func serve(tb testing.TB, srv *Server) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go func() {
		if err := srv.Serve(l); err != nil {
			tb.Errorf("Serve: %v", err)
		}
	}()
	return "http://" + l.Addr().String()
}
