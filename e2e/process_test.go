package e2e

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildBinary builds cmd/dynamerge into a temporary directory of tb.
func buildBinary(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "dynamerge")
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/dynamerge")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build ./cmd/dynamerge: %v\n%s", err, out)
	}
	tb.Logf("built %s in %v", bin, time.Since(start).Round(time.Millisecond))
	return bin
}

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// proc is the dynamerge binary running as a child process, in its own
// process group so that a kill takes its workers down with it, as a machine
// crash would.
type proc struct {
	cmd    *exec.Cmd
	stderr *strings.Builder
	mu     *sync.Mutex
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.b.Len() > 1<<20 { // keep the tail bounded
		s := w.b.String()
		w.b.Reset()
		w.b.WriteString(s[len(s)/2:])
	}
	return w.b.Write(p)
}

// startProc starts the binary on addr and the bolt file, and waits until
// /healthz answers.
func startProc(tb testing.TB, bin, addr, dbPath string) *proc {
	tb.Helper()
	return startBinary(tb, bin, addr, 30*time.Second, "--store", "bolt:"+dbPath)
}

// startBinary starts the binary on addr with args, and waits until
// /healthz answers, at most wait.
func startBinary(tb testing.TB, bin, addr string, wait time.Duration, args ...string) *proc {
	tb.Helper()
	p := &proc{stderr: &strings.Builder{}, mu: &sync.Mutex{}}
	p.cmd = exec.Command(bin, append([]string{"--addr", addr, "--log-level", "warn"}, args...)...)
	p.cmd.Env = os.Environ()
	p.cmd.Stderr = lockedWriter{p.mu, p.stderr}
	p.cmd.Stdout = lockedWriter{p.mu, p.stderr}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", bin, err)
	}
	deadline := time.Now().Add(wait)
	hc := &http.Client{Timeout: time.Second}
	for {
		resp, err := hc.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if p.exited() || time.Now().After(deadline) {
			p.kill()
			tb.Fatalf("dynamerge did not become healthy on %s (last error %v); output:\n%s", addr, err, p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

func (p *proc) exited() bool {
	// ProcessState is only set by Wait; probe with signal 0 instead.
	return p.cmd.Process.Signal(syscall.Signal(0)) != nil
}

// kill SIGKILLs the whole process group and reaps the server process.
func (p *proc) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	_ = p.cmd.Wait()
}

// stop asks for a clean shutdown and waits for it.
func (p *proc) stop(tb testing.TB) {
	tb.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			tb.Errorf("dynamerge exited after SIGTERM: %v; output:\n%s", err, p.output())
		}
	case <-time.After(30 * time.Second):
		tb.Errorf("dynamerge did not stop within 30s of SIGTERM; output:\n%s", p.output())
		p.kill()
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) // stray workers
}

func requireUnix(tb testing.TB) {
	tb.Helper()
	if runtime.GOOS == "windows" {
		tb.Skip("needs process groups and SIGKILL")
	}
}
