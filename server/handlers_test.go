package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/protocol"
	"github.com/dynamerge/dynamerge/store"
)

type fakeServer struct {
	srv *Server
	url string // where it serves, "http://127.0.0.1:<port>"
	eng *fakeEngine
	log *syncLog
}

func newFakeServer(tb testing.TB, opts Options) *fakeServer {
	tb.Helper()
	eng := newFakeEngine()
	logs := &syncLog{}
	if opts.Logger == nil {
		opts.Logger = logs.logger()
	}
	srv, err := newServer(opts, eng)
	if err != nil {
		tb.Fatalf("newServer: %v", err)
	}
	url := serve(tb, srv)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			tb.Errorf("Shutdown: %v", err)
		}
	})
	return &fakeServer{srv: srv, url: url, eng: eng, log: logs}
}

// TestHandlersFake runs every endpoint and error path of the HTTP layer
// against a fake engine, so it holds whatever state the engine is in.
func TestHandlersFake(t *testing.T) {
	fs := newFakeServer(t, Options{MaxBodyBytes: 4096, MaxDocsPerSync: 3, Authorizer: testAuthorizer})
	h := strings.Repeat("ab", 32)
	scenarios := []scenario{
		{name: "healthz", url: "/healthz", status: 200, contains: []string{`"ok"`}},
		{name: "readyz", url: "/readyz", status: 200},
		{name: "root page", url: "/", status: 200, contains: []string{"dynamerge", "/v1/sync"}},
		{name: "unknown asset", url: "/nope.js", status: 404, code: CodeNotFound},
		{name: "unknown api path", url: "/v1/nope", status: 404, code: CodeNotFound},
		{name: "wrong method", method: "DELETE", url: "/v1/sync", status: 405, code: CodeMethodNotAllowed},
		{name: "sync unauthorized", method: "POST", url: "/v1/sync", body: syncBody(docJSON("todos", "a", "")), status: 401, code: CodeUnauthorized},
		{name: "sync bad token", method: "POST", url: "/v1/sync", headers: map[string]string{"Authorization": "Bearer bad"}, body: syncBody(docJSON("todos", "a", "")), status: 401, code: CodeUnauthorized},
		{name: "sync empty", method: "POST", url: "/v1/sync", headers: authGood, body: syncBody(), status: 200, docCodes: []string{}},
		{name: "sync push", method: "POST", url: "/v1/sync", headers: authGood, body: syncBody(docJSON("todos", "a", "AAEC")), status: 200, docCodes: []string{""},
			contains: []string{`"heads":["`}},
		{name: "sync pull", method: "POST", url: "/v1/sync", headers: authGood, body: syncBody(docJSON("todos", "a", "")), status: 200, docCodes: []string{""},
			contains: []string{`"changes":"AAEC"`}},
		{name: "sync not json", method: "POST", url: "/v1/sync", headers: authGood, body: "nope", status: 400, code: CodeBadRequest},
		{name: "sync wrong shape", method: "POST", url: "/v1/sync", headers: authGood, body: `{"docs":"x"}`, status: 400, code: CodeBadRequest},
		{name: "sync text/plain", method: "POST", url: "/v1/sync", headers: map[string]string{"Authorization": "Bearer good", "Content-Type": "text/plain"}, body: syncBody(), status: 400, code: CodeBadRequest},
		{name: "sync bad base64", method: "POST", url: "/v1/sync", headers: authGood, body: syncBody(docJSON("todos", "a", "@@@@")), status: 400, code: CodeBadRequest},
		{name: "sync bad hash", method: "POST", url: "/v1/sync", headers: authGood, body: syncBody(docJSON("todos", "a", "", "XYZ")), status: 400, code: CodeBadRequest},
		{name: "sync invalid id", method: "POST", url: "/v1/sync", headers: authGood, body: syncBody(docJSON("todos", "b", "AAEC"), docJSON("todos", "no/slash", "")), status: 400, code: CodeInvalidID},
		{name: "sync invalid collection", method: "POST", url: "/v1/sync", headers: authGood, body: syncBody(docJSON("Todos", "b", "")), status: 400, code: CodeInvalidID},
		{name: "sync too many docs", method: "POST", url: "/v1/sync", headers: authGood, body: syncBody(docJSON("todos", "1", ""), docJSON("todos", "2", ""), docJSON("todos", "3", ""), docJSON("todos", "4", "")), status: 413, code: CodeTooLarge},
		{name: "sync body too large", method: "POST", url: "/v1/sync", headers: authGood, body: syncBody(docJSON("todos", "a", strings.Repeat("AAAA", 2000))), status: 413, code: CodeTooLarge},
		{name: "sync per-doc errors", method: "POST", url: "/v1/sync", headers: authGood,
			body:     syncBody(docJSON("todos", "invalid", "AAEC"), docJSON("todos", "deps", "AAEC"), docJSON("todos", "big", "AAEC")),
			status:   200,
			docCodes: []string{CodeInvalidChange, CodeMissingDeps, CodeTooLarge}},
		{name: "sync forbidden doc", method: "POST", url: "/v1/sync", headers: authGood, body: syncBody(docJSON("secret", "a", "AAEC"), docJSON("todos", "c", "AAEC")), status: 200, docCodes: []string{CodeForbidden, ""}},
		{name: "sync reader may pull", method: "POST", url: "/v1/sync", headers: map[string]string{"Authorization": "Bearer reader"}, body: syncBody(docJSON("todos", "a", ""), docJSON("todos", "a", "AAEC")), status: 200, docCodes: []string{"", CodeForbidden}},
		{name: "sync store down", method: "POST", url: "/v1/sync", headers: authGood, body: syncBody(docJSON("todos", "a", ""), docJSON("todos", "down", "AAEC")), status: 503, code: CodeUnavailable},
		{name: "sync internal", method: "POST", url: "/v1/sync", headers: authGood, body: syncBody(docJSON("todos", "boom", "AAEC")), status: 500, code: CodeInternal, excludes: []string{"secret"}},
		{name: "sync panic", method: "POST", url: "/v1/sync", headers: authGood, body: syncBody(docJSON("todos", "panic", "AAEC")), status: 500, code: CodeInternal, excludes: []string{"panics"}},
		{name: "healthz after panic", url: "/healthz", status: 200},
		{name: "doc", url: "/v1/collections/todos/docs/a", headers: authGood, status: 200, header: map[string]string{"ETag": "*"},
			contains: []string{`"collection":"todos"`, `"id":"a"`, `"doc":{"len":3}`}},
		{name: "doc time travel", url: "/v1/collections/todos/docs/a?heads=" + h, headers: authGood, status: 200, contains: []string{`"doc":{"at":"past"}`, h}},
		{name: "doc bad heads", url: "/v1/collections/todos/docs/a?heads=zz", headers: authGood, status: 400, code: CodeBadRequest},
		{name: "doc not found", url: "/v1/collections/todos/docs/never", headers: authGood, status: 404, code: CodeNotFound},
		{name: "doc invalid id", url: "/v1/collections/todos/docs/a.b", headers: authGood, status: 400, code: CodeInvalidID},
		{name: "doc unauthorized", url: "/v1/collections/todos/docs/a", status: 401, code: CodeUnauthorized},
		{name: "doc forbidden", url: "/v1/collections/secret/docs/a", headers: authGood, status: 403, code: CodeForbidden},
		{name: "feed", url: "/v1/collections/todos/feed", headers: authGood, status: 200, contains: []string{`"id":"a"`, `"more":false`}},
		{name: "feed bad limit", url: "/v1/collections/todos/feed?limit=0", headers: authGood, status: 400, code: CodeBadRequest},
		{name: "feed limit too big", url: "/v1/collections/todos/feed?limit=1001", headers: authGood, status: 400, code: CodeBadRequest},
		{name: "feed limit not a number", url: "/v1/collections/todos/feed?limit=ten", headers: authGood, status: 400, code: CodeBadRequest},
		{name: "feed bad cursor", url: "/v1/collections/todos/feed?after=zzz", headers: authGood, status: 400, code: CodeBadRequest},
		{name: "feed invalid collection", url: "/v1/collections/TODOS/feed", headers: authGood, status: 400, code: CodeInvalidID},
		{name: "feed forbidden", url: "/v1/collections/secret/feed", headers: authGood, status: 403, code: CodeForbidden},
		{name: "events no collections", url: "/v1/events", headers: authGood, status: 400, code: CodeBadRequest},
		{name: "events invalid collection", url: "/v1/events?collections=a,B", headers: authGood, status: 400, code: CodeInvalidID},
		{name: "events unauthorized", url: "/v1/events?collections=todos", status: 401, code: CodeUnauthorized},
		{name: "events forbidden", url: "/v1/events?collections=todos,secret", headers: authGood, status: 403, code: CodeForbidden},
		{name: "made-up method", method: "FROB", url: "/v1/sync", status: 405, code: CodeMethodNotAllowed},
		{name: "metrics", url: "/metrics", status: 200, excludes: []string{"FROB"}, contains: []string{
			`method="OTHER"`, `route="/v1/sync"`,
			"dynamerge_http_requests_total", "dynamerge_http_request_duration_seconds", "dynamerge_changes_merged_total 7",
			"dynamerge_cache_records 3", "dynamerge_store_writes_total 5", "dynamerge_sse_connections", "go_goroutines"}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { sc.run(t, fs.url) })
	}
	if logs := fs.log.String(); !strings.Contains(logs, "secret internal detail") || !strings.Contains(logs, "fake engine panics") {
		t.Errorf("internal errors not logged; logs:\n%s", logs)
	}
}

