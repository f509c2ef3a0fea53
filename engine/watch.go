package engine

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/store"
)

// Settings of the watch on other processes' writes (store.Watcher).
const (
	// watchRetryMin and watchRetryMax bound the backoff between attempts to
	// (re)start a watch that failed or ended.
	watchRetryMin = 250 * time.Millisecond
	watchRetryMax = 30 * time.Second
	// maxRemoteRefreshes bounds the background refreshes of cached records
	// that other processes wrote. When all are busy a change is not
	// refreshed eagerly: the next request for the record reads the log tail
	// anyway, so nothing is served stale, it only costs that request a read.
	maxRemoteRefreshes = 4
	// remoteRefreshRounds bounds how often one background refresh re-reads a
	// record that keeps changing while it refreshes.
	remoteRefreshRounds = 3
	// seenGeneration is how many records the engine remembers the last
	// published seq of, per generation (two are kept, ~100 B an entry). A
	// record forgotten costs at most one duplicate event, which the protocol
	// allows.
	seenGeneration = 1 << 16
)

// watchState is the engine's side of a store.Watcher: it turns the store's
// Changes into Events for subscribers and keeps cached records fresh.
type watchState struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the watch loop has returned

	seen seenSeqs // last seq published per record, local or remote

	refreshes chan struct{} // semaphore of background refreshes
	mu        sync.Mutex
	// want holds the records with a background refresh in flight, and the
	// seq each must reach. Only the watch loop adds to it.
	want map[store.Key]uint64

	changes, published, gaps, refreshed atomic.Uint64
}

// WatchStats are counters of the watch on other processes' writes; all zero
// when the store is not a store.Watcher.
type WatchStats struct {
	Watching  bool   // the store is a store.Watcher
	Changes   uint64 // Changes received from the store (including our own writes)
	Published uint64 // of those, published to subscribers (the rest were known)
	Gaps      uint64 // times the watch lost its place or restarted
	Refreshed uint64 // cached records refreshed in the background
}

// WatchStats returns the counters of the watch on other processes' writes.
func (e *Engine) WatchStats() WatchStats {
	ws := e.watch
	if ws == nil {
		return WatchStats{}
	}
	return WatchStats{
		Watching:  true,
		Changes:   ws.changes.Load(),
		Published: ws.published.Load(),
		Gaps:      ws.gaps.Load(),
		Refreshed: ws.refreshed.Load(),
	}
}

// startWatch watches the store for writes of other processes when it can
// tell about them (store.Watcher). It waits up to StoreTimeout for the first
// watch to be in place, so that once Open returns other processes' writes
// reach subscribers; when the store cannot be watched yet it logs why and
// keeps trying in the background. Called by Open before the engine serves.
func (e *Engine) startWatch() {
	w, ok := e.store.(store.Watcher)
	if !ok {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	ws := &watchState{
		cancel:    cancel,
		done:      make(chan struct{}),
		refreshes: make(chan struct{}, maxRemoteRefreshes),
		want:      make(map[store.Key]uint64),
	}
	e.watch = ws
	ready := make(chan struct{})
	go e.watchLoop(ctx, w, ready)
	t := time.NewTimer(e.opts.StoreTimeout)
	defer t.Stop()
	select {
	case <-ready:
	case <-t.C:
		e.log.Warn("engine: watching the store for other processes' writes is taking long; going on without waiting", "waited", e.opts.StoreTimeout)
	}
}

// stopWatch ends the watch and waits for its loop. Background refreshes it
// started are counted in e.wg, which Close waits for.
func (e *Engine) stopWatch() {
	if e.watch == nil {
		return
	}
	e.watch.cancel()
	<-e.watch.done
}

// watchLoop runs a watch until ctx is done, restarting it with backoff when
// it cannot start or ends. ready is closed after the first attempt.
func (e *Engine) watchLoop(ctx context.Context, w store.Watcher, ready chan struct{}) {
	ws := e.watch
	defer close(ws.done)
	backoff := watchRetryMin
	started := false // a watch ran before: a restart may have missed changes
	for attempt := 0; ; attempt++ {
		ch, err := w.Watch(ctx)
		if attempt == 0 {
			close(ready)
		}
		if ctx.Err() != nil {
			drain(ch)
			return
		}
		if err != nil {
			// Loud: without the watch, subscribers here miss other
			// processes' writes until the watch works.
			e.log.Error("engine: cannot watch the store for other processes' writes; retrying", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, watchRetryMax)
			continue
		}
		if started {
			e.watchGap("the store watch restarted")
		}
		started = true
		backoff = watchRetryMin
		for c := range ch {
			e.remoteChange(c)
		}
		if ctx.Err() != nil {
			return
		}
		e.log.Warn("engine: store watch ended; restarting it")
	}
}

// drain empties a watch channel that is ending (its context is done), so
// that the store's goroutines are not left blocked on a send.
func drain(ch <-chan store.Change) {
	if ch == nil {
		return
	}
	for range ch {
	}
}

// remoteChange handles one Change from the store: it publishes the change
// unless this engine already did (it made the write itself, or heard of a
// later one), and refreshes the record if it is cached and behind.
func (e *Engine) remoteChange(c store.Change) {
	ws := e.watch
	if c.Gap {
		e.watchGap("the store's change stream skipped ahead")
		return
	}
	ws.changes.Add(1)
	if err := c.Key.Validate(); err != nil {
		e.log.Warn("engine: store watch: ignoring a change with an invalid key", "err", err)
		return
	}
	heads, err := crdt.ParseHashes(c.Heads)
	if err != nil {
		e.log.Warn("engine: store watch: ignoring a change with unreadable heads", "key", c.Key.String(), "seq", c.Seq, "err", err)
		return
	}
	if ws.seen.advance(c.Key, c.Seq) {
		ws.published.Add(1)
		e.subs.publish(c.Key, heads, c.Deleted, nil)
	}
	e.refreshRemote(c.Key, c.Seq)
}

// watchGap handles a loss of the watch's place: events of other processes'
// writes may have been missed, and subscribers cannot be told which. Every
// subscription is closed instead, so that its client resubscribes and syncs
// to catch up (what client.Events and EventSource do when a stream ends);
// new subscriptions are served as usual. Gaps are rare: the stream trimmed
// past the watch's position (a day behind), or the stream was replaced.
func (e *Engine) watchGap(why string) {
	e.watch.gaps.Add(1)
	n := e.subs.resetAll()
	e.log.Warn("engine: events of other processes' writes may have been missed; closed every subscription so that clients resubscribe and sync", "why", why, "subscriptions", n)
}

// resetAll closes every current subscription (their cancel funcs become
// no-ops) and keeps accepting new ones. It returns how many it closed.
func (s *subscribers) resetAll() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.set)
	for sub := range s.set {
		close(sub.ch)
		delete(s.set, sub)
	}
	return n
}

