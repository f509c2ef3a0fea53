package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/internal/amgo"
	"github.com/dynamerge/dynamerge/protocol"
	"github.com/dynamerge/dynamerge/store"
	"github.com/dynamerge/dynamerge/store/bolt"
)

// flakyStore wraps a store; while failing is set every call that touches
// records fails with store.ErrUnavailable.
type flakyStore struct {
	store.Store
	failing atomic.Bool
	// diskFull fails appends only, as a full disk does: reads and pings
	// still work.
	diskFull atomic.Bool
}

func (s *flakyStore) err(op string) error {
	if s.failing.Load() {
		return fmt.Errorf("flaky %s: %w", op, store.ErrUnavailable)
	}
	return nil
}

func (s *flakyStore) Load(ctx context.Context, key store.Key) (*store.Record, error) {
	if err := s.err("load"); err != nil {
		return nil, err
	}
	return s.Store.Load(ctx, key)
}

func (s *flakyStore) ReadLog(ctx context.Context, key store.Key, after uint64) ([]store.Entry, error) {
	if err := s.err("readlog"); err != nil {
		return nil, err
	}
	return s.Store.ReadLog(ctx, key, after)
}

func (s *flakyStore) Append(ctx context.Context, key store.Key, e store.Entry, meta store.AppendMeta) error {
	if err := s.err("append"); err != nil {
		return err
	}
	if s.diskFull.Load() {
		return fmt.Errorf("flaky append: %w", syscall.ENOSPC)
	}
	return s.Store.Append(ctx, key, e, meta)
}

func (s *flakyStore) Ping(ctx context.Context) error {
	if err := s.err("ping"); err != nil {
		return err
	}
	return s.Store.Ping(ctx)
}

// realServer is the whole stack: bolt store on a temp dir, engine, worker
// pool, HTTP server.
type realServer struct {
	srv   *Server
	url   string // where it serves
	eng   *engine.Engine
	store *flakyStore
	log   *syncLog
}

func newRealServer(tb testing.TB, opts Options, eopts engine.Options) *realServer {
	tb.Helper()
	bs, err := bolt.Open(filepath.Join(tb.TempDir(), "dynamerge.db"), nil)
	if err != nil {
		tb.Fatalf("bolt.Open: %v", err)
	}
	fs := &flakyStore{Store: bs}
	logs := &syncLog{}
	eopts.Store = fs
	eopts.Logger = logs.logger()
	eng, err := engine.Open(eopts)
	if err != nil {
		bs.Close()
		tb.Fatalf("engine.Open: %v", err)
	}
	opts.Engine = eng
	opts.Logger = logs.logger()
	srv, err := New(opts)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	url := serve(tb, srv)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			tb.Errorf("Shutdown: %v", err)
		}
		if err := eng.Close(ctx); err != nil {
			tb.Errorf("engine Close: %v", err)
		}
		if err := bs.Close(); err != nil {
			tb.Errorf("store Close: %v", err)
		}
	})
	return &realServer{srv: srv, url: url, eng: eng, store: fs, log: logs}
}

// headsOf reads a record's heads through GET, "" joined, or "not_found".
func headsOf(tb testing.TB, base, collection, id string) string {
	tb.Helper()
	c := client.New(base)
	c.Token = "good"
	rec, err := c.Get(context.Background(), collection, id)
	if client.IsCode(err, client.CodeNotFound) {
		return "not_found"
	}
	if err != nil {
		tb.Fatalf("Get %s/%s: %v", collection, id, err)
	}
	return strings.Join(rec.Heads, ",")
}

// history makes real Automerge changes with automerge-go.
type history struct {
	doc *automerge.Doc
}

func newHistory() *history { return &history{doc: automerge.New()} }

