package worker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Internal outcomes of a call that never reach a Pool's caller as such.
var (
	// errDied: the worker died while the request was in flight on it.
	errDied = errors.New("worker: worker died")
	// errNotSent: the request never reached the worker (it was dead
	// already), so it cannot have caused anything.
	errNotSent = errors.New("worker: worker gone before the request was sent")
)

// proc is one worker process as the pool sees it: a pipe pair with any
// number of requests in flight, matched to answers by ID.
type proc struct {
	log     *slog.Logger
	cmd     *exec.Cmd
	pid     int
	stdin   io.WriteCloser
	stderr  *stderrWriter
	started time.Time

	wmu sync.Mutex // one frame at a time on stdin

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]*call
	dead    bool
	closing bool // stopped on purpose: its end is not an incident

	done chan struct{} // closed when the process is gone and every call failed

	ready atomic.Bool // the handshake succeeded
	// Set before done is closed: how the process ended, and how many
	// requests were in flight then.
	exit string
	lost int
}

// call is one request in flight. finish is called exactly once: with the
// answer, or with errDied / errNotSent.
type call struct {
	ch      chan result // buffered: a caller that gave up never blocks the reader
	sent    time.Time
	release func() // run once when the call ends, whoever waits for it
	once    sync.Once
}

type result struct {
	m   *message
	err error
}

func (c *call) finish(r result) {
	c.once.Do(func() {
		c.ch <- r
		if c.release != nil {
			c.release()
		}
	})
}

// startProc starts a worker and waits for its handshake. onDeath runs after
// the process is gone and its calls failed.
func startProc(ctx context.Context, command []string, env []string, limit int64, stderr *stderrWriter, log *slog.Logger, onDeath func(*proc)) (*proc, error) {
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Env = env
	cmd.Stderr = stderr
	cmd.SysProcAttr = sysProcAttr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("worker: stdin pipe: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("worker: stdout pipe: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("worker: start %q: %w", command[0], err)
	}
	p := &proc{
		log:     log.With("worker_pid", cmd.Process.Pid),
		cmd:     cmd,
		pid:     cmd.Process.Pid,
		stdin:   stdin,
		stderr:  stderr,
		started: time.Now(),
		pending: make(map[uint64]*call),
		done:    make(chan struct{}),
		nextID:  1,
	}
	go p.read(bufio.NewReaderSize(stdout, 64<<10), onDeath)

	c := p.send(&message{Op: opHello, Limit: limit}, nil)
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	select {
	case r := <-c.ch:
		err := r.err
		if err == nil && r.m.Status != statusOK {
			err = fmt.Errorf("worker: handshake answered %d: %s", r.m.Status, r.m.Err)
		}
		if err == nil && r.m.Limit != int64(p.pid) {
			err = fmt.Errorf("worker: handshake from pid %d, started %d: is %q a worker?", r.m.Limit, p.pid, command[0])
		}
		if err != nil {
			p.kill()
			<-p.done
			if tail := stderr.Tail(); tail != "" {
				err = fmt.Errorf("%w (stderr: %s)", err, tail)
			}
			return nil, err
		}
	case <-ctx.Done():
		p.kill()
		<-p.done
		return nil, fmt.Errorf("worker: handshake: %w", ctx.Err())
	}
	p.ready.Store(true)
	return p, nil
}

// startTimeout bounds a worker's start-up handshake.
const startTimeout = 10 * time.Second

// send writes a request and returns its call. It never fails: a request that
// cannot be written finishes with errNotSent. The request's ID is set here.
func (p *proc) send(m *message, release func()) *call {
	c := &call{ch: make(chan result, 1), release: release, sent: time.Now()}
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		c.finish(result{err: errNotSent})
		return c
	}
	m.ID = p.nextID
	p.nextID++
	p.pending[m.ID] = c
	p.mu.Unlock()

	frame := m.encode()
	if len(frame)-4 > maxFrame {
		p.mu.Lock()
		delete(p.pending, m.ID)
		p.mu.Unlock()
		c.finish(result{err: fmt.Errorf("worker: %v request of %d bytes is over the %d-byte frame limit", m.Op, len(frame), maxFrame)})
		return c
	}
	p.wmu.Lock()
	_, err := p.stdin.Write(frame)
	p.wmu.Unlock()
	if err != nil {
		// The worker is gone (broken pipe); the reader will notice and
		// clean up. This request did not reach it.
		p.mu.Lock()
		delete(p.pending, m.ID)
		p.mu.Unlock()
		c.finish(result{err: errNotSent})
	}
	return c
}

// sendNoReply writes a request the worker does not answer (ID 0). It is
// best effort: a dead worker holds no documents to act on.
func (p *proc) sendNoReply(m *message) {
	m.ID = 0
	if p.isDead() {
		return
	}
	frame := m.encode()
	p.wmu.Lock()
	_, _ = p.stdin.Write(frame)
	p.wmu.Unlock()
}

func (p *proc) isDead() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dead
}

// inFlight returns how many requests wait for an answer and when the oldest
// was sent.
func (p *proc) inFlight() (n int, oldest time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.pending {
		if oldest.IsZero() || c.sent.Before(oldest) {
			oldest = c.sent
		}
	}
	return len(p.pending), oldest
}

