package server

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/engine"
)

// counterBomb returns, from testdata, Automerge 3.5's changes for a counter
// (setup) and for a loop of n increments in one change (bomb, n ops of one
// byte each), made by:
//
//	d = A.from({c: new A.Counter(0)}, {actor: "0123456789abcdef0123456789abcdef"})
//	d = A.change(d, x => { for (let i = 0; i < n; i++) x.c.increment(1) })
//
// (getAllChanges of the first, getLastLocalChange of the second, joined).
// The bomb is returned deflated as a compressed chunk, as a hostile client
// would send it: every column is a run but the values, which compress to
// almost nothing, so n ops take about n/200 bytes on the wire.
func counterBomb(tb testing.TB, n int) (setup, bomb []byte) {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", fmt.Sprintf("counter-%d.bin", n)))
	if err != nil {
		tb.Fatal(err)
	}
	cs, err := crdt.ParseChanges(b, crdt.Limits{})
	if err != nil || len(cs) != 2 || cs[1].Ops != n {
		tb.Fatalf("fixture: %v (%d changes)", err, len(cs))
	}
	return cs[0].Raw, compressChunk(tb, cs[1].Raw)
}

// compressChunk turns an uncompressed change chunk into a compressed one
// with the same hash.
func compressChunk(tb testing.TB, chunk []byte) []byte {
	tb.Helper()
	n, k := binary.Uvarint(chunk[9:])
	body := chunk[9+k:]
	if k <= 0 || chunk[8] != 1 || uint64(len(body)) != n {
		tb.Fatal("not a single uncompressed change chunk")
	}
	var z bytes.Buffer
	zw, _ := flate.NewWriter(&z, flate.BestCompression)
	zw.Write(body)
	zw.Close()
	out := append([]byte{}, chunk[:8]...)
	out = append(out, 2)
	out = binary.AppendUvarint(out, uint64(z.Len()))
	return append(out, z.Bytes()...)
}

// compressedBomb is a compressed change chunk inflating to n zero bytes.
func compressedBomb(n int) []byte {
	var z bytes.Buffer
	zw, _ := flate.NewWriter(&z, flate.BestCompression)
	zw.Write(make([]byte, n))
	zw.Close()
	plain := append(binary.AppendUvarint([]byte{1}, uint64(n)), make([]byte, n)...)
	sum := sha256.Sum256(plain)
	out := append([]byte{0x85, 0x6f, 0x4a, 0x83}, sum[:4]...)
	out = append(out, 2)
	out = binary.AppendUvarint(out, uint64(z.Len()))
	return append(out, z.Bytes()...)
}