// edit sets key to val, commits, and returns the change chunk.
func (h *history) edit(tb testing.TB, key string, val any) []byte {
	tb.Helper()
	_, c := amgo.Edit(tb, h.doc, key, val)
	return c
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// flipWithChecksum flips one body byte of a single change chunk and fixes
// its checksum, the way an attacker crafts input that passes the framing
// checks. It returns the first such mutation that crdt.Split refuses, so the
// test does not depend on where the fields of this change lie.
func flipWithChecksum(tb testing.TB, chunk []byte) []byte {
	tb.Helper()
	length, n := binary.Uvarint(chunk[9:])
	bodyStart := 9 + n
	if n <= 0 || bodyStart+int(length) != len(chunk) {
		tb.Fatalf("not a single chunk: %d bytes, header says %d", len(chunk), length)
	}
	for pos := bodyStart; pos < len(chunk); pos++ {
		for _, x := range []byte{0xff, 0x80, 0x01} {
			m := slices.Clone(chunk)
			m[pos] ^= x
			sum := sha256.Sum256(m[8:])
			copy(m[4:8], sum[:4])
			if _, err := crdt.Split(m); errors.Is(err, crdt.ErrInvalidChange) {
				return m
			}
		}
	}
	tb.Fatal("no single-byte flip is refused by crdt.Split")
	return nil
}

// TestScenariosReal runs every endpoint and error code of PROTOCOL.md
// against the real stack, and checks after every refused request that the
// record it aimed at is unchanged.
func TestScenariosReal(t *testing.T) {
	rs := newRealServer(t,
		Options{MaxBodyBytes: 64 << 10, MaxDocsPerSync: 10, Authorizer: testAuthorizer},
		engine.Options{MaxChangeBytes: 16 << 10})
	base := rs.url

	h := newHistory()
	c1 := h.edit(t, "title", "first")
	scenario{method: "POST", url: "/v1/sync", headers: authGood, body: syncBody(docJSON("todos", "base", b64(c1))), status: 200, docCodes: []string{""}}.run(t, base)
	heads0 := headsOf(t, base, "todos", "base")
	if heads0 == "not_found" || heads0 == "" {
		t.Fatalf("base record not stored: heads %q", heads0)
	}
	c2 := h.edit(t, "title", "second") // valid, never pushed until the end
	c3 := h.edit(t, "done", true)      // depends on c2
	big := newHistory()                // an independent, over-limit change
	bigChange := big.edit(t, "blob", strings.Repeat("x", 32<<10))
	poisonless := flipWithChecksum(t, c2)
	valid := docJSON("todos", "base", b64(c2))

	unchanged := func(tb testing.TB, _ []byte) {
		tb.Helper()
		if got := headsOf(tb, base, "todos", "base"); got != heads0 {
			tb.Fatalf("record changed by a refused request: heads %s, want %s", got, heads0)
		}
	}
	scenarios := []scenario{
		// Whole-request errors: nothing of any doc is stored.
		{name: "not json", method: "POST", url: "/v1/sync", headers: authGood, body: "{docs", status: 400, code: CodeBadRequest, check: unchanged},
		{name: "wrong shape", method: "POST", url: "/v1/sync", headers: authGood, body: `{"docs":[{"collection":"todos","id":"base","changes":["x"]}]}`, status: 400, code: CodeBadRequest, check: unchanged},
		{name: "bad base64", method: "POST", url: "/v1/sync", headers: authGood, body: syncBody(valid, docJSON("todos", "other", "not base64!")), status: 400, code: CodeBadRequest, check: unchanged},
		{name: "bad hash", method: "POST", url: "/v1/sync", headers: authGood, body: syncBody(valid, docJSON("todos", "other", "", strings.Repeat("G", 64))), status: 400, code: CodeBadRequest, check: unchanged},
		{name: "invalid id", method: "POST", url: "/v1/sync", headers: authGood, body: syncBody(valid, docJSON("todos", "bad id", "")), status: 400, code: CodeInvalidID, check: unchanged},
		{name: "body too large", method: "POST", url: "/v1/sync", headers: authGood, body: syncBody(valid, docJSON("todos", "other", b64(make([]byte, 64<<10)))), status: 413, code: CodeTooLarge, check: unchanged},
		{name: "too many docs", method: "POST", url: "/v1/sync", headers: authGood, body: syncBody(slices.Repeat([]string{valid}, 11)...), status: 413, code: CodeTooLarge, check: unchanged},
		{name: "unauthorized", method: "POST", url: "/v1/sync", body: syncBody(valid), status: 401, code: CodeUnauthorized, check: unchanged},
		// Per-doc errors: the entry says why, the record is untouched.
		{name: "garbage", method: "POST", url: "/v1/sync", headers: authGood, body: syncBody(docJSON("todos", "base", b64([]byte("hello, automerge")))), status: 200, docCodes: []string{CodeInvalidChange}, check: unchanged},
		{name: "truncated", method: "POST", url: "/v1/sync", headers: authGood, body: syncBody(docJSON("todos", "base", b64(c2[:len(c2)-3]))), status: 200, docCodes: []string{CodeInvalidChange}, check: unchanged},
		{name: "trailing bytes", method: "POST", url: "/v1/sync", headers: authGood, body: syncBody(docJSON("todos", "base", b64(append(slices.Clone(c2), 0, 1, 2)))), status: 200, docCodes: []string{CodeInvalidChange}, check: unchanged},
		{name: "flipped byte, fixed checksum", method: "POST", url: "/v1/sync", headers: authGood, body: syncBody(docJSON("todos", "base", b64(poisonless))), status: 200, docCodes: []string{CodeInvalidChange}, check: unchanged},
		{name: "missing deps", method: "POST", url: "/v1/sync", headers: authGood, body: syncBody(docJSON("todos", "base", b64(c3))), status: 200, docCodes: []string{CodeMissingDeps},
			check: func(tb testing.TB, body []byte) {
				var sr protocol.SyncResponse
				if err := json.Unmarshal(body, &sr); err != nil {
					tb.Fatal(err)
				}
				if got := strings.Join(sr.Docs[0].Heads, ","); got != heads0 {
					tb.Errorf("missing_deps entry heads %s, want the server's %s", got, heads0)
				}
				unchanged(tb, body)
			}},
		{name: "change too large", method: "POST", url: "/v1/sync", headers: authGood, body: syncBody(docJSON("todos", "base", b64(bigChange))), status: 200, docCodes: []string{CodeTooLarge}, check: unchanged},
		{name: "forbidden doc", method: "POST", url: "/v1/sync", headers: authGood, body: syncBody(docJSON("secret", "base", b64(c2))), status: 200, docCodes: []string{CodeForbidden},
			check: func(tb testing.TB, _ []byte) {
				_, at, err := rs.eng.JSON(context.Background(), store.Key{Collection: "secret", ID: "base"}, nil)
				if !errors.Is(err, engine.ErrNotFound) {
					tb.Fatalf("forbidden doc stored: heads %v, err %v", at, err)
				}
			}},
		{name: "read forbidden", url: "/v1/collections/secret/docs/base", headers: authGood, status: 403, code: CodeForbidden},
		{name: "not found", url: "/v1/collections/todos/docs/never", headers: authGood, status: 404, code: CodeNotFound},
		{name: "get invalid id", url: "/v1/collections/todos/docs/" + strings.Repeat("x", 129), headers: authGood, status: 400, code: CodeInvalidID},
		{name: "get", url: "/v1/collections/todos/docs/base", headers: authGood, status: 200, header: map[string]string{"ETag": "*"}, contains: []string{`"doc":{"title":"first"}`}},
		{name: "pull", method: "POST", url: "/v1/sync", headers: authGood, body: syncBody(docJSON("todos", "base", "")), status: 200, docCodes: []string{""},
			contains: []string{`"changes":"` + b64(c1) + `"`}},
		{name: "retry is idempotent", method: "POST", url: "/v1/sync", headers: authGood, body: syncBody(docJSON("todos", "base", b64(c1))), status: 200, docCodes: []string{""}, check: unchanged},
		{name: "push c2 and c3", method: "POST", url: "/v1/sync", headers: authGood, body: syncBody(docJSON("todos", "base", b64(append(slices.Clone(c2), c3...)))), status: 200, docCodes: []string{""}},
		{name: "after push", url: "/v1/collections/todos/docs/base", headers: authGood, status: 200, contains: []string{`"title":"second"`, `"done":true`}},
		{name: "time travel", url: "/v1/collections/todos/docs/base?heads=" + heads0, headers: authGood, status: 200, contains: []string{`"doc":{"title":"first"}`}},
		{name: "time travel to unknown heads", url: "/v1/collections/todos/docs/base?heads=" + strings.Repeat("0", 64), headers: authGood, status: 404, code: CodeNotFound},
		{name: "feed", url: "/v1/collections/todos/feed?limit=10", headers: authGood, status: 200, contains: []string{`"id":"base"`}},
		{name: "feed bad cursor", url: "/v1/collections/todos/feed?after=%21%21", headers: authGood, status: 400, code: CodeBadRequest},
		{name: "readyz", url: "/readyz", status: 200},
		{name: "metrics", url: "/metrics", status: 200, contains: []string{
			"dynamerge_http_requests_total", "dynamerge_http_request_duration_seconds", "dynamerge_changes_merged_total",
			"dynamerge_bytes_merged_total", "dynamerge_cache_bytes", "dynamerge_cache_records", "dynamerge_cache_documents", "dynamerge_records_purged_total",
			"dynamerge_store_writes_total", "dynamerge_store_errors_total", "dynamerge_store_conflicts_total", "dynamerge_sse_connections"}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { sc.run(t, base) })
	}
}

// TestUnavailableReal: a failing store answers 503 with Retry-After, and the
// client's retry after the store recovers lands the change.
func TestUnavailableReal(t *testing.T) {
	rs := newRealServer(t, Options{}, engine.Options{})
	h := newHistory()
	c1 := h.edit(t, "n", 1)
	rs.store.failing.Store(true)
	scenario{method: "POST", url: "/v1/sync", body: syncBody(docJSON("todos", "u", b64(c1))), status: 503, code: CodeUnavailable}.run(t, rs.url)
	scenario{url: "/readyz", status: 503, code: CodeUnavailable}.run(t, rs.url)
	rs.store.failing.Store(false)
	scenario{method: "POST", url: "/v1/sync", body: syncBody(docJSON("todos", "u", b64(c1))), status: 200, docCodes: []string{""}}.run(t, rs.url)
	if got := headsOf(t, rs.url, "todos", "u"); got == "not_found" {
		t.Fatal("change not stored after the store recovered")
	}
}

// TestReadyzDiskFull: with a store that answers pings but fails every
// write, /readyz answers 503 after a failed write, and 200 again once a
// write succeeds (issue 18, item 8: it said ready on a full disk).
func TestReadyzDiskFull(t *testing.T) {
	rs := newRealServer(t, Options{}, engine.Options{})
	c1 := newHistory().edit(t, "n", 1)
	scenario{url: "/readyz", status: 200}.run(t, rs.url)
	rs.store.diskFull.Store(true)
	scenario{method: "POST", url: "/v1/sync", body: syncBody(docJSON("todos", "d", b64(c1))), status: 503, code: CodeUnavailable}.run(t, rs.url)
	scenario{url: "/readyz", status: 503, code: CodeUnavailable}.run(t, rs.url)
	rs.store.diskFull.Store(false)
	scenario{method: "POST", url: "/v1/sync", body: syncBody(docJSON("todos", "d", b64(c1))), status: 200, docCodes: []string{""}}.run(t, rs.url)
	scenario{url: "/readyz", status: 200}.run(t, rs.url)
}

// TestFeedPagingReal follows the feed cursor page by page and sees every
// record once, then sees a changed record again after the last cursor.
func TestFeedPagingReal(t *testing.T) {
	rs := newRealServer(t, Options{}, engine.Options{})
	c := client.New(rs.url)
	ctx := context.Background()
	const n = 7
	hists := make([]*history, n)
	docs := make([]client.Doc, n)
	var want []string
	for i := range n {
		hists[i] = newHistory()
		id := fmt.Sprintf("r%d", i)
		docs[i] = client.Doc{Collection: "feed", ID: id, Changes: hists[i].edit(t, "i", i)}
		want = append(want, id)
	}
	if _, err := c.Sync(ctx, docs); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatal("feed never ends")
		}
		page, err := c.Feed(ctx, "feed", cursor, 3)
		if err != nil {
			t.Fatalf("Feed: %v", err)
		}
		if len(page.Docs) > 3 {
			t.Fatalf("page of %d items, limit 3", len(page.Docs))
		}
		for _, d := range page.Docs {
			got = append(got, d.ID)
			if len(d.Heads) != 1 {
				t.Errorf("%s: heads %v, want one", d.ID, d.Heads)
			}
		}
		cursor = page.Cursor
		if !page.More {
			break
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("feed listed %v, want %v", got, want)
	}
	if _, err := c.Sync(ctx, []client.Doc{{Collection: "feed", ID: "r3", Changes: hists[3].edit(t, "i", 33)}}); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	page, err := c.Feed(ctx, "feed", cursor, 10)
	if err != nil {
		t.Fatalf("Feed after cursor: %v", err)
	}
	if len(page.Docs) != 1 || page.Docs[0].ID != "r3" {
		t.Fatalf("feed after the last cursor = %+v, want r3 only", page.Docs)
	}
}

