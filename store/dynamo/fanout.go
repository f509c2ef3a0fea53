package dynamo

// This file is the fan-out mode of Watch (Options.Fanout): instead of every
// process reading every shard of the table's stream (which DynamoDB Streams
// throttles past about two readers per shard, and which costs processes ×
// writes reads), processes tell each other.
//
//   - Direct: a process that appends tells every other process registered in
//     the table (peers.go), over HTTP, at once. This is what makes events
//     fast: one HTTP hop after the write returns.
//   - Stream: Options.Fanout.Leases processes (one by default) hold a lease
//     (lease.go, a conditional item in the table) and read the stream, from
//     the checkpoint the previous holder left, and pass what they read to
//     every process the same way. This covers appends made by programs that
//     are not in fan-out mode and direct messages that were lost (a
//     process that died between its write and its message, a peer not yet
//     known to the writer), at the stream's pace.
//
// Every change so reaches a process at least twice (direct and through the
// stream); each process keeps the highest seq it delivered per record and
// drops what is not newer, so a record's changes still come in seq order
// with at most repeats (store.Watcher's contract). A process that may have
// missed messages (a sender gave up, or skipped batches) delivers a Change
// with Gap set.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/dynamerge/dynamerge/store"
)

// Default settings of the fan-out mode.
const (
	// DefaultFanoutLeases is how many processes read the stream. One
	// reader per shard leaves DynamoDB Streams' five GetRecords per second
	// per shard to it alone; two would halve the time to take over after a
	// reader dies, at twice the stream reads and messages.
	DefaultFanoutLeases = 1
	// DefaultLeaseTTL is how long a lease lasts unless renewed; it is
	// renewed every third of it. A dead reader's stream is taken over
	// within about this long.
	DefaultLeaseTTL = 10 * time.Second
	// DefaultPeerRefresh is how often a process re-reads the registry of
	// processes. A new process waits this long (and a little more) in its
	// first Watch, so that every other process knows it before Watch
	// returns.
	DefaultPeerRefresh = 2 * time.Second
	// DefaultPeerTTL is how long a registration lasts unless renewed (every
	// third of it): a process that died stops receiving messages after it.
	DefaultPeerTTL = 30 * time.Second
	// DefaultFanoutPoll is the leased reader's poll of an idle shard. With
	// one reader per shard it may poll at 5 per second, Streams' limit.
	DefaultFanoutPoll = 200 * time.Millisecond
	// fanoutQueue bounds the changes waiting for one peer or one local
	// watch; past it they are dropped and the receiver is told of a gap.
	fanoutQueue = 1 << 16
	// PeerPath is the path of the peer endpoint (FanoutHandler).
	PeerPath = "/v1/peer/changes"
)

