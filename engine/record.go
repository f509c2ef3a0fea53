package engine

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/crdt/worker"
	"github.com/dynamerge/dynamerge/store"
)

// record is one hot record: its change graph and where its log stands.
type record struct {
	key store.Key
	// poolKey names the record's document in the worker pool.
	poolKey string

	// Cache bookkeeping, guarded by Engine.mu.
	refs    int           // pins: a record with refs > 0 is never evicted
	elem    *list.Element // position in Engine.lru
	charged int64         // Go-side bytes counted in Engine.goBytes
	evicted bool          // removed from the cache; must not be reused

	// ready is closed when the first load finished; loadErr says how.
	ready   chan struct{}
	loadErr error

	// cost is the record's current Go-side size, updated under mu and read
	// under Engine.mu (hence atomic).
	cost atomic.Int64

	mu      sync.Mutex // guards the fields below
	graph   *crdt.Graph
	seq     uint64     // highest log seq merged into graph
	snap    []byte     // newest snapshot known, nil for none
	snapSeq uint64     // seq the snapshot covers
	tail    []logEntry // entries after snapSeq, ascending, gap-free
	tailN   int        // changes in tail (what compaction would fold)

	// Group commit: pushes waiting for the record's writer, guarded by qmu.
	// writing is true while a goroutine holds the record's writer slot; only
	// the holder runs Pool.Apply or Pool.Save for the record, so the worker's
	// document at the record's seq is always the durable one.
	qmu     sync.Mutex
	queue   []*push
	writing bool

	compacting atomic.Bool
}

// logEntry is a log entry merged into the graph.
type logEntry struct {
	seq     uint64
	changes []byte
	n       int // number of change chunks
}

func newRecord(key store.Key) *record {
	return &record{
		key:     key,
		poolKey: key.String(),
		ready:   make(chan struct{}),
		graph:   crdt.NewGraph(),
	}
}

// perChangeOverhead is the Go heap a change costs beyond its raw bytes: the
// crdt.Change (hash, deps, actor, …), the graph's dependency indices, and its
// entry in the hash index. Measured by TestRecordCost (Go 1.26, amd64, 20
// records of 100 small changes, ~117 B raw each): 31–37 KB of Go heap per
// record, i.e. 190–255 B per change beyond the raw bytes (~310 under
// -race); we charge 300. The same record loaded in a worker costs 0.66–1.4
// MB of worker RSS (DESIGN.md measured ~1.5 MB with more text), which is why
// the cache counts Pool.RSS() as well.
const perChangeOverhead = 300

// workerRecordRSS is the worker RSS a small record is assumed to free when
// evicted, until the next RSS measurement (see perChangeOverhead).
const workerRecordRSS = 1 << 20

// updateCostLocked recomputes the record's Go-side size; r.mu is held.
func (r *record) updateCostLocked() {
	c := r.graph.Bytes() + int64(r.graph.Len())*perChangeOverhead + int64(len(r.snap))
	r.cost.Store(c)
}

// base is an immutable view of the record's state, captured under mu, from
// which a worker can rebuild the document without taking any lock. It must
// not lock: the worker calls it in the middle of a Pool call, and a lock held
// across a Pool call could deadlock with it.
type base struct {
	snap    []byte
	snapSeq uint64
	tail    []logEntry // entries never change once appended; the slice is capped
}

func (r *record) captureLocked() base {
	return base{snap: r.snap, snapSeq: r.snapSeq, tail: r.tail[:len(r.tail):len(r.tail)]}
}

// fn returns a BaseFunc giving the captured state plus extra change chunks,
// labelled seq (the label the caller passes to the pool as fromSeq).
func (b base) fn(seq uint64, extra []byte) worker.BaseFunc {
	return func() (worker.Base, error) {
		n := len(extra)
		for _, e := range b.tail {
			n += len(e.changes)
		}
		changes := make([]byte, 0, n)
		for _, e := range b.tail {
			changes = append(changes, e.changes...)
		}
		changes = append(changes, extra...)
		return worker.Base{Seq: seq, Snapshot: b.snap, Changes: changes}, nil
	}
}

