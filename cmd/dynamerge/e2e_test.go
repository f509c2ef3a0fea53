package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// golden is testdata/todo.json: one change made by @automerge/automerge
// 3.5.0 (scripts/gen-example-change.mjs).
type golden struct {
	Changes string          `json:"changes"`
	Heads   []string        `json:"heads"`
	Doc     json.RawMessage `json:"doc"`
}

func loadGolden(tb testing.TB) golden {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "todo.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		tb.Fatalf("testdata/todo.json: %v", err)
	}
	return g
}

// buildBinary compiles the command once per test binary run.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "dynamerge-e2e-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "dynamerge")
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// proc is a running dynamerge binary.
type proc struct {
	cmd     *exec.Cmd
	baseURL string
	done    chan error // Wait's result

	mu   sync.Mutex
	logs []map[string]any
	raw  bytes.Buffer
}

// startBinary starts the server on a free loopback port with its store in
// dbPath, and waits until it logs its address. The process is killed at the
// end of the test if it is still running.
func startBinary(tb testing.TB, dbPath string, extra ...string) *proc {
	tb.Helper()
	bin, err := buildBinary()
	if err != nil {
		tb.Fatal(err)
	}
	args := append([]string{"--addr", "127.0.0.1:0", "--store", "bolt:" + dbPath,
		"--log-format", "json", "--shutdown-timeout", "10s"}, extra...)
	cmd := exec.Command(bin, args...)
	// The parent's DYNAMERGE_* variables must not leak into the child.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DYNAMERGE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	addr := make(chan string, 1)
	scanDone := make(chan struct{})
	go func() {
		defer close(scanDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			var m map[string]any
			p.mu.Lock()
			p.raw.Write(line)
			p.raw.WriteByte('\n')
			if json.Unmarshal(line, &m) == nil {
				p.logs = append(p.logs, m)
				if m["msg"] == "dynamerge started" {
					if a, ok := m["addr"].(string); ok {
						select {
						case addr <- a:
						default:
						}
					}
				}
			}
			p.mu.Unlock()
		}
	}()
	go func() {
		<-scanDone // Wait closes the pipe; read everything first
		p.done <- cmd.Wait()
	}()
	tb.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
		if tb.Failed() {
			tb.Logf("server log:\n%s", p.log())
		}
	})
	select {
	case a := <-addr:
		p.baseURL = "http://" + a
	case err := <-p.done:
		p.done <- err
		tb.Fatalf("server exited before listening: %v\n%s", err, p.log())
	case <-time.After(30 * time.Second):
		tb.Fatalf("server did not log its address within 30s\n%s", p.log())
	}
	return p
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.raw.String()
}

// waitLog reports whether a log line with msg (and level, when given)
// arrives within 5 s. The log is read by another goroutine, so a line the
// process has written may not be in p.logs yet.
func (p *proc) waitLog(level, msg string) bool {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		p.mu.Lock()
		for _, m := range p.logs {
			if m["msg"] == msg && (level == "" || m["level"] == level) {
				p.mu.Unlock()
				return true
			}
		}
		p.mu.Unlock()
		if time.Now().After(deadline) {
			return false
		}
	}
}

// waitReady polls /readyz until it answers 200.
func (p *proc) waitReady(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.baseURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("/readyz not 200 within 30s (last: %v, %v)", resp, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and returns the exit error.
func (p *proc) stop(tb testing.TB) error {
	tb.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		tb.Fatal(err)
	}
	select {
	case err := <-p.done:
		return err
	case <-time.After(30 * time.Second):
		tb.Fatalf("server did not exit within 30s of SIGTERM\n%s", p.log())
		return nil
	}
}

type syncDoc struct {
	Collection string          `json:"collection"`
	ID         string          `json:"id"`
	Have       []string        `json:"have,omitempty"`
	Heads      []string        `json:"heads,omitempty"`
	Changes    string          `json:"changes,omitempty"`
	Error      json.RawMessage `json:"error,omitempty"`
}

type syncBody struct {
	Docs []syncDoc `json:"docs"`
}

func postSync(tb testing.TB, baseURL string, docs ...syncDoc) syncBody {
	tb.Helper()
	body, err := json.Marshal(syncBody{Docs: docs})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/v1/sync", bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("POST /v1/sync: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("POST /v1/sync: %s: %s", resp.Status, raw)
	}
	var out syncBody
	if err := json.Unmarshal(raw, &out); err != nil {
		tb.Fatalf("POST /v1/sync: %v in %s", err, raw)
	}
	if got, want := len(out.Docs), len(docs); got != want {
		tb.Fatalf("POST /v1/sync: %d docs in answer, want %d: %s", got, want, raw)
	}
	return out
}