// FanoutOptions turns on the fan-out mode of Watch. Every process of a
// deployment in this mode needs the same Secret and an URL the others can
// reach; zero durations mean defaults.
type FanoutOptions struct {
	// URL is where the other processes reach this one's FanoutHandler,
	// e.g. "http://10.0.3.7:7071" (required).
	URL string
	// Secret authenticates processes to each other (required, at least 16
	// bytes): sent as a bearer token, compared in constant time.
	Secret string
	// Leases is how many processes read the stream. Defaults to
	// DefaultFanoutLeases.
	Leases int
	// LeaseTTL defaults to DefaultLeaseTTL, PeerRefresh to
	// DefaultPeerRefresh, PeerTTL to DefaultPeerTTL.
	LeaseTTL, PeerRefresh, PeerTTL time.Duration
	// Stream configures the leased stream reader; its Poll defaults to
	// DefaultFanoutPoll times Leases, and its MinPoll is at least that, so
	// the readers together never exceed five GetRecords per second on a
	// shard.
	Stream StreamOptions
	// Client sends the messages. Defaults to a client with a 2 s timeout.
	Client *http.Client
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Validate reports a missing or unusable field by name.
func (o *FanoutOptions) Validate() error {
	switch {
	case o.URL == "":
		return errors.New("fanout: URL is required (where the other processes reach this one)")
	case len(o.Secret) < 16:
		return errors.New("fanout: Secret must be at least 16 bytes, and the same in every process")
	case o.Leases < 0 || o.Leases > 8:
		return errors.New("fanout: Leases must be between 1 and 8")
	}
	return nil
}

func (o FanoutOptions) withDefaults() FanoutOptions {
	if o.Leases <= 0 {
		o.Leases = DefaultFanoutLeases
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.PeerRefresh <= 0 {
		o.PeerRefresh = DefaultPeerRefresh
	}
	if o.PeerTTL <= 0 {
		o.PeerTTL = DefaultPeerTTL
	}
	if o.Stream.Poll <= 0 {
		// Readers of one shard share its five GetRecords per second.
		o.Stream.Poll = time.Duration(o.Leases) * DefaultFanoutPoll
	}
	// Never more than that, busy or idle: no throttling by design.
	o.Stream.MinPoll = max(o.Stream.MinPoll, time.Duration(o.Leases)*DefaultFanoutPoll)
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 2 * time.Second}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Stream.Logger = o.Logger
	return o
}

// fanout is a store's fan-out state; zero (off) unless Options.Fanout is
// set and Watch was called.
type fanout struct {
	once     sync.Once
	started  chan struct{} // closed once registered and known to the others
	startErr error
	stop     context.CancelFunc
	stopped  chan struct{} // closed when the background loops have ended

	opts FanoutOptions
	id   string // this process's registration, random
	log  *slog.Logger

	mu      sync.Mutex
	on      bool
	watches map[*localWatch]struct{}
	seen    seenSeqs
	peers   map[string]*sender // by registration id
	lease   leaseStats
}

// FanoutStats are counters of the fan-out mode, for tests and metrics.
type FanoutStats struct {
	Peers         int    // other processes known
	Leases        uint64 // leases taken (a reader started)
	LeasesLost    uint64 // leases lost or given up
	StreamChanges uint64 // changes read from the stream by this process
	Sent, Dropped uint64 // changes sent to peers, and given up on
	Received      uint64 // changes received from peers
	StreamReads   uint64 // GetRecords calls made by this process's reader
}

// FanoutStats returns the counters of the fan-out mode.
func (s *Store) FanoutStats() FanoutStats {
	f := &s.fan
	f.mu.Lock()
	defer f.mu.Unlock()
	st := FanoutStats{
		Peers:         len(f.peers),
		Leases:        f.lease.taken.Load(),
		LeasesLost:    f.lease.lost.Load(),
		StreamChanges: f.lease.changes.Load(),
		Received:      f.lease.received.Load(),
		StreamReads:   f.lease.reads.Load(),
	}
	for _, p := range f.peers {
		st.Sent += p.sent.Load()
		st.Dropped += p.dropped.Load()
	}
	return st
}

// watchFanout is Watch in fan-out mode. The first call registers the
// process and starts the background loops, which run until the store is
// closed; every call gets its own channel.
func (s *Store) watchFanout(ctx context.Context) (<-chan store.Change, error) {
	f := &s.fan
	if err := s.opts.Fanout.Validate(); err != nil {
		return nil, fmt.Errorf("dynamo: watch %s: %w", s.table, err)
	}
	f.once.Do(func() { s.startFanout() })
	select {
	case <-f.started:
	case <-ctx.Done():
		return nil, fmt.Errorf("dynamo: watch %s: %w", s.table, ctx.Err())
	}
	if f.startErr != nil {
		// Let a later Watch try again.
		f.once = sync.Once{}
		return nil, fmt.Errorf("dynamo: watch %s: %w", s.table, f.startErr)
	}
	w := newLocalWatch()
	f.mu.Lock()
	f.watches[w] = struct{}{}
	f.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
		case <-f.stopped:
		}
		f.mu.Lock()
		delete(f.watches, w)
		f.mu.Unlock()
		w.close()
	}()
	return w.out, nil
}

// startFanout registers the process and starts its loops; f.started is
// closed when Watch may return.
func (s *Store) startFanout() {
	f := &s.fan
	f.opts = s.opts.Fanout.withDefaults()
	f.started = make(chan struct{})
	f.stopped = make(chan struct{})
	f.log = f.opts.Logger.With("table", s.table)
	var b [8]byte
	rand.Read(b[:])
	f.id = hex.EncodeToString(b[:])
	ctx, cancel := context.WithCancel(context.Background())
	f.mu.Lock()
	f.watches = make(map[*localWatch]struct{})
	f.peers = make(map[string]*sender)
	f.on = true
	f.stop = cancel
	f.mu.Unlock()
	go func() {
		defer close(f.stopped)
		if err := s.register(ctx); err != nil {
			f.mu.Lock()
			f.on = false
			f.mu.Unlock()
			f.startErr = err
			close(f.started)
			return
		}
		if err := s.refreshPeers(ctx); err != nil {
			f.log.Warn("dynamo: fanout: reading the other processes failed; retrying", "err", err)
		}
		// Every other process re-reads the registry within PeerRefresh:
		// after that, every append made anywhere is sent here too.
		ready := time.AfterFunc(f.opts.PeerRefresh+f.opts.PeerRefresh/4, func() { close(f.started) })
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); s.peerLoop(ctx) }()
		go func() { defer wg.Done(); s.leaseLoop(ctx) }()
		wg.Wait()
		if ready.Stop() {
			f.startErr = ErrClosed
			close(f.started)
		}
		s.deregister()
		f.mu.Lock()
		for _, p := range f.peers {
			p.close()
		}
		f.on = false
		f.mu.Unlock()
	}()
}