func TestDocETag(t *testing.T) {
	fs := newFakeServer(t, Options{})
	scenario{method: "POST", url: "/v1/sync", body: syncBody(docJSON("todos", "a", "AAEC")), status: 200}.run(t, fs.url)
	resp, err := http.Get(fs.url + "/v1/collections/todos/docs/a")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	scenario{url: "/v1/collections/todos/docs/a", headers: map[string]string{"If-None-Match": etag}, status: 304}.run(t, fs.url)
	scenario{url: "/v1/collections/todos/docs/a", headers: map[string]string{"If-None-Match": `"other"`}, status: 200}.run(t, fs.url)
	scenario{method: "POST", url: "/v1/sync", body: syncBody(docJSON("todos", "a", "AAEC")), status: 200}.run(t, fs.url)
	scenario{url: "/v1/collections/todos/docs/a", headers: map[string]string{"If-None-Match": etag}, status: 200}.run(t, fs.url)
}

func TestReadyzFailing(t *testing.T) {
	fs := newFakeServer(t, Options{})
	fs.eng.readyErr = errors.New("dial tcp: refused")
	scenario{url: "/readyz", status: 503, code: CodeUnavailable, excludes: []string{"refused"}}.run(t, fs.url)
}

func TestRequestIDEchoed(t *testing.T) {
	fs := newFakeServer(t, Options{})
	tests := []struct {
		in   string
		kept bool
	}{
		{"abc-123", true},
		{"bad id with spaces", false},
		{`"quoted"`, false},
		{strings.Repeat("a", 200), false},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"a forged=1", false},
		{"ünïcode", false},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodGet, fs.url+"/healthz", nil)
		req.Header.Set(HeaderRequestID, tt.in)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := resp.Header.Get(HeaderRequestID)
		if (got == tt.in) != tt.kept || got == "" {
			t.Errorf("request id %q answered %q, want kept=%v", tt.in, got, tt.kept)
		}
	}
}