// read delivers answers until the stream ends, then reaps the process and
// fails every call still in flight.
func (p *proc) read(r *bufio.Reader, onDeath func(*proc)) {
	var readErr error
	for {
		m, err := readMessage(r)
		if err != nil {
			readErr = err
			break
		}
		p.mu.Lock()
		c := p.pending[m.ID]
		delete(p.pending, m.ID)
		p.mu.Unlock()
		if c != nil { // nil: an answer to a request whose caller is gone
			c.finish(result{m: m})
		}
	}
	// A frame that does not decode means the stream is out of step: the
	// process is of no further use.
	p.kill()
	_ = p.stdin.Close()
	waitErr := p.cmd.Wait()

	p.mu.Lock()
	p.dead = true
	calls := p.pending
	p.pending = nil
	closing := p.closing
	p.mu.Unlock()

	p.exit, p.lost = exitStatus(p.cmd, waitErr), len(calls)
	attrs := []any{
		"status", p.exit,
		"uptime", time.Since(p.started).Round(time.Millisecond),
		"in_flight", len(calls),
	}
	switch {
	case closing:
		p.log.Debug("worker stopped", attrs...)
	default:
		if !errors.Is(readErr, io.EOF) && !errors.Is(readErr, io.ErrUnexpectedEOF) {
			attrs = append(attrs, "read_err", readErr)
		}
		attrs = append(attrs, "stderr_tail", p.stderr.Tail())
		p.log.Error("worker died", attrs...)
	}
	for _, c := range calls {
		c.finish(result{err: errDied})
	}
	close(p.done)
	if onDeath != nil {
		onDeath(p)
	}
}

func exitStatus(cmd *exec.Cmd, waitErr error) string {
	if cmd.ProcessState != nil {
		return cmd.ProcessState.String()
	}
	if waitErr != nil {
		return waitErr.Error()
	}
	return "unknown"
}

// watch kills the worker when a request has been in flight longer than
// timeout: a crafted input that hangs automerge-go must not block the
// record's shard forever. The kill counts as a death, so the hanging request
// is confirmed in isolation like one that crashes.
func (p *proc) watch(timeout time.Duration) {
	if timeout <= 0 {
		return
	}
	t := time.NewTicker(max(timeout/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
			if n, oldest := p.inFlight(); n > 0 && time.Since(oldest) > timeout {
				p.log.Error("worker: request exceeded the timeout; killing the worker",
					"timeout", timeout, "in_flight", n)
				p.kill()
				return
			}
		}
	}
}

// kill ends the process at once; its reader then fails what is in flight.
func (p *proc) kill() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
	}
}

// stop closes stdin, which a worker takes as the order to exit, and kills it
// if it has not within grace.
func (p *proc) stop(grace time.Duration) {
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
	p.wmu.Lock()
	_ = p.stdin.Close()
	p.wmu.Unlock()
	select {
	case <-p.done:
	case <-time.After(grace):
		p.kill()
		<-p.done
	}
}

// rss returns the process's resident memory, 0 if it is gone.
func (p *proc) rss() int64 {
	if p.isDead() {
		return 0
	}
	n, err := pidRSS(p.pid)
	if err != nil {
		return 0
	}
	return n
}

// stderrWriter passes a worker's stderr on, each line prefixed so that it is
// recognisable among the server's own logs, and keeps the last lines for the
// log entry of its death (where the Rust panic message is).
type stderrWriter struct {
	mu     sync.Mutex
	out    io.Writer
	prefix string
	line   []byte // incomplete line
	tail   []string
}

// What a death's log entry quotes of the worker's stderr: the lines that
// say why (a Rust panic, a Go fatal error or signal), else the last lines.
const (
	stderrKeepLines = 200
	stderrTailLines = 6
)

func newStderrWriter(out io.Writer, prefix string) *stderrWriter {
	if out == nil {
		out = os.Stderr
	}
	return &stderrWriter{out: out, prefix: prefix}
}

func (w *stderrWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			w.line = append(w.line, b...)
			if len(w.line) > 4096 { // no newline in sight: pass it on anyway
				w.emit()
			}
			break
		}
		w.line = append(w.line, b[:i]...)
		w.emit()
		b = b[i+1:]
	}
	return n, nil
}

func (w *stderrWriter) emit() {
	line := string(w.line)
	w.line = w.line[:0]
	_, _ = io.WriteString(w.out, w.prefix+line+"\n")
	w.tail = append(w.tail, line)
	if len(w.tail) > stderrKeepLines {
		w.tail = w.tail[len(w.tail)-stderrKeepLines:]
	}
}

// Tail returns the last lines written, and forgets them (they belong to the
// process that just ended).
func (w *stderrWriter) Tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.line) > 0 {
		w.emit()
	}
	var why []string
	for _, l := range w.tail {
		if strings.Contains(l, "panicked") || strings.HasPrefix(l, "fatal error") ||
			strings.HasPrefix(l, "SIG") || strings.HasPrefix(l, "panic:") {
			why = append(why, l)
		}
	}
	if len(why) == 0 {
		why = w.tail
	}
	if len(why) > stderrTailLines {
		why = why[len(why)-stderrTailLines:]
	}
	w.tail = nil
	return strings.Join(why, " | ")
}