// TestEventsReal subscribes through the Go client, pushes a change, and
// receives its event with the new heads.
func TestEventsReal(t *testing.T) {
	rs := newRealServer(t, Options{PingInterval: 50 * time.Millisecond}, engine.Options{})
	c := client.New(rs.url)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	events, err := c.Events(ctx, "todos", "notes")
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	h := newHistory()
	res, err := c.Sync(ctx, []client.Doc{{Collection: "todos", ID: "ev", Changes: h.edit(t, "x", 1)}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("Sync: %v %v", err, res[0].Err)
	}
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("event stream closed")
			}
			if ev.Collection == "todos" && ev.ID == "ev" && slices.Equal(ev.Heads, res[0].Heads) {
				return
			}
		case <-ctx.Done():
			t.Fatal("no event for the push")
		}
	}
}

// TestReplicasReal: two Go replicas edit the same record offline, sync in
// any order, and converge; a third one pulls it from scratch; a replica that
// talks to a server missing its history recovers by resending everything.
func TestReplicasReal(t *testing.T) {
	rs := newRealServer(t, Options{}, engine.Options{})
	c := client.New(rs.url)
	ctx := context.Background()
	a := client.NewReplica(c, "notes", "shared")
	b := client.NewReplica(c, "notes", "shared")
	set := func(r *client.Replica, k string, v any) {
		t.Helper()
		if err := r.Doc().Path(k).Set(v); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Doc().Commit("set " + k); err != nil {
			t.Fatal(err)
		}
	}
	set(a, "a", 1)
	set(b, "b", 2)
	if err := a.Sync(ctx); err != nil {
		t.Fatalf("a.Sync: %v", err)
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatalf("b.Sync: %v", err)
	}
	set(a, "a", 3)
	if err := client.SyncAll(ctx, c, []*client.Replica{a, b}); err != nil {
		t.Fatalf("SyncAll: %v", err)
	}
	// In one SyncAll, b's answer was computed before or after a's push
	// depending on the engine; one more round settles both.
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	fresh := client.NewReplica(c, "notes", "shared")
	if err := fresh.Sync(ctx); err != nil {
		t.Fatalf("fresh.Sync: %v", err)
	}
	for name, r := range map[string]*client.Replica{"b": b, "fresh": fresh} {
		if got, want := sortedJoin(r.Heads()), sortedJoin(a.Heads()); got != want {
			t.Errorf("%s heads %s, want %s", name, got, want)
		}
		if got, want := sortedJoin(r.ServerHeads()), sortedJoin(a.Heads()); got != want {
			t.Errorf("%s server heads %s, want %s", name, got, want)
		}
	}
	rec, err := c.Get(ctx, "notes", "shared")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got, want := string(rec.Doc), `{"a":3,"b":2}`; got != want {
		t.Fatalf("server JSON %s, want %s", got, want)
	}

	// A second server knows nothing of a's history: pushing only the new
	// change gets missing_deps, and SyncAll resends the whole history.
	other := newRealServer(t, Options{}, engine.Options{})
	c2 := client.New(other.url)
	set(a, "c", 4)
	if err := client.SyncAll(ctx, c2, []*client.Replica{a}); err != nil {
		t.Fatalf("SyncAll to a server missing the history: %v", err)
	}
	rec, err = c2.Get(ctx, "notes", "shared")
	if err != nil {
		t.Fatalf("Get from the second server: %v", err)
	}
	if got, want := string(rec.Doc), `{"a":3,"b":2,"c":4}`; got != want {
		t.Fatalf("second server JSON %s, want %s", got, want)
	}
}