func TestStaticAssets(t *testing.T) {
	assets := fstest.MapFS{
		"index.html":  {Data: []byte("<h1>demo app</h1>")},
		"app.js":      {Data: []byte("console.log(1)")},
		"sub/x.css":   {Data: []byte("body{}")},
		"empty/.keep": {Data: nil},
	}
	fs := newFakeServer(t, Options{Assets: assets})
	scenarios := []scenario{
		{name: "index", url: "/", status: 200, contains: []string{"demo app"}},
		{name: "js", url: "/app.js", status: 200, header: map[string]string{"Content-Type": "text/javascript; charset=utf-8"}},
		{name: "nested", url: "/sub/x.css", status: 200, contains: []string{"body{}"}},
		{name: "missing", url: "/missing.js", status: 404, code: CodeNotFound},
		{name: "no listing", url: "/empty/", status: 404},
		{name: "traversal", url: "/../../etc/passwd", status: 404},
		{name: "api stays json", url: "/v1/", status: 404, code: CodeNotFound},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { sc.run(t, fs.url) })
	}
}

// TestEventsFake subscribes through the Go client, pushes, and receives the
// event; then checks the stream ends on Shutdown.
func TestEventsFake(t *testing.T) {
	fs := newFakeServer(t, Options{PingInterval: 20 * time.Millisecond, Authorizer: testAuthorizer})
	c := client.New(fs.url)
	c.Token = "good"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events, err := c.Events(ctx, "todos")
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	if _, err := c.Sync(ctx, []client.Doc{{Collection: "notes", ID: "x", Changes: []byte{1}}, {Collection: "todos", ID: "e1", Changes: []byte{1, 2}}}); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	select {
	case ev := <-events:
		if ev.Collection != "todos" || ev.ID != "e1" || len(ev.Heads) != 1 {
			t.Fatalf("event=%+v, want todos/e1 with one head", ev)
		}
	case <-ctx.Done():
		t.Fatal("no event")
	}
	if err := fs.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for range events { // drains, then must close
	}
	if n := fs.eng.subscribers(); n != 0 {
		t.Fatalf("%d subscriptions left after the stream ended", n)
	}
}

