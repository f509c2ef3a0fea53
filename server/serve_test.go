package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawRequest opens a connection to base and sends head (request line and
// headers, without the blank line) and the first bytes of a body; the
// caller sends the rest, or not.
func rawRequest(tb testing.TB, base, head, body string) net.Conn {
	tb.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, head+"\r\n\r\n"+body); err != nil {
		tb.Fatal(err)
	}
	return conn
}

// slowSync is the head of a sync request announcing a body of n bytes.
func slowSync(tok string, n int) string {
	h := fmt.Sprintf("POST /v1/sync HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: %d", n)
	if tok != "" {
		h += "\r\nAuthorization: Bearer " + tok
	}
	return h
}

// readStatus reads the status of the answer on conn within d, 0 if none
// came (or the connection closed first).
func readStatus(conn net.Conn, d time.Duration) int {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

// TestSlowBodyCut: a body trickling a byte every 50 ms is answered 408 and
// cut once it falls behind the minimum rate (issue 18, item 2: such bodies
// were held open for ever), while a body arriving steadily for longer than
// BodyTimeout, above the rate, is served.
func TestSlowBodyCut(t *testing.T) {
	fs := newFakeServer(t, Options{BodyTimeout: 300 * time.Millisecond, MinBodyRate: 1000})

	conn := rawRequest(t, fs.url, slowSync("", 100_000), "{")
	start := time.Now()
	go func() {
		for i := 0; i < 200; i++ {
			time.Sleep(50 * time.Millisecond)
			if _, err := conn.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()
	if got := readStatus(conn, 5*time.Second); got != http.StatusRequestTimeout {
		t.Fatalf("trickled body: status %d, want 408", got)
	}
	if held := time.Since(start); held > 2*time.Second {
		t.Fatalf("trickled body held %s, want about BodyTimeout (300ms)", held)
	}
	t.Logf("a body trickling 20 B/s was cut after %s", time.Since(start).Round(time.Millisecond))

	// 2,000 bytes at 2,000 B/s: a second, over three times BodyTimeout.
	body := `{"docs":[]}` + strings.Repeat(" ", 1989)
	steady := rawRequest(t, fs.url, slowSync("", len(body)), "")
	for i := 0; i < len(body); i += 200 {
		time.Sleep(100 * time.Millisecond)
		if _, err := io.WriteString(steady, body[i:i+200]); err != nil {
			t.Fatal(err)
		}
	}
	if got := readStatus(steady, 5*time.Second); got != http.StatusOK {
		t.Fatalf("steady body above the minimum rate: status %d, want 200", got)
	}
}

// TestRequestsPerSubject: a subject holding MaxRequestsPerSubject slow
// requests gets 429 for the next one; other subjects are served, and the
// subject is again once its requests end.
func TestRequestsPerSubject(t *testing.T) {
	fs := newFakeServer(t, Options{Authorizer: newTestAuth(t), MaxRequestsPerSubject: 2})
	alice := signHS(t, claimsFor("alice", map[string]any{"todos": "rw"}))
	bob := signHS(t, claimsFor("bob", map[string]any{"todos": "rw"}))
	var held []net.Conn
	for i := 0; i < 2; i++ {
		held = append(held, rawRequest(t, fs.url, slowSync(alice, 1000), `{"docs":`))
	}
	empty := syncBody()
	waitFor(t, func() bool {
		st, _, _ := httpCall(t, "POST", fs.url+"/v1/sync", alice, empty)
		return st == http.StatusTooManyRequests
	})
	st, hdr, body := httpCall(t, "POST", fs.url+"/v1/sync", alice, empty)
	if st != http.StatusTooManyRequests || errCode(body) != CodeRateLimited || hdr.Get("Retry-After") == "" {
		t.Fatalf("third request of alice: %d %v %s, want 429 rate_limited with Retry-After", st, hdr, body)
	}
	if st, _, body := httpCall(t, "POST", fs.url+"/v1/sync", bob, empty); st != http.StatusOK {
		t.Fatalf("bob while alice is at her cap: %d %s", st, body)
	}
	for _, c := range held {
		c.Close()
	}
	waitFor(t, func() bool {
		st, _, _ := httpCall(t, "POST", fs.url+"/v1/sync", alice, empty)
		return st == http.StatusOK
	})
}

// TestMaxConnections: with MaxConnections open, a new connection waits
// until one of them closes.
func TestMaxConnections(t *testing.T) {
	fs := newFakeServer(t, Options{MaxConnections: 2})
	a := rawRequest(t, fs.url, "GET /healthz HTTP/1.1\r\nHost: test", "")
	if got := readStatus(a, 5*time.Second); got != http.StatusOK {
		t.Fatalf("first connection: %d", got)
	}
	_ = rawRequest(t, fs.url, "GET /healthz HTTP/1.1\r\nHost: test", "")
	waitFor(t, func() bool { return fs.srv.conns.open() == 2 })

	third := rawRequest(t, fs.url, "GET /healthz HTTP/1.1\r\nHost: test", "")
	if got := readStatus(third, 300*time.Millisecond); got != 0 {
		t.Fatalf("a third connection over MaxConnections 2 was served: %d", got)
	}
	a.Close()
	if got := readStatus(third, 5*time.Second); got != http.StatusOK {
		t.Fatalf("the waiting connection after one closed: %d, want 200", got)
	}
}

// TestHeaderLimit: headers over DefaultMaxHeaderBytes get 431 (issue 18,
// item 3: the binary allowed 1 MiB per connection).
func TestHeaderLimit(t *testing.T) {
	fs := newFakeServer(t, Options{})
	conn := rawRequest(t, fs.url, "GET /healthz HTTP/1.1\r\nHost: test\r\nX-Pad: "+strings.Repeat("a", 100<<10), "")
	if got := readStatus(conn, 5*time.Second); got != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("100 KiB of headers: %d, want 431", got)
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(tb testing.TB, cond func() bool) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			tb.Fatal("condition not met within 5s")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestSlowAnswerNotCut: a request whose body arrived in time is answered
// however long the engine then takes. The body's read deadline must not
// outlive the body: net/http's background read (which notices a client
// that goes away) would meet it and cancel the request, and a cold load of
// a large record on a busy machine was answered 503 after BodyTimeout.
func TestSlowAnswerNotCut(t *testing.T) {
	fs := newFakeServer(t, Options{BodyTimeout: 200 * time.Millisecond})
	fs.eng.block = make(chan struct{})
	go func() {
		time.Sleep(time.Second)
		close(fs.eng.block)
	}()
	body := syncBody(docJSON("todos", "slow", b64([]byte("x"))))
	st, _, got := httpCall(t, "POST", fs.url+"/v1/sync", "", body)
	if st != http.StatusOK {
		t.Fatalf("sync answered after 5 × BodyTimeout: %d %s, want 200", st, got)
	}
}