// TestBinaryEndToEnd builds the binary, syncs one change into it, stops it
// with SIGTERM, restarts it on the same store and reads the change back:
// the whole path flags → store → engine → server, and acknowledged = durable
// across a restart.
func TestBinaryEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	g := loadGolden(t)
	dbPath := filepath.Join(t.TempDir(), "data", "dynamerge.db")

	p := startBinary(t, dbPath)
	p.waitReady(t)
	if !p.waitLog("WARN", "NO AUTHENTICATION CONFIGURED: every client that can reach this address can read and write every collection") {
		t.Errorf("no loud warning about the missing authentication in the start-up log")
	}

	events := openEvents(t, p.baseURL, "todos")

	push := postSync(t, p.baseURL, syncDoc{Collection: "todos", ID: "e2e-1", Changes: g.Changes})
	if d := push.Docs[0]; len(d.Error) > 0 || !slices.Equal(d.Heads, g.Heads) {
		t.Fatalf("push answer %+v, want heads %v and no error", d, g.Heads)
	}
	// The client is up to date: nothing to send back.
	if got := push.Docs[0].Changes; got != "" {
		t.Errorf("push answer carries changes %q, want none (the client sent them)", got)
	}

	resp, err := http.Get(p.baseURL + "/v1/collections/todos/docs/e2e-1")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET doc: %s: %s", resp.Status, raw)
	}
	var rec struct {
		Doc json.RawMessage `json:"doc"`
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatalf("GET doc: %v in %s", err, raw)
	}
	if !jsonEqual(t, rec.Doc, g.Doc) {
		t.Errorf("GET doc = %s, want %s", rec.Doc, g.Doc)
	}

	// The push is announced on the open SSE stream.
	events.waitFor(t, "event: change", `"id":"e2e-1"`)

	// SIGTERM with the SSE stream still open: the stream ends and the
	// process exits cleanly, well before --shutdown-timeout (10s).
	began := time.Now()
	if err := p.stop(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v, want a clean exit\n%s", err, p.log())
	}
	took := time.Since(began)
	t.Logf("shutdown with an open SSE stream: %v", took)
	if took > 5*time.Second {
		t.Errorf("shutdown with an open SSE stream took %v, want well under the 10s timeout", took)
	}
	events.waitClosed(t)
	if !p.waitLog("INFO", "shutdown complete") {
		t.Errorf("no \"shutdown complete\" in the log")
	}

	// A new process on the same file has the change: a pull with no heads
	// brings it back in full.
	p2 := startBinary(t, dbPath)
	p2.waitReady(t)
	pull := postSync(t, p2.baseURL, syncDoc{Collection: "todos", ID: "e2e-1"})
	if d := pull.Docs[0]; len(d.Error) > 0 || !slices.Equal(d.Heads, g.Heads) || d.Changes == "" {
		t.Fatalf("pull after restart %+v, want heads %v and the change", d, g.Heads)
	}
	if err := p2.stop(t); err != nil {
		t.Fatalf("second exit after SIGTERM: %v", err)
	}
}

// TestBinaryRefusesBadConfig checks the exit code and message of a bad flag,
// without starting anything.
func TestBinaryRefusesBadConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"non-loopback", []string{"--addr", "0.0.0.0:0"}, "--addr"},
		{"dynamodb table name", []string{"--store", "dynamodb:t"}, "table name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			cmd := exec.Command(bin, tt.args...)
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
				t.Fatalf("exit: %v, want code %d", err, exitUsage)
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tt.want)
			}
		})
	}
}

func jsonEqual(tb testing.TB, a, b []byte) bool {
	tb.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		tb.Fatalf("%v in %s", err, a)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		tb.Fatalf("%v in %s", err, b)
	}
	xs, _ := json.Marshal(x)
	ys, _ := json.Marshal(y)
	return bytes.Equal(xs, ys)
}

// sseStream is an open GET /v1/events, its lines delivered on a channel.
type sseStream struct {
	lines chan string // closed at the end of the stream
}

func openEvents(tb testing.TB, baseURL, collections string) *sseStream {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/v1/events?collections="+collections, nil)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("GET /v1/events: %v", err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		resp.Body.Close()
		tb.Fatalf("GET /v1/events: %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{lines: make(chan string, 100)}
	go func() {
		defer close(s.lines)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	return s
}

// waitFor reads until a line equal to first is followed by a line holding
// second.
func (s *sseStream) waitFor(tb testing.TB, first, second string) {
	tb.Helper()
	timeout := time.After(10 * time.Second)
	prev := ""
	for {
		select {
		case line, ok := <-s.lines:
			if !ok {
				tb.Fatalf("event stream ended before %q / %q", first, second)
			}
			if prev == first && strings.Contains(line, second) {
				return
			}
			prev = line
		case <-timeout:
			tb.Fatalf("no %q / %q on the event stream within 10s", first, second)
		}
	}
}

// waitClosed waits for the server to end the stream.
func (s *sseStream) waitClosed(tb testing.TB) {
	tb.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-s.lines:
			if !ok {
				return
			}
		case <-timeout:
			tb.Fatal("event stream still open 5s after the server exited")
		}
	}
}