// TestEventsPing reads the raw stream: it opens with a comment and pings
// while idle.
func TestEventsPing(t *testing.T) {
	fs := newFakeServer(t, Options{PingInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fs.url+"/v1/events?collections=todos", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if got, want := resp.Header.Get("Content-Type"), "text/event-stream"; got != want {
		t.Fatalf("Content-Type=%q, want %q", got, want)
	}
	var got strings.Builder
	buf := make([]byte, 256)
	for !strings.Contains(got.String(), ": ping\n\n") {
		n, err := resp.Body.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("read: %v (got %q)", err, got.String())
		}
	}
	if !strings.HasPrefix(got.String(), ": subscribed\n\n") {
		t.Fatalf("stream starts %q", got.String())
	}
}

// TestShutdownInFlight checks that Shutdown waits for a sync in flight,
// which still gets its 200, and that the listener stops accepting.
func TestShutdownInFlight(t *testing.T) {
	eng := newFakeEngine()
	eng.block = make(chan struct{})
	eng.started = make(chan struct{}, 1)
	srv, err := newServer(Options{Logger: (&syncLog{}).logger()}, eng)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	base := "http://" + l.Addr().String()

	type answer struct {
		status int
		body   string
		err    error
	}
	answers := make(chan answer, 1)
	go func() {
		resp, err := http.Post(base+"/v1/sync", "application/json", strings.NewReader(syncBody(docJSON("todos", "a", "AAEC"))))
		if err != nil {
			answers <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answers <- answer{status: resp.StatusCode, body: string(b)}
	}()
	<-eng.started

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- srv.Shutdown(ctx)
	}()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(eng.block)
	a := <-answers
	if a.err != nil || a.status != 200 {
		t.Fatalf("in-flight sync: status %d, err %v, body %s", a.status, a.err, a.body)
	}
	var sr protocol.SyncResponse
	if err := json.Unmarshal([]byte(a.body), &sr); err != nil || len(sr.Docs) != 1 || len(sr.Docs[0].Heads) != 1 {
		t.Fatalf("in-flight sync answer %s (%v)", a.body, err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("server still accepts after Shutdown")
	}
	if got := eng.records[store.Key{Collection: "todos", ID: "a"}]; len(got) != 3 {
		t.Fatalf("record holds %d bytes, want 3", len(got))
	}
}

// TestShutdownRefusesNew: through Handler (no Serve), a request after
// Shutdown gets 503 unavailable.
func TestShutdownRefusesNew(t *testing.T) {
	srv, err := newServer(Options{Logger: (&syncLog{}).logger()}, newFakeEngine())
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	scenario{url: "/healthz", status: 503, code: CodeUnavailable}.run(t, hs.URL)
}

func TestNewRequiresEngine(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without an engine succeeded")
	}
}

// TestEventsOutliveReadTimeout: an SSE stream on a real listener keeps
// delivering after the server's ReadTimeout has passed.
func TestEventsOutliveReadTimeout(t *testing.T) {
	eng := newFakeEngine()
	srv, err := newServer(Options{Logger: (&syncLog{}).logger(), PingInterval: time.Hour, BodyTimeout: 50 * time.Millisecond}, eng)
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, srv)
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	c := client.New(url)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events, err := c.Events(ctx, "todos")
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := c.Sync(ctx, []client.Doc{{Collection: "todos", ID: "late", Changes: []byte{1}}}); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	select {
	case ev, ok := <-events:
		if !ok || ev.ID != "late" {
			t.Fatalf("event %+v (open %v), want todos/late", ev, ok)
		}
	case <-ctx.Done():
		t.Fatal("no event after the read timeout")
	}
}

