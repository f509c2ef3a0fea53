package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// inProcess is the program run in-process by startRun.
type inProcess struct {
	addr   string // host:port it listens on
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

// startRun runs the program in-process with args and env (on top of
// --addr 127.0.0.1:0, JSON logs and one worker) and waits for its start-up
// log line. It stops the program at the end of the test if stop was not
// called.
func startRun(t *testing.T, args []string, env map[string]string) *inProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &inProcess{logs: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	args = append([]string{"--addr", "127.0.0.1:0", "--log-format", "json"}, args...)
	done := p.done // stop clears p.done before run returns
	go func() { done <- run(ctx, args, envMap(env), io.Discard, p.logs) }()
	t.Cleanup(func() {
		if p.done != nil {
			if err := p.stop(); err != nil {
				t.Errorf("run: %v", err)
			}
		}
	})
	for deadline := time.Now().Add(30 * time.Second); p.addr == ""; time.Sleep(10 * time.Millisecond) {
		select {
		case err := <-p.done:
			p.done = nil
			t.Fatalf("run returned early: %v\n%s", err, p.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no start-up log within 30s\n%s", p.logs.String())
		}
		p.addr = p.logs.startedAddr()
	}
	return p
}

// stop cancels the program's context, as SIGTERM does, and returns what run
// returned (an error if it took over 30 s).
func (p *inProcess) stop() error {
	p.cancel()
	done := p.done
	p.done = nil
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		return errors.New("run did not return within 30s of cancel")
	}
}

// startedAddr returns the address of the "dynamerge started" log line.
func (s *syncBuffer) startedAddr() string {
	for _, line := range strings.Split(s.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "dynamerge started" {
			a, _ := m["addr"].(string)
			return a
		}
	}
	return ""
}

// TestRunServesUntilCancelled runs the program in-process: it serves,
// answers /readyz, and returns nil once its context is cancelled.
func TestRunServesUntilCancelled(t *testing.T) {
	p := startRun(t, []string{"--store", "bolt:" + filepath.Join(t.TempDir(), "db")}, nil)
	resp, err := http.Get("http://" + p.addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, want := resp.StatusCode, http.StatusOK; got != want {
		t.Fatalf("/readyz status %d, want %d", got, want)
	}

	if err := p.stop(); err != nil {
		t.Fatalf("run after cancel: %v, want nil\n%s", err, p.logs.String())
	}
	if !strings.Contains(p.logs.String(), `"msg":"shutdown complete"`) {
		t.Errorf("no shutdown log:\n%s", p.logs.String())
	}
}

// TestRunStartupFailures: failures after configuration are runtime errors
// (exit 1) that say what failed.
func TestRunStartupFailures(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"address in use", []string{"--addr", taken.Addr().String()}, "--addr"},
		{"store path unusable", []string{"--store", "bolt:" + filepath.Join(notADir, "db")}, "open bolt store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{"--addr", "127.0.0.1:0", "--store", "bolt:" + filepath.Join(dir, "data", "db")}, tt.args...)
			// No store is left behind: the port is taken before the store
			// is opened.
			defer func() {
				if _, err := os.Stat(filepath.Join(dir, "data")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the store's folder exists after a failed start (stat: %v)", err)
				}
			}()
			err := run(context.Background(), args, envMap(nil), io.Discard, io.Discard)
			if err == nil {
				t.Fatal("run succeeded, want an error")
			}
			if errors.Is(err, errUsage) {
				t.Errorf("error %v is a usage error, want a runtime one", err)
			}
			if got, want := exitCode(err, io.Discard), exitError; got != want {
				t.Errorf("exitCode()=%d, want %d", got, want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

// TestRunSlowClients: the binary serves with the server package's HTTP
// policy (issue 18, items 2 and 3): 100 KiB of headers get 431 (it allowed
// 1 MiB), and a body trickling below --min-body-rate is answered 408 and
// cut after --body-timeout (it was held open for as long as the client
// liked).
func TestRunSlowClients(t *testing.T) {
	p := startRun(t, []string{"--store", "bolt:" + filepath.Join(t.TempDir(), "db"), "--body-timeout", "300ms", "--min-body-rate", "1KiB"}, nil)
	status := func(conn net.Conn) int {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	dial := func(head string) net.Conn {
		conn, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if _, err := io.WriteString(conn, head); err != nil {
			t.Fatal(err)
		}
		return conn
	}

	big := dial("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("a", 100<<10) + "\r\n\r\n")
	if got := status(big); got != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("100 KiB of headers: status %d, want 431", got)
	}

	slow := dial("POST /v1/sync HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
	start := time.Now()
	go func() {
		for i := 0; i < 100; i++ {
			time.Sleep(50 * time.Millisecond)
			if _, err := slow.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()
	if got := status(slow); got != http.StatusRequestTimeout {
		t.Fatalf("trickled body: status %d, want 408", got)
	}
	if held := time.Since(start); held > 2*time.Second {
		t.Fatalf("trickled body held %s, want about --body-timeout", held)
	}
}