// stopFanout ends the background loops (Close).
func (s *Store) stopFanout() {
	f := &s.fan
	f.mu.Lock()
	stop, stopped := f.stop, f.stopped
	f.mu.Unlock()
	if stop != nil {
		stop()
		<-stopped
	}
}

// announce tells this process's watches and every peer that this process
// appended entry seq of key. Called by Append after it succeeded; a no-op
// unless fan-out is on.
func (s *Store) announce(key store.Key, seq uint64, meta store.AppendMeta) {
	f := &s.fan
	f.mu.Lock()
	on := f.on
	f.mu.Unlock()
	if !on {
		return
	}
	c := store.Change{Key: key, Seq: seq, Heads: meta.Heads, Deleted: meta.Deleted}
	s.deliver(c)
	s.sendAll([]store.Change{c})
}

// deliver hands a change to every local watch unless it is not newer than
// what was delivered for its record (a repeat, or an older one overtaken).
func (s *Store) deliver(c store.Change) {
	f := &s.fan
	f.mu.Lock()
	defer f.mu.Unlock()
	if !c.Gap && !f.seen.advance(c.Key, c.Seq) {
		return
	}
	for w := range f.watches {
		w.push(c)
	}
}

// changeQueue holds changes for one consumer goroutine (a local watch, or
// the sender to one peer), so that whoever delivers never waits for it. Past
// fanoutQueue changes it drops what comes and remembers that it did.
type changeQueue struct {
	mu    sync.Mutex
	items []store.Change
	lost  bool          // changes were dropped since the last take
	wake  chan struct{} // signalled on push
}

func newChangeQueue() changeQueue { return changeQueue{wake: make(chan struct{}, 1)} }

// push queues cs, or drops them when the queue is full; it reports whether
// they were queued.
func (q *changeQueue) push(cs ...store.Change) bool {
	q.mu.Lock()
	ok := len(q.items)+len(cs) <= fanoutQueue
	if ok {
		q.items = append(q.items, cs...)
	} else {
		q.lost = true
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return ok
}

// take empties the queue; lost says whether changes were dropped before
// these.
func (q *changeQueue) take() (items []store.Change, lost bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	items, lost = q.items, q.lost
	q.items, q.lost = nil, false
	return items, lost
}

// localWatch is one Watch's channel, fed through a changeQueue.
type localWatch struct {
	out    chan store.Change
	q      changeQueue
	closed chan struct{}
}

func newLocalWatch() *localWatch {
	w := &localWatch{out: make(chan store.Change), q: newChangeQueue(), closed: make(chan struct{})}
	go w.pump()
	return w
}

func (w *localWatch) push(c store.Change) { w.q.push(c) }

func (w *localWatch) close() { close(w.closed) }

// pump moves queued changes to out, blocking on a slow consumer (the
// queue takes the back-pressure), and closes out when the watch ends. After
// dropped changes it delivers a gap first.
func (w *localWatch) pump() {
	defer close(w.out)
	for {
		q, lost := w.q.take()
		if lost {
			q = append([]store.Change{{Gap: true}}, q...)
		}
		for _, c := range q {
			select {
			case w.out <- c:
			case <-w.closed:
				return
			}
		}
		select {
		case <-w.q.wake:
		case <-w.closed:
			return
		}
	}
}

// seenSeqs keeps the highest seq delivered per record, in two generations
// of bounded size: a record forgotten costs at most one repeat.
type seenSeqs struct {
	cur, old map[store.Key]uint64
}

const seenGeneration = 1 << 16

// advance records seq for k and reports whether it is newer than what was
// recorded.
func (s *seenSeqs) advance(k store.Key, seq uint64) bool {
	if s.cur == nil {
		s.cur = make(map[store.Key]uint64)
	}
	last, ok := s.cur[k]
	if !ok {
		last = s.old[k]
	}
	if seq <= last {
		return false
	}
	if !ok && len(s.cur) >= seenGeneration {
		s.old, s.cur = s.cur, make(map[store.Key]uint64)
	}
	s.cur[k] = seq
	return true
}