// TestHead: health checks that probe with HEAD get 200 and no body on
// /healthz, /readyz and the app at "/" (issue 18, item 7).
func TestHead(t *testing.T) {
	fs := newFakeServer(t, Options{})
	for _, path := range []string{"/healthz", "/readyz", "/"} {
		st, _, body := httpCall(t, http.MethodHead, fs.url+path, "", "")
		if st != http.StatusOK || len(body) != 0 {
			t.Errorf("HEAD %s: %d with %d body bytes, want 200 and none", path, st, len(body))
		}
	}
}

// TestLongPathLogged: a long URL is cut in the access log, so a client
// cannot write log lines of its own size (issue 18, item 7).
func TestLongPathLogged(t *testing.T) {
	fs := newFakeServer(t, Options{})
	long := "/" + strings.Repeat("a", 32<<10)
	if st, _, _ := httpCall(t, "GET", fs.url+long, "", ""); st != http.StatusNotFound {
		t.Fatalf("GET of a long path: %d, want 404", st)
	}
	for _, line := range strings.Split(fs.log.String(), "\n") {
		if len(line) > 2*maxLoggedPath+1024 {
			t.Fatalf("log line of %d bytes: %.200s…", len(line), line)
		}
	}
	if !strings.Contains(fs.log.String(), strings.Repeat("a", maxLoggedPath-1)+"…") {
		t.Fatalf("no cut path in the log:\n%.2000s", fs.log.String())
	}
}

// TestAPINotStored: every /v1 answer, errors and event streams included,
// carries Cache-Control: private, no-store (issue 18, item 8: the feed and
// sync carried none); the app's assets keep their own policy.
func TestAPINotStored(t *testing.T) {
	fs := newFakeServer(t, Options{Authorizer: testAuthorizer, PingInterval: time.Hour})
	for _, tc := range []struct{ method, path, tok, body string }{
		{"POST", "/v1/sync", "good", syncBody(docJSON("todos", "a", ""))},
		{"GET", "/v1/collections/todos/feed", "good", ""},
		{"GET", "/v1/collections/todos/docs/nope", "good", ""},
		{"GET", "/v1/collections/todos/feed", "", ""},
		{"GET", "/v1/nope", "good", ""},
		{"GET", "/v1/events?collections=todos", "good", ""},
	} {
		_, hdr, _ := httpCall(t, tc.method, fs.url+tc.path, tc.tok, tc.body)
		if got, want := hdr.Get("Cache-Control"), "private, no-store"; got != want {
			t.Errorf("%s %s: Cache-Control %q, want %q", tc.method, tc.path, got, want)
		}
	}
	if _, hdr, _ := httpCall(t, "GET", fs.url+"/healthz", "", ""); hdr.Get("Cache-Control") == "private, no-store" {
		t.Error("/healthz marked private")
	}
}

// TestMetricsToken: with Options.MetricsToken, /metrics answers 401 without
// it (issue 18, item 8: it was public); without the option it stays open.
func TestMetricsToken(t *testing.T) {
	open := newFakeServer(t, Options{})
	if st, _, _ := httpCall(t, "GET", open.url+"/metrics", "", ""); st != http.StatusOK {
		t.Fatalf("/metrics without MetricsToken: %d", st)
	}
	fs := newFakeServer(t, Options{MetricsToken: "metrics-secret-0123456789"})
	for _, tok := range []string{"", "wrong", "metrics-secret-012345678"} {
		st, hdr, body := httpCall(t, "GET", fs.url+"/metrics", tok, "")
		checkUnauthorized(t, "metrics token "+tok, st, hdr, body)
	}
	st, _, body := httpCall(t, "GET", fs.url+"/metrics", "metrics-secret-0123456789", "")
	if st != http.StatusOK || !strings.Contains(string(body), "dynamerge_http_requests_total") {
		t.Fatalf("/metrics with the token: %d %.200s", st, body)
	}
}