func sortedJoin(ss []string) string {
	ss = slices.Clone(ss)
	slices.Sort(ss)
	return strings.Join(ss, ",")
}

// TestClientErrorsReal: the Go client turns every error answer into a typed
// *Error.
func TestClientErrorsReal(t *testing.T) {
	rs := newRealServer(t, Options{Authorizer: testAuthorizer}, engine.Options{})
	ctx := context.Background()
	c := client.New(rs.url)
	_, err := c.Sync(ctx, []client.Doc{{Collection: "todos", ID: "x"}})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized || ce.Code != client.CodeUnauthorized {
		t.Fatalf("Sync without token: %v, want 401 unauthorized", err)
	}
	c.Token = "good"
	if _, err := c.Sync(ctx, []client.Doc{{Collection: "todos", ID: "bad id"}}); !client.IsCode(err, client.CodeInvalidID) {
		t.Fatalf("Sync with a bad id: %v, want invalid_id", err)
	}
	res, err := c.Sync(ctx, []client.Doc{{Collection: "todos", ID: "x", Changes: []byte("garbage")}})
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if res[0].Err == nil || res[0].Err.Code != client.CodeInvalidChange || res[0].Err.Status != 0 {
		t.Fatalf("per-doc error %+v, want invalid_change with Status 0", res[0].Err)
	}
	if _, err := c.Get(ctx, "todos", "never"); !client.IsCode(err, client.CodeNotFound) {
		t.Fatalf("Get of a missing record: %v, want not_found", err)
	}
	if _, err := c.Get(ctx, "secret", "x"); !client.IsCode(err, client.CodeForbidden) {
		t.Fatalf("Get of a forbidden record: %v, want forbidden", err)
	}
	rs.store.failing.Store(true)
	_, err = c.Sync(ctx, []client.Doc{{Collection: "todos", ID: "y", Changes: newHistory().edit(t, "k", 1)}})
	if !errors.As(err, &ce) || ce.Code != client.CodeUnavailable || ce.RetryAfter <= 0 || !ce.Temporary() {
		t.Fatalf("Sync on a failing store: %#v, want unavailable with RetryAfter", err)
	}
	rs.store.failing.Store(false)
}