// publishLocal tells subscribers about a write of this engine, unless the
// store's watch already reported it (or a later write of the record). The
// entry's bytes ride along when small enough (Event.Changes).
func (e *Engine) publishLocal(key store.Key, seq uint64, heads []crdt.Hash, deleted bool, entry []byte) {
	if e.watch == nil || e.watch.seen.advance(key, seq) {
		if len(entry) > e.opts.MaxEventChangeBytes {
			entry = nil
		}
		e.subs.publish(key, heads, deleted, entry)
	}
}

// refreshRemote brings a cached record up to seq in the background, so that
// a hot record does not wait for its next request to learn about another
// process's write. Records that are not cached are left alone (they are
// loaded afresh when asked for), and so is everything when the engine is
// closing or all refreshers are busy. Only the watch loop calls it.
func (e *Engine) refreshRemote(key store.Key, seq uint64) {
	ws := e.watch
	ws.mu.Lock()
	if want, ok := ws.want[key]; ok {
		// A refresh is in flight: raise its target instead.
		ws.want[key] = max(want, seq)
		ws.mu.Unlock()
		return
	}
	ws.mu.Unlock()
	r := e.pinCached(key)
	if r == nil {
		return
	}
	r.mu.Lock()
	behind := r.seq < seq
	r.mu.Unlock()
	if !behind {
		e.release(r)
		return
	}
	select {
	case ws.refreshes <- struct{}{}:
	default:
		e.release(r)
		return
	}
	if err := e.begin(); err != nil {
		<-ws.refreshes
		e.release(r)
		return
	}
	ws.mu.Lock()
	ws.want[key] = seq
	ws.mu.Unlock()
	go func() {
		defer e.wg.Done()
		defer e.release(r)
		defer func() { <-ws.refreshes }()
		for round := 1; ; round++ {
			ctx, cancel := context.WithTimeout(context.Background(), e.opts.StoreTimeout)
			err := e.refresh(ctx, r)
			cancel()
			r.mu.Lock()
			cur := r.seq
			r.mu.Unlock()
			ws.mu.Lock()
			want := ws.want[key]
			if err != nil || cur >= want || round == remoteRefreshRounds {
				delete(ws.want, key)
				ws.mu.Unlock()
				if err != nil {
					e.log.Debug("engine: background refresh failed; the next request reads the log", "key", key.String(), "err", err)
				} else {
					ws.refreshed.Add(1)
				}
				return
			}
			// Another process wrote again while we read: read again.
			ws.mu.Unlock()
		}
	}()
}

// pinCached returns the cached, loaded record of key, pinned (release it),
// or nil. It does not count as a use: a record other processes write but
// nobody here asks for still ages out of the cache.
func (e *Engine) pinCached(key store.Key) *record {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.records[key]
	if r == nil || r.evicted {
		return nil
	}
	select {
	case <-r.ready:
	default:
		return nil // being loaded: the load reads the newest log
	}
	if r.loadErr != nil {
		return nil
	}
	r.refs++
	return r
}

// seenSeqs remembers the highest seq published per record, in two
// generations so that memory stays bounded: when the current one is full it
// becomes the old one and the older is forgotten.
type seenSeqs struct {
	mu       sync.Mutex
	cur, old map[store.Key]uint64
}

// advance records seq for key and reports whether it is newer than any seq
// published for key so far.
func (s *seenSeqs) advance(key store.Key, seq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	last, ok := s.cur[key]
	if !ok {
		last, ok = s.old[key]
	}
	if ok && seq <= last {
		return false
	}
	if s.cur == nil || len(s.cur) >= seenGeneration {
		s.old, s.cur = s.cur, make(map[store.Key]uint64)
	}
	s.cur[key] = seq
	return true
}
