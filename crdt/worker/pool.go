package worker

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Pool runs Automerge work in child processes, records sharded across them by
// key. A worker that dies is replaced; the request that was running on it is
// retried once on a fresh worker, and refused with ErrPoison if it kills that
// one too. Other requests are retried transparently.
//
// # Crashes
//
// When a worker dies, every request in flight on it fails internally and
// becomes a suspect. A suspect is retried on the replacement in isolation:
// it holds its shard's isolation lock exclusively, so it is the only request
// in flight there, and its base is sent along (the replacement holds no
// documents). If it succeeds, its caller never knows; if the replacement
// dies too, the request alone killed it, and it is refused with ErrPoison.
// Requests that were merely queued behind a poison therefore see no error.
type Pool struct {
	opts   Options
	log    *slog.Logger
	env    []string
	slots  []*slot
	rr     atomic.Uint64 // round robin for stateless requests
	closed atomic.Bool
}

// slot is one shard: the worker process serving it, replaced when it dies.
type slot struct {
	pool *Pool
	idx  int

	// iso is held shared by every request in flight on the slot's worker
	// and exclusively by a suspect's retry, which is so confirmed in
	// isolation. It is released when the call ends (answer or death), not
	// when its caller gives up, so that a cancelled request still counts as
	// in flight.
	iso sync.RWMutex

	mu       sync.Mutex
	cur      *proc
	failures int       // consecutive failed starts and early idle deaths
	retryAt  time.Time // no start before this, after failures
	lastErr  error
}

// Restart back-off after failed starts.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 10 * time.Second
	// maxNotSent bounds retries of requests that never reached a worker
	// (it was dead already): each one means a new worker, so a bound keeps
	// a worker that dies at once from being restarted by a single request
	// for ever.
	maxNotSent = 3
	// healthyUptime: a worker that lived this long was not crash-looping.
	healthyUptime = time.Second
	// stopGrace is how long Close waits for a worker to exit on EOF.
	stopGrace = 5 * time.Second
)

func newPool(opts Options) (*Pool, error) {
	if opts.Procs <= 0 {
		opts.Procs = DefaultProcs
	}
	if opts.MemoryBytes <= 0 {
		opts.MemoryBytes = DefaultMemoryBytes
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	if len(opts.Command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("worker: find own executable: %w", err)
		}
		opts.Command = []string{exe}
	}
	p := &Pool{
		opts: opts,
		log:  opts.Logger,
		env:  append(os.Environ(), EnvWorker+"=1"),
	}
	for i := 0; i < opts.Procs; i++ {
		p.slots = append(p.slots, &slot{pool: p, idx: i})
	}
	// Start every worker now: a bad Command shows at once, and the first
	// requests do not pay for start-up.
	for _, s := range p.slots {
		if _, err := s.get(); err != nil {
			_ = p.close()
			return nil, err
		}
	}
	return p, nil
}