// TestShutdownReal: concurrent syncs race a Shutdown; every one answered 200
// is stored, and nothing hangs.
func TestShutdownReal(t *testing.T) {
	rs := newRealServer(t, Options{}, engine.Options{})
	c := client.New(rs.url)
	ctx := context.Background()
	events, err := c.Events(ctx, "todos")
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	const n = 16
	var wg sync.WaitGroup
	acked := make([]bool, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.Sync(ctx, []client.Doc{{Collection: "todos", ID: fmt.Sprintf("s%d", i), Changes: newHistory().edit(t, "i", i)}})
			acked[i] = err == nil && res[0].Err == nil
		}()
	}
	time.Sleep(5 * time.Millisecond)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := rs.srv.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	wg.Wait()
	for range events { // the stream must end
	}
	for i, ok := range acked {
		if !ok {
			continue
		}
		doc, _, err := rs.eng.JSON(ctx, store.Key{Collection: "todos", ID: fmt.Sprintf("s%d", i)}, nil)
		if err != nil || !strings.Contains(string(doc), fmt.Sprintf(`"i":%d`, i)) {
			t.Errorf("acknowledged s%d: %s, %v", i, doc, err)
		}
	}
}

// TestPoisonReal pushes a change that aborts any process applying it with
// automerge-go (e2e/testdata/poison): the doc is refused as invalid_change,
// the other doc of the batch lands, and the server lives on.
func TestPoisonReal(t *testing.T) {
	dir := filepath.Join("..", "e2e", "testdata", "poison")
	baseBytes, err := os.ReadFile(filepath.Join(dir, "base.bin"))
	if err != nil {
		t.Skipf("no poison corpus: %v", err)
	}
	poisons, _ := filepath.Glob(filepath.Join(dir, "0*.bin"))
	if len(poisons) == 0 {
		t.Skip("no poison change in the corpus")
	}
	poison, err := os.ReadFile(poisons[0])
	if err != nil {
		t.Fatal(err)
	}
	rs := newRealServer(t, Options{}, engine.Options{})
	base := rs.url
	scenario{method: "POST", url: "/v1/sync", body: syncBody(docJSON("todos", "p", b64(baseBytes))), status: 200, docCodes: []string{""}}.run(t, base)
	heads0 := headsOf(t, base, "todos", "p")
	ok := newHistory().edit(t, "fine", true)
	scenario{method: "POST", url: "/v1/sync", body: syncBody(docJSON("todos", "p", b64(poison)), docJSON("todos", "bystander", b64(ok))),
		status: 200, docCodes: []string{CodeInvalidChange, ""}}.run(t, base)
	if got := headsOf(t, base, "todos", "p"); got != heads0 {
		t.Fatalf("poisoned record changed: heads %s, want %s", got, heads0)
	}
	scenario{url: "/v1/collections/todos/docs/bystander", status: 200, contains: []string{`"fine":true`}}.run(t, base)
	scenario{url: "/healthz", status: 200}.run(t, base)
}