// TestLimits: every limit answers its code, and nothing of the refused
// input is stored.
func TestLimits(t *testing.T) {
	rs := newRealServer(t, Options{MaxBodyBytes: 64 << 10, MaxDocsPerSync: 5}, engine.Options{
		MaxChangeBytes: 8 << 10,
		MaxRecordBytes: 20 << 10,
		Limits:         crdt.Limits{MaxOps: 1000},
		MaxRecordOps:   2500,
	})
	base := rs.url
	c := client.New(base)
	ctx := context.Background()

	// A record to aim at, whose heads must not move.
	h := newHistory()
	res, err := c.Sync(ctx, []client.Doc{{Collection: "lim", ID: "r", Changes: h.edit(t, "x", 1)}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("seed: %v %v", err, res)
	}
	heads := headsOf(t, base, "lim", "r")

	setup, bomb := counterBomb(t, 2000)
	t.Logf("counter bomb: 2000 ops in %d bytes", len(bomb))
	bigText := newHistory()
	big := bigText.edit(t, "t", strings.Repeat("abcdefghij", 1200)) // 12 KB change

	for _, sc := range []struct {
		name   string
		body   string
		status int
		code   string
		doc    string // per-doc code
		key    string // collection/id that must stay unchanged ("" = lim/r)
	}{
		{name: "body over limit", body: syncBody(docJSON("lim", "r", b64(make([]byte, 70<<10)))), status: 413, code: CodeTooLarge},
		{name: "too many docs", body: syncBody(docJSON("lim", "a", ""), docJSON("lim", "b", ""), docJSON("lim", "c", ""), docJSON("lim", "d", ""), docJSON("lim", "e", ""), docJSON("lim", "r", b64(h.edit(t, "y", 2)))), status: 413, code: CodeTooLarge},
		{name: "change over bytes", body: syncBody(docJSON("lim", "r", b64(big))), status: 200, doc: CodeTooLarge},
		{name: "ops per change (run-length bomb)", body: syncBody(docJSON("lim", "bomb", b64(append(append([]byte{}, setup...), bomb...)))), status: 200, doc: CodeTooLarge, key: "lim/bomb"},
		{name: "deflate bomb", body: syncBody(docJSON("lim", "r", b64(compressedBomb(20<<20)))), status: 200, doc: CodeTooLarge},
	} {
		t.Run(sc.name, func(t *testing.T) {
			st, hdr, body := httpCall(t, "POST", base+"/v1/sync", "", sc.body)
			if st != sc.status {
				t.Fatalf("status %d, want %d: %.300s", st, sc.status, body)
			}
			if sc.code != "" && errCode(body) != sc.code {
				t.Fatalf("code %q, want %q", errCode(body), sc.code)
			}
			if sc.doc != "" && !strings.Contains(string(body), `"code":"`+sc.doc+`"`) {
				t.Fatalf("doc code, want %q: %.300s", sc.doc, body)
			}
			if hdr.Get("X-Content-Type-Options") == "" {
				t.Error("no security headers")
			}
			col, id := "lim", "r"
			if sc.key != "" {
				col, id, _ = strings.Cut(sc.key, "/")
			}
			want := heads
			if sc.key != "" {
				want = "not_found"
			}
			if got := headsOf(t, base, col, id); got != want {
				t.Fatalf("%s/%s heads %s, want %s: refused input was stored", col, id, got, want)
			}
		})
	}

	// Ops per record: changes of 401 ops (a list of 400 numbers); six fit
	// in 2500, the seventh does not.
	t.Run("ops per record", func(t *testing.T) {
		hh := newHistory()
		list := make([]any, 400)
		for i := range list {
			list[i] = i
		}
		for i := 0; i < 7; i++ {
			before := headsOf(t, base, "lim", "ops")
			ch := hh.edit(t, fmt.Sprintf("l%d", i), list)
			st, _, body := httpCall(t, "POST", base+"/v1/sync", "", syncBody(docJSON("lim", "ops", b64(ch))))
			refused := strings.Contains(string(body), `"code":"too_large"`)
			if st != 200 || refused != (i == 6) || (!refused && strings.Contains(string(body), `"error"`)) {
				t.Fatalf("push %d (%d ops so far): %d %.300s", i, i*401, st, body)
			}
			if refused && headsOf(t, base, "lim", "ops") != before {
				t.Fatal("heads moved on refusal")
			}
		}
	})

	// Record bytes: changes of ~6 KB each until the 20 KB record is full.
	t.Run("record bytes", func(t *testing.T) {
		hh := newHistory()
		var refused bool
		for i := 0; i < 6 && !refused; i++ {
			before := headsOf(t, base, "lim", "bytes")
			ch := hh.edit(t, fmt.Sprintf("k%d", i), strings.Repeat(strconv.Itoa(i), 6000))
			st, _, body := httpCall(t, "POST", base+"/v1/sync", "", syncBody(docJSON("lim", "bytes", b64(ch))))
			if st != 200 {
				t.Fatalf("push %d: %d %s", i, st, body)
			}
			if strings.Contains(string(body), `"code":"too_large"`) {
				refused = true
				if got := headsOf(t, base, "lim", "bytes"); got != before {
					t.Fatalf("heads moved on refusal")
				}
			}
		}
		if !refused {
			t.Fatal("record grew past MaxRecordBytes")
		}
	})
}

// TestDecompressionBombMemory: a compressed change of ~150 bytes describing
// 20,000 ops is refused too_large (limit 10,000 here, 50,000 by
// default) while the server allocates little: the op bound is checked as
// run-length columns expand, before they take memory.
func TestDecompressionBombMemory(t *testing.T) {
	rs := newRealServer(t, Options{}, engine.Options{Limits: crdt.Limits{MaxOps: 10_000}})
	setup, bomb := counterBomb(t, 20000)
	body := syncBody(docJSON("bomb", "b", b64(append(append([]byte{}, setup...), bomb...))))
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	st, _, resp := httpCall(t, "POST", rs.url+"/v1/sync", "", body)
	runtime.ReadMemStats(&m1)
	if st != 200 || !strings.Contains(string(resp), `"code":"too_large"`) {
		t.Fatalf("%d %.300s", st, resp)
	}
	alloc := m1.TotalAlloc - m0.TotalAlloc
	t.Logf("bomb: 20000 ops in %d bytes on the wire; refusing it allocated %d KB (client and server)", len(bomb), alloc>>10)
	if alloc > 4<<20 {
		t.Fatalf("refusing the bomb allocated %d KB", alloc>>10)
	}
	if got := headsOf(t, rs.url, "bomb", "b"); got != "not_found" {
		t.Fatalf("bomb stored: %s", got)
	}
	if _, err := crdt.ParseChanges(bomb, crdt.Limits{MaxOps: 10_000}); !errors.Is(err, crdt.ErrChunkTooLarge) {
		t.Fatalf("ParseChanges: %v", err)
	}
}

// TestRateLimits: a subject over its rate gets 429 with Retry-After and
// nothing stored; other subjects are not affected; failed tokens are
// limited per address; X-Forwarded-For is ignored unless trusted.
func TestRateLimits(t *testing.T) {
	rs := newRealServer(t, Options{
		Authorizer:  newTestAuth(t),
		RateLimit:   RateLimit{PerSecond: 0.5, Burst: 3},
		IPRateLimit: RateLimit{PerSecond: 0.5, Burst: 3},
	}, engine.Options{})
	base := rs.url
	alice := signHS(t, claimsFor("alice", map[string]any{"*": "rw"}))
	bob := signHS(t, claimsFor("bob", map[string]any{"*": "rw"}))
	for i := 0; i < 3; i++ {
		if st, _, body := httpCall(t, "GET", base+"/v1/collections/x/feed", alice, ""); st != 200 {
			t.Fatalf("request %d: %d %s", i, st, body)
		}
	}
	h := newHistory()
	st, hdr, body := httpCall(t, "POST", base+"/v1/sync", alice, syncBody(docJSON("x", "r", b64(h.edit(t, "a", 1)))))
	if st != 429 || errCode(body) != CodeRateLimited {
		t.Fatalf("over the rate: %d %s", st, body)
	}
	if ra, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || ra < 1 || ra > 3 {
		t.Fatalf("Retry-After %q", hdr.Get("Retry-After"))
	}
	if st, _, _ := httpCall(t, "GET", base+"/v1/collections/x/docs/r", bob, ""); st != 404 {
		t.Fatalf("the refused push was stored (or bob is limited): %d", st)
	}

	// Bad tokens count per address; X-Forwarded-For does not pick a new
	// bucket because no proxy header is trusted.
	var codes []int
	for i := 0; i < 5; i++ {
		st, _, _ := httpCall(t, "GET", base+"/v1/collections/x/feed", "bad", "", "X-Forwarded-For", fmt.Sprintf("10.0.0.%d", i))
		codes = append(codes, st)
	}
	if fmt.Sprint(codes) != "[401 401 401 429 429]" {
		t.Fatalf("bad tokens from one address: %v", codes)
	}

	// Behind a trusted proxy, the header's last entry is the client.
	rs2 := newRealServer(t, Options{IPRateLimit: RateLimit{PerSecond: 0.5, Burst: 1}, TrustedProxyHeader: "X-Forwarded-For"}, engine.Options{})
	for i, c := range []struct {
		xff  string
		want int
	}{
		{"1.1.1.1, 10.0.0.1", 200},
		{"2.2.2.2, 10.0.0.1", 429}, // spoofed first entry: same client
		{"10.0.0.2", 200},
		{"2001:db8::1", 200},
		{"2001:db8::2", 429}, // same /64
	} {
		st, _, body := httpCall(t, "GET", rs2.url+"/v1/collections/x/feed", "", "", "X-Forwarded-For", c.xff)
		if st != c.want {
			t.Fatalf("%d: X-Forwarded-For %q: %d %s, want %d", i, c.xff, st, body, c.want)
		}
	}
}

func TestLimiterMemoryBounded(t *testing.T) {
	l := newLimiters(RateLimit{PerSecond: 1, Burst: 5}, 100)
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	for i := 0; i < 10_000; i++ {
		l.allow("ip:" + strconv.Itoa(i))
		if n := l.size(); n > 100 {
			t.Fatalf("%d entries after %d keys", n, i+1)
		}
	}
	// Idle entries go once their bucket would be full again.
	now = now.Add(time.Minute)
	l.allow("ip:new")
	if n := l.size(); n != 1 {
		t.Fatalf("%d entries after an idle minute, want 1", n)
	}
}

// TestSSEPerSubject: MaxSSEPerSubject bounds one subject's event streams,
// MaxSSE all of them (issue 18, item 8: 3,200 streams cost 185 MB).
func TestSSEPerSubject(t *testing.T) {
	rs := newRealServer(t, Options{Authorizer: newTestAuth(t), MaxSSEPerSubject: 2, MaxSSE: 3, PingInterval: time.Hour}, engine.Options{})
	alice := signHS(t, claimsFor("alice", map[string]any{"*": "r"}))
	bob := signHS(t, claimsFor("bob", map[string]any{"*": "r"}))
	open := func(tok string) (*http.Response, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", rs.url+"/v1/events?collections=a&access_token="+tok, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return res, cancel
	}
	var cancels []context.CancelFunc
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	for i := 0; i < 2; i++ {
		res, cancel := open(alice)
		cancels = append(cancels, cancel)
		if res.StatusCode != 200 {
			t.Fatalf("stream %d: %d", i, res.StatusCode)
		}
	}
	res, cancel := open(alice)
	cancel()
	if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" {
		t.Fatalf("third stream: %d, Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
	res, c2 := open(bob)
	cancels = append(cancels, c2)
	if res.StatusCode != 200 {
		t.Fatalf("bob: %d", res.StatusCode)
	}
	// Three streams are open: MaxSSE refuses a fourth, whoever asks.
	carol := signHS(t, claimsFor("carol", map[string]any{"*": "r"}))
	res, cancel = open(carol)
	cancel()
	if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" {
		t.Fatalf("carol over MaxSSE: %d, Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
	// Closing one stream frees its slot.
	cancels[0]()
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, c := open(alice)
		cancels = append(cancels, c)
		if res.StatusCode == 200 {
			break
		}
		c()
		if time.Now().After(deadline) {
			t.Fatal("slot not freed after the stream closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCORS(t *testing.T) {
	off := newRealServer(t, Options{}, engine.Options{})
	_, hdr, _ := httpCall(t, "GET", off.url+"/v1/collections/x/feed", "", "", "Origin", "https://evil.example")
	if hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("CORS on without configuration: %v", hdr)
	}
	on := newRealServer(t, Options{CORSOrigins: []string{"https://app.example"}}, engine.Options{})
	st, hdr, _ := httpCall(t, "OPTIONS", on.url+"/v1/sync", "", "", "Origin", "https://app.example", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization,content-type")
	if st != 204 || hdr.Get("Access-Control-Allow-Origin") != "https://app.example" || !strings.Contains(hdr.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %d %v", st, hdr)
	}
	if hdr.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatal("credentials allowed")
	}
	_, hdr, _ = httpCall(t, "GET", on.url+"/v1/collections/x/feed", "", "", "Origin", "https://app.example")
	if hdr.Get("Access-Control-Allow-Origin") != "https://app.example" || !strings.Contains(hdr.Get("Access-Control-Expose-Headers"), "Retry-After") {
		t.Fatalf("simple request: %v", hdr)
	}
	st, hdr, _ = httpCall(t, "OPTIONS", on.url+"/v1/sync", "", "", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	if hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("other origin allowed: %d %v", st, hdr)
	}
}

// TestHostileClient: while one client loops over oversized, malformed and
// crafted requests, honest clients keep syncing and converge; the server
// never answers a hostile request 5xx.
func TestHostileClient(t *testing.T) {
	rs := newRealServer(t, Options{Authorizer: newTestAuth(t), MaxBodyBytes: 256 << 10}, engine.Options{Limits: crdt.Limits{MaxOps: 1000}})
	base := rs.url
	mallory := signHS(t, claimsFor("mallory", map[string]any{"mallory": "rw", "public": "r"}))
	setup, bomb := counterBomb(t, 2000)
	h := newHistory()
	good := h.edit(t, "x", 1)
	valid := signHS(t, claimsFor("x", nil))
	hostile := []struct{ method, path, tok, body string }{
		{"POST", "/v1/sync", mallory, syncBody(docJSON("mallory", "b", b64(append(append([]byte{}, setup...), bomb...))))},
		{"POST", "/v1/sync", mallory, syncBody(docJSON("mallory", "z", b64(compressedBomb(32<<20))))},
		{"POST", "/v1/sync", mallory, syncBody(docJSON("mallory", "f", b64(flipWithChecksum(t, good))))},
		{"POST", "/v1/sync", mallory, syncBody(docJSON("mallory", "t", b64(good[:len(good)-3])))},
		{"POST", "/v1/sync", mallory, syncBody(docJSON("public", "p", b64(good)))},
		{"POST", "/v1/sync", mallory, syncBody(docJSON("mallory", "../../etc", ""))},
		{"POST", "/v1/sync", mallory, `{"docs":[` + strings.Repeat(`{"collection":"mallory","id":"a"},`, 20000) + `{}]}`},
		{"POST", "/v1/sync", mallory, `{"docs":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`},
		{"POST", "/v1/sync", mallory, strings.Repeat("A", 300<<10)},
		{"POST", "/v1/sync", mallory, `{"docs":[{"collection":"mallory","id":"x","have":["zz"]}]}`},
		{"POST", "/v1/sync", mallory, `{"docs":[{"collection":"mallory","id":"x","changes":"!!!"}]}`},
		{"POST", "/v1/sync", valid + "x", `{"docs":[]}`},
		{"GET", "/v1/collections/mallory/docs/x?heads=" + strings.Repeat("ab", 5000), mallory, ""},
		{"GET", "/v1/collections/mallory/feed?after=" + strings.Repeat("Z", 2000), mallory, ""},
		{"GET", "/v1/collections/mallory/feed?limit=-1", mallory, ""},
		{"GET", "/v1/events?collections=" + strings.Repeat("a,", 500), mallory, ""},
		{"GET", "/v1/events?collections=secret", mallory, ""},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	var hostileN, fiveXX atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				hq := hostile[i%len(hostile)]
				req, _ := http.NewRequestWithContext(ctx, hq.method, base+hq.path, strings.NewReader(hq.body))
				req.Header.Set("Authorization", "Bearer "+hq.tok)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					continue // our own deadline
				}
				res.Body.Close()
				hostileN.Add(1)
				if res.StatusCode >= 500 {
					fiveXX.Add(1)
					t.Errorf("hostile %s %.80s: %d", hq.method, hq.path, res.StatusCode)
				}
			}
		}()
	}
	// Honest clients: three users each editing their own record.
	honest, _ := honestSyncs(ctx, t, base, "u1", "u2", "u3")
	wg.Wait()
	if st, _, _ := httpCall(t, "GET", base+"/healthz", "", ""); st != 200 {
		t.Fatalf("healthz %d after the attack", st)
	}
	if honest < 3 {
		t.Fatalf("honest clients made %d syncs", honest)
	}
	t.Logf("%d hostile requests (%d 5xx), %d honest syncs, all served", hostileN.Load(), fiveXX.Load(), honest)
	if strings.Contains(rs.log.String(), "panic") {
		t.Fatalf("a handler panicked:\n%s", rs.log.String())
	}
}

func TestClientIP(t *testing.T) {
	for _, c := range []struct {
		remote, header, value, want string
	}{
		{"192.0.2.1:1234", "", "", "192.0.2.1"},
		{"192.0.2.1:1234", "", "203.0.113.9", "192.0.2.1"}, // header not trusted
		{"192.0.2.1:1234", "X-Forwarded-For", "203.0.113.9", "203.0.113.9"},
		{"192.0.2.1:1234", "X-Forwarded-For", "1.1.1.1, 203.0.113.9", "203.0.113.9"},
		{"192.0.2.1:1234", "X-Forwarded-For", "203.0.113.9:5555", "203.0.113.9"},
		{"192.0.2.1:1234", "X-Real-IP", "[2001:db8:1:2:3::4]:80", "2001:db8:1:2::/64"},
		{"[2001:db8::1]:1234", "", "", "2001:db8::/64"},
		{"192.0.2.1:1234", "X-Forwarded-For", "", "192.0.2.1"}, // proxy sent nothing
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		trusted := c.header
		if c.value != "" {
			h := c.header
			if h == "" {
				h = "X-Forwarded-For"
			}
			r.Header.Set(h, c.value)
		}
		if got := clientIP(r, trusted); got != c.want {
			t.Errorf("clientIP(%s, %s: %q) = %q, want %q", c.remote, c.header, c.value, got, c.want)
		}
	}
}

// TestEventsEndAtTokenExpiry: an event stream ends when its token's exp
// plus the leeway passes (issue 18, item 5: streams kept delivering 40 s
// after exp).
func TestEventsEndAtTokenExpiry(t *testing.T) {
	auth, err := NewTokenAuth(TokenAuthConfig{HS256Secret: testSecret, Leeway: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	fs := newFakeServer(t, Options{Authorizer: auth, PingInterval: time.Hour})
	claims := claimsFor("alice", map[string]any{"todos": "r"})
	exp := time.Now().Add(time.Second).Truncate(time.Second).Add(time.Second) // 1 to 2 s away
	claims["exp"] = exp.Unix()
	c := client.New(fs.url)
	c.Token = signHS(t, claims)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events, err := c.Events(ctx, "todos")
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	for range events {
	}
	ended := time.Now()
	if ctx.Err() != nil {
		t.Fatal("the stream outlived its token by seconds")
	}
	if early, late := exp.Add(500*time.Millisecond).Sub(ended), ended.Sub(exp.Add(500*time.Millisecond)); early > 100*time.Millisecond || late > time.Second {
		t.Fatalf("stream ended at %s, want exp + leeway (%s)", ended.Format(time.StampMilli), exp.Add(500*time.Millisecond).Format(time.StampMilli))
	}
}