// shard returns the slot of a record; stateless requests (no key) go round
// robin.
func (p *Pool) shard(key string, stateless bool) *slot {
	if stateless {
		return p.slots[p.rr.Add(1)%uint64(len(p.slots))]
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return p.slots[h.Sum64()%uint64(len(p.slots))]
}

// do runs a request on the key's worker: it sends the base when the worker
// asks for it, retries requests that a worker death interrupted, and
// confirms suspects in isolation.
func (p *Pool) do(ctx context.Context, key string, req *message, base BaseFunc) (*message, error) {
	s := p.shard(key, req.Op == opChanges)
	var (
		suspect bool // a worker died with this request in flight
		notSent int
	)
	attach := func() error {
		if req.HasBase || base == nil {
			return nil
		}
		b, err := base()
		if err != nil {
			return fmt.Errorf("base: %w", err)
		}
		req.HasBase, req.BaseSeq, req.BaseSnapshot, req.BaseChanges = true, b.Seq, b.Snapshot, b.Changes
		return nil
	}
	for {
		if p.closed.Load() {
			return nil, ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var release func()
		if suspect {
			// The replacement holds no documents: fetch the base before
			// taking the shard for ourselves, not while holding it.
			if err := attach(); err != nil {
				return nil, err
			}
			if err := lockCtx(ctx, s.iso.TryLock, s.iso.Lock, s.iso.Unlock); err != nil {
				return nil, err
			}
			release = s.iso.Unlock
		} else {
			if err := lockCtx(ctx, s.iso.TryRLock, s.iso.RLock, s.iso.RUnlock); err != nil {
				return nil, err
			}
			release = s.iso.RUnlock
		}
		w, err := s.get()
		if err != nil {
			release()
			return nil, err
		}
		c := w.send(req, release)
		var r result
		select {
		case r = <-c.ch:
		case <-ctx.Done():
			// The answer, when it comes, is read and dropped by the
			// worker's reader; the call keeps its place until then.
			return nil, ctx.Err()
		}
		switch {
		case errors.Is(r.err, errNotSent):
			notSent++
			if notSent > maxNotSent {
				return nil, fmt.Errorf("%w: workers keep dying before a request reaches them", ErrUnavailable)
			}
			// The worker is dying (its pipe is broken) but its reader has
			// not finished with it yet: wait for that, so that get starts a
			// replacement instead of handing out the same corpse.
			select {
			case <-w.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			continue
		case errors.Is(r.err, errDied):
			if p.closed.Load() {
				return nil, ErrClosed
			}
			if suspect {
				p.log.Warn("worker: request killed a fresh worker in isolation; refusing it",
					"op", req.Op, "key", key, "bytes", len(req.Data))
				return nil, ErrPoison
			}
			suspect = true
			continue
		case r.err != nil:
			return nil, r.err
		}
		switch r.m.Status {
		case statusOK:
			return r.m, nil
		case statusNeedBase:
			if base == nil {
				return nil, fmt.Errorf("worker: %v needs the record's base, and the caller gave none", req.Op)
			}
			if req.HasBase {
				return nil, fmt.Errorf("worker: %v asked for the base again after getting it", req.Op)
			}
			if err := attach(); err != nil {
				return nil, err
			}
			continue
		default:
			return nil, answerErr(r.m)
		}
	}
}

// lockCtx takes a lock, or gives up when ctx is done: a request may wait
// on the isolation lock while a suspect is confirmed (a worker start and a
// base load). Giving up leaves a goroutine that releases the lock as soon as
// it gets it.
func lockCtx(ctx context.Context, try func() bool, lock, unlock func()) error {
	if try() {
		return nil
	}
	got := make(chan struct{})
	go func() {
		lock()
		close(got)
	}()
	select {
	case <-got:
		return nil
	case <-ctx.Done():
		go func() {
			<-got
			unlock()
		}()
		return ctx.Err()
	}
}

// get returns the slot's live worker, starting one if needed. After failed
// starts it backs off, failing requests with ErrUnavailable meanwhile.
func (s *slot) get() (*proc, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pool.closed.Load() {
		return nil, ErrClosed
	}
	if s.cur != nil && !s.cur.isDead() {
		if s.failures != 0 && time.Since(s.cur.started) > healthyUptime {
			s.failures = 0
		}
		return s.cur, nil
	}
	if wait := time.Until(s.retryAt); wait > 0 {
		return nil, fmt.Errorf("%w (slot %d, next start in %v): %w", ErrUnavailable, s.idx, wait.Round(time.Millisecond), s.lastErr)
	}
	p := s.pool
	stderr := newStderrWriter(p.opts.Stderr, fmt.Sprintf("dynamerge-worker[%d]: ", s.idx))
	log := p.log.With("worker_slot", s.idx)
	// Not the caller's context: a caller giving up must not count as a
	// failed start (startTimeout bounds the handshake).
	w, err := startProc(context.Background(), p.opts.Command, p.env, p.opts.MemoryBytes/int64(len(p.slots)), stderr, log, s.died)
	if err != nil {
		backoff := s.failed(err)
		log.Error("worker: start failed", "err", err, "failures", s.failures, "backoff", backoff)
		return nil, fmt.Errorf("%w (slot %d): %w", ErrUnavailable, s.idx, err)
	}
	s.cur = w
	go w.watch(p.opts.Timeout)
	return w, nil
}

// failed counts a failure to get a working worker and sets the back-off
// before the next start: none after the first failure (a worker killed
// from outside is replaced at once), then doubling from minBackoff. The
// caller holds s.mu.
func (s *slot) failed(err error) time.Duration {
	s.failures++
	s.lastErr = err
	var backoff time.Duration
	if s.failures > 1 {
		backoff = min(minBackoff<<min(s.failures-2, 16), maxBackoff)
	}
	s.retryAt = time.Now().Add(backoff)
	return backoff
}

// died handles the death of a worker that had started. One that died with
// requests in flight is replaced at once, so that their retries do not wait
// for a start: how often that happens is bounded by the requests (a poison
// costs two workers). One that died soon after start with nothing to do is
// crash-looping on its own: that counts as a failed start, with back-off.
func (s *slot) died(w *proc) {
	if s.pool.closed.Load() || !w.ready.Load() {
		return // Close, or a failed handshake, which get has counted
	}
	if uptime := time.Since(w.started); w.lost == 0 && uptime < healthyUptime {
		s.mu.Lock()
		backoff := s.failed(fmt.Errorf("worker %d exited (%s) %v after start, idle", w.pid, w.exit, uptime.Round(time.Millisecond)))
		failures := s.failures
		s.mu.Unlock()
		if backoff > 0 {
			s.pool.log.Error("worker: crash loop; backing off", "worker_slot", s.idx, "failures", failures, "backoff", backoff)
			return
		}
	}
	go func() { _, _ = s.get() }()
}

func (p *Pool) evict(key string) {
	s := p.shard(key, false)
	s.mu.Lock()
	w := s.cur
	s.mu.Unlock()
	if w != nil {
		w.sendNoReply(&message{Op: opEvict, Key: key})
	}
}

func (p *Pool) rss() int64 {
	var n int64
	for _, s := range p.slots {
		s.mu.Lock()
		w := s.cur
		s.mu.Unlock()
		if w != nil {
			n += w.rss()
		}
	}
	return n
}

func (p *Pool) close() error {
	if p.closed.Swap(true) {
		return nil
	}
	var wg sync.WaitGroup
	for _, s := range p.slots {
		s.mu.Lock()
		w := s.cur
		s.cur = nil
		s.mu.Unlock()
		if w != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.stop(stopGrace)
			}()
		}
	}
	wg.Wait()
	return nil
}
