package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a server started as a subprocess on 127.0.0.1. Its CPU time and
// resident memory are read from /proc for it and every descendant (the
// dynamerge worker processes), because what an operator pays for is the
// whole tree.
type proc struct {
	name string
	cmd  *exec.Cmd
	URL  string
	log  *os.File

	done    chan struct{} // closed when the process has exited
	waitErr error

	stopSampler chan struct{}
	samplerDone chan struct{}
	mu          sync.Mutex
	peakRSS     int64
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startProc runs bin with args (addrFlag set to a free loopback port) and
// waits until GET health answers 200. Output goes to logPath.
func startProc(ctx context.Context, name, bin string, args []string, env []string, addrFlag, health, logPath string) (*proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("%s: free port: %w", name, err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s: log: %w", name, err)
	}
	cmd := exec.Command(bin, append(args, addrFlag, addr)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	// Its own process group, so that a Ctrl-C of the runner reaches the
	// runner first and the runner stops the server in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("%s: start %s: %w", name, bin, err)
	}
	p := &proc{name: name, cmd: cmd, URL: "http://" + addr, log: lf, done: make(chan struct{}),
		stopSampler: make(chan struct{}), samplerDone: make(chan struct{})}
	go func() { p.waitErr = cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.done:
			lf.Close()
			return nil, fmt.Errorf("%s exited at start (%v); log %s:\n%s", name, p.waitErr, logPath, tail(logPath, 20))
		case <-ctx.Done():
			p.kill()
			return nil, ctx.Err()
		default:
		}
		resp, err := http.Get(p.URL + health)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			p.kill()
			return nil, fmt.Errorf("%s not ready after 60s; log %s:\n%s", name, logPath, tail(logPath, 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
	go p.sample()
	return p, nil
}

// sample tracks the peak resident memory of the process tree every 100 ms.
func (p *proc) sample() {
	defer close(p.samplerDone)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if _, rss, err := treeUsage(p.cmd.Process.Pid); err == nil {
			p.mu.Lock()
			p.peakRSS = max(p.peakRSS, rss)
			p.mu.Unlock()
		}
		select {
		case <-t.C:
		case <-p.stopSampler:
			return
		case <-p.done:
			return
		}
	}
}

// Usage returns the CPU seconds the tree used so far and its current RSS.
func (p *proc) Usage() (cpu float64, rss int64, err error) {
	return treeUsage(p.cmd.Process.Pid)
}

// ResetPeak starts a new peak-RSS window and returns the current RSS.
func (p *proc) ResetPeak() int64 {
	_, rss, _ := treeUsage(p.cmd.Process.Pid)
	p.mu.Lock()
	p.peakRSS = rss
	p.mu.Unlock()
	return rss
}

// PeakRSS returns the peak resident memory since start or ResetPeak.
func (p *proc) PeakRSS() int64 {
	_, rss, _ := treeUsage(p.cmd.Process.Pid)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.peakRSS = max(p.peakRSS, rss)
	return p.peakRSS
}

// Stop asks the server to shut down (SIGTERM: dynamerge finishes in-flight
// writes and stops its workers) and kills it after 30 s.
func (p *proc) Stop() error {
	select {
	case <-p.stopSampler:
	default:
		close(p.stopSampler)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.kill()
		<-p.done
		p.log.Close()
		return fmt.Errorf("%s: did not stop within 30s after SIGTERM; killed", p.name)
	}
	p.log.Close()
	var ee *exec.ExitError
	if p.waitErr != nil && !errors.As(p.waitErr, &ee) {
		return fmt.Errorf("%s: %w", p.name, p.waitErr)
	}
	if ee != nil && !ee.Exited() {
		return nil // ended by our signal
	}
	if ee != nil {
		return fmt.Errorf("%s: exit status %d; log %s", p.name, ee.ExitCode(), p.log.Name())
	}
	return nil
}

func (p *proc) kill() {
	// The whole group: a hung server's workers must not outlive it.
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
}

// treeUsage sums utime+stime (and the reaped children's times) and RSS over
// pid and its live descendants.
func treeUsage(root int) (cpu float64, rss int64, err error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0, err
	}
	all := map[int]procStat{}
	children := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		s, err := readStat(pid)
		if err != nil {
			continue
		}
		all[pid] = s
		children[s.ppid] = append(children[s.ppid], pid)
	}
	if _, ok := all[root]; !ok {
		return 0, 0, fmt.Errorf("process %d is gone", root)
	}
	page := int64(os.Getpagesize())
	stack := []int{root}
	for len(stack) > 0 {
		pid := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		s := all[pid]
		cpu += s.cpu + s.ccpu
		rss += s.rssPages * page
		stack = append(stack, children[pid]...)
	}
	return cpu, rss, nil
}

// clockTicks is USER_HZ, 100 on every Linux platform Go supports.
const clockTicks = 100

// procStat is what treeUsage needs of /proc/<pid>/stat.
type procStat struct {
	ppid      int
	cpu, ccpu float64 // seconds: the process's own, and its reaped children's
	rssPages  int64
}

func readStat(pid int) (s procStat, err error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return s, err
	}
	// The command name is in parentheses and may hold spaces: split after
	// the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return s, fmt.Errorf("malformed stat of %d", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15,
	// cutime 16, cstime 17, rss 24.
	if len(f) < 22 {
		return s, fmt.Errorf("short stat of %d", pid)
	}
	num := func(k int) float64 { v, _ := strconv.ParseFloat(f[k-3], 64); return v }
	s.ppid = int(num(4))
	s.cpu = (num(14) + num(15)) / clockTicks
	s.ccpu = (num(16) + num(17)) / clockTicks
	s.rssPages = int64(num(24))
	return s, nil
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// scrape reads a Prometheus text page and sums every sample by metric name
// (labels dropped), which is what the benchmarks need of counters.
func scrape(ctx context.Context, hc *http.Client, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: status %d", url, resp.StatusCode)
	}
	return parseMetrics(resp.Body)
}

func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.IndexAny(line, "{ ")
		if i < 0 {
			continue
		}
		name, rest := line[:i], line[i:]
		if rest[0] == '{' {
			j := strings.LastIndexByte(rest, '}')
			if j < 0 {
				continue
			}
			rest = rest[j+1:]
		}
		// The value comes first; an optional timestamp may follow.
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		out[name] += v
	}
	return out, sc.Err()
}