// absorbLocked merges log entries read from the store into the record.
// Entries at or below r.seq are skipped (a refresh may race with our own
// writer committing the same entry). It validates every entry before
// changing anything, so on error the record is unchanged; an entry that
// parses but does not fit the graph means the store and the record disagree,
// and the caller must drop the record.
func (r *record) absorbLocked(entries []store.Entry) error {
	type parsed struct {
		e  store.Entry
		cs []crdt.Change
	}
	var todo []parsed
	next := r.seq + 1
	for _, e := range entries {
		if e.Seq < next {
			continue
		}
		if e.Seq != next {
			return fmt.Errorf("engine: %s: log gap: want seq %d, got %d", r.key, next, e.Seq)
		}
		cs, err := crdt.Split(e.Changes)
		if err != nil {
			return fmt.Errorf("engine: %s: log entry %d: %w", r.key, e.Seq, err)
		}
		todo = append(todo, parsed{e, cs})
		next++
	}
	for _, p := range todo {
		if err := r.addLocked(p.cs); err != nil {
			return fmt.Errorf("engine: %s: log entry %d: %w", r.key, p.e.Seq, err)
		}
		r.tail = append(r.tail, logEntry{seq: p.e.Seq, changes: p.e.Changes, n: len(p.cs)})
		r.tailN += len(p.cs)
		r.seq = p.e.Seq
	}
	r.updateCostLocked()
	return nil
}

func (r *record) addLocked(cs []crdt.Change) error {
	for _, c := range cs {
		if err := r.graph.Add(c); err != nil {
			return err
		}
	}
	return nil
}

// load fills a fresh record from the store: the snapshot's changes (split
// out of the saved document by a worker: trusted bytes we wrote, but still
// automerge-go work, which stays out of this process) plus the log after it.
func (e *Engine) load(ctx context.Context, r *record) error {
	e.stats.loads.Add(1)
	sctx, cancel := context.WithTimeout(ctx, e.opts.StoreTimeout)
	rec, err := e.store.Load(sctx, r.key)
	cancel()
	if errors.Is(err, store.ErrNotFound) {
		return nil // a record nobody wrote yet: empty
	}
	if err != nil {
		e.stats.storeErrors.Add(1)
		return fmt.Errorf("%w: load %s: %w", ErrUnavailable, r.key, err)
	}
	g := crdt.NewGraph()
	var snap []byte
	var snapSeq uint64
	if rec.Snapshot != nil {
		wctx, cancel := context.WithTimeout(ctx, workerTimeout)
		raw, err := e.pool.Changes(wctx, rec.Snapshot.Data)
		cancel()
		if err != nil {
			return fmt.Errorf("%w: load %s: changes of snapshot %d: %w", ErrUnavailable, r.key, rec.Snapshot.Seq, err)
		}
		var cs []crdt.Change
		if len(raw) > 0 { // an empty document has no change
			if cs, err = crdt.Split(raw); err != nil {
				return fmt.Errorf("engine: load %s: snapshot %d: %w", r.key, rec.Snapshot.Seq, err)
			}
		}
		for _, c := range cs {
			if err := g.Add(c); err != nil {
				return fmt.Errorf("engine: load %s: snapshot %d: %w", r.key, rec.Snapshot.Seq, err)
			}
		}
		snap, snapSeq = rec.Snapshot.Data, rec.Snapshot.Seq
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.graph, r.snap, r.snapSeq, r.seq = g, snap, snapSeq, snapSeq
	r.tail, r.tailN = nil, 0
	if err := r.absorbLocked(rec.Entries); err != nil {
		return err
	}
	if r.seq != rec.Seq {
		return fmt.Errorf("engine: load %s: entries end at seq %d, record at %d", r.key, r.seq, rec.Seq)
	}
	return nil
}

// refresh merges log entries another process appended since the record was
// last read, so a hot record is never served stale. Cheap when there are
// none (one ReadLog). When the store compacted them away, the record is
// reloaded.
func (e *Engine) refresh(ctx context.Context, r *record) error {
	r.mu.Lock()
	seq := r.seq
	r.mu.Unlock()
	sctx, cancel := context.WithTimeout(ctx, e.opts.StoreTimeout)
	entries, err := e.store.ReadLog(sctx, r.key, seq)
	cancel()
	if errors.Is(err, store.ErrCompacted) {
		return e.reload(ctx, r)
	}
	if err != nil {
		e.stats.storeErrors.Add(1)
		return fmt.Errorf("%w: read log %s after %d: %w", ErrUnavailable, r.key, seq, err)
	}
	if len(entries) == 0 {
		return nil
	}
	r.mu.Lock()
	err = r.absorbLocked(entries)
	r.mu.Unlock()
	if err != nil {
		return e.reload(ctx, r)
	}
	return nil
}

// reload rebuilds the record from the store, in place.
func (e *Engine) reload(ctx context.Context, r *record) error {
	fresh := newRecord(r.key)
	if err := e.load(ctx, fresh); err != nil {
		return err
	}
	fresh.mu.Lock()
	defer fresh.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if fresh.seq < r.seq {
		return nil // someone else already moved further
	}
	r.graph, r.seq, r.snap, r.snapSeq, r.tail, r.tailN = fresh.graph, fresh.seq, fresh.snap, fresh.snapSeq, fresh.tail, fresh.tailN
	r.updateCostLocked()
	return nil
}
