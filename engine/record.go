package engine

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/store"
)

// record is one hot record: its index, where its log stands, and (when
// something needed it lately) its materialized document.
type record struct {
	key store.Key

	// Cache bookkeeping, guarded by Engine.mu.
	refs    int           // pins: a record with refs > 0 is never evicted
	elem    *list.Element // position in Engine.lru
	charged int64         // bytes counted in Engine.goBytes
	evicted bool          // removed from the cache; must not be reused

	// ready is closed when the first load finished; loadErr says how.
	ready   chan struct{}
	loadErr error

	// cost is the record's current size, updated under mu and read under
	// Engine.mu (hence atomic).
	cost atomic.Int64
	// hasDoc tells the cache that the record holds a document it may drop.
	hasDoc atomic.Bool
	// ownMu serializes the changes the engine makes itself to the record
	// (SetDeleted): each takes the next seq of the engine's actor.
	ownMu sync.Mutex

	// mu guards the fields below. The writer validates a push under the
	// read lock (so pulls go on meanwhile); what changes the record takes
	// the write lock.
	mu        sync.RWMutex
	ix        *crdt.Index
	seq       uint64     // highest log seq merged into ix
	snap      []byte     // newest snapshot known (an Automerge document), nil for none
	snapSeq   uint64     // seq the snapshot covers
	tail      []logEntry // entries after snapSeq, ascending, gap-free
	tailN     int        // changes in tail (what compaction would fold)
	tailBytes int64
	doc       *crdt.Doc // the materialized document at docSeq, or nil
	docSeq    uint64
	docBytes  int64 // doc.MemoryBytes() when it was last updated
	// purged: the record's history was purged and nothing was appended
	// since (a tombstone); roots are the root changes of every purged
	// history of the key, which pushes may not bring back.
	purged bool
	roots  map[crdt.Hash]bool
	// updatedAt is when the record was last appended to, as far as this
	// process knows (the store's at load, then each entry's): the upper
	// bound a history gives changes stored before attribution existed.
	updatedAt time.Time
	// hist is the record's history in acceptance order, built on the first
	// request for it (History, Attribution) and extended by every entry
	// merged since; nil until then, and again when ix is replaced.
	hist *accepted

	// docMu serialises building and advancing the document: one request
	// materializes it, the others wait for it. Taken before mu.
	docMu sync.Mutex

	// Group commit: pushes waiting for the record's writer, guarded by qmu.
	// writing is true while a goroutine holds the record's writer slot.
	qmu     sync.Mutex
	queue   []*push
	writing bool

	compacting atomic.Bool
}

// logEntry is a log entry merged into the index.
type logEntry struct {
	seq     uint64
	changes []byte
	n       int         // number of change chunks
	hashes  []crdt.Hash // of the chunks, in order
	// by and at are the entry's attribution (store.Entry): who pushed each
	// change, and when the entry was accepted. Nil and zero for an entry
	// stored before attribution existed.
	by []string
	at time.Time
}

// goneFor reports ErrGone when a sync of the record with these pushed
// changes belongs to a purged history: a pull of a tombstone, or a change
// that is the root of a purged history. (A change that depends on the
// purged history is refused when it is written: its dependencies are
// missing from a tombstone.)
func (r *record) goneFor(pushed []crdt.Change) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.purged && len(pushed) == 0 {
		return fmt.Errorf("%w: %s", ErrGone, r.key)
	}
	return r.goneForLocked(pushed)
}

// goneForLocked is the root check of goneFor; r.mu is held.
func (r *record) goneForLocked(pushed []crdt.Change) error {
	for _, c := range pushed {
		if r.roots[c.Hash] {
			return fmt.Errorf("%w: %s: change %s belongs to a purged history", ErrGone, r.key, c.Hash)
		}
	}
	return nil
}

func newRecord(key store.Key) *record {
	return &record{key: key, ready: make(chan struct{}), ix: crdt.NewIndex()}
}

// updateCostLocked recomputes the record's size; r.mu is held.
func (r *record) updateCostLocked() {
	c := r.ix.MemoryBytes() + int64(len(r.snap)) + r.hist.memoryBytes()
	if r.doc != nil {
		c += r.docBytes
	}
	r.cost.Store(c)
	r.hasDoc.Store(r.doc != nil)
}

// storedLimits parse changes read back from the store: they were checked
// when they were accepted (perhaps under other limits), so only what guards
// the parse itself applies.
var storedLimits = crdt.Limits{MaxChunkBytes: math.MaxInt32, MaxOps: math.MaxInt32, OpFloor: math.MaxInt32}

// absorbLocked merges log entries read from the store into the record.
// Entries at or below r.seq are skipped (a refresh may race with our own
// writer committing the same entry). It validates every entry before
// changing anything, so on error the record is unchanged; an entry that
// does not fit the index means the store and the record disagree, and the
// caller must drop the record.
func (r *record) absorbLocked(entries []store.Entry) error {
	tx := r.ix.Begin()
	var added []logEntry
	next := r.seq + 1
	for _, e := range entries {
		if e.Seq < next {
			continue
		}
		if e.Seq != next {
			return fmt.Errorf("engine: %s: log gap: want seq %d, got %d", r.key, next, e.Seq)
		}
		cs, err := crdt.ParseChanges(e.Changes, storedLimits)
		if err != nil {
			return fmt.Errorf("engine: %s: log entry %d: %w", r.key, e.Seq, err)
		}
		if _, err := tx.Add(cs); err != nil {
			return fmt.Errorf("engine: %s: log entry %d: %w", r.key, e.Seq, err)
		}
		le := logEntry{seq: e.Seq, changes: e.Changes, n: len(cs), hashes: make([]crdt.Hash, len(cs)), at: e.At}
		for i, c := range cs {
			le.hashes[i] = c.Hash
		}
		if len(e.By) == len(cs) {
			le.by = e.By
		}
		added = append(added, le)
		next++
	}
	tx.Commit()
	for _, le := range added {
		r.appendTailLocked(le)
	}
	r.updateCostLocked()
	return nil
}

// appendTailLocked records an entry whose changes the index just took.
func (r *record) appendTailLocked(le logEntry) {
	r.tail = append(r.tail, le)
	r.tailN += le.n
	r.tailBytes += int64(len(le.changes))
	r.seq = le.seq
	if !le.at.IsZero() {
		r.updatedAt = le.at
	}
	if r.hist != nil {
		r.hist.extend(r.ix, le)
	}
}

// load fills a fresh record from the store: the snapshot (an Automerge
// document, whose changes are rebuilt and indexed) plus the log after it.
// The document built from the snapshot is kept: the record is likely to
// need it (a JSON view, the next compaction).
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
	ix := crdt.NewIndex()
	var doc *crdt.Doc
	var snap []byte
	var snapSeq uint64
	if rec.Snapshot != nil {
		d, six, err := crdt.LoadRecord(rec.Snapshot.Data)
		if err != nil {
			return fmt.Errorf("engine: load %s: snapshot %d: %w", r.key, rec.Snapshot.Seq, err)
		}
		ix = six
		ix.Fold(ix.Len(), e.opts.CompactEvery) // the snapshot holds them
		e.stats.materialized.Add(1)
		doc, snap, snapSeq = d, rec.Snapshot.Data, rec.Snapshot.Seq
	}
	roots := make(map[crdt.Hash]bool, len(rec.Roots))
	for _, s := range rec.Roots {
		h, err := crdt.ParseHash(s)
		if err != nil {
			return fmt.Errorf("engine: load %s: tombstone: %w", r.key, err)
		}
		roots[h] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// The entries run gap-free up to rec.Seq, after the snapshot or, for a
	// history begun after a purge, after the tombstone.
	base := rec.Seq - uint64(len(rec.Entries))
	r.ix, r.snap, r.snapSeq, r.seq = ix, snap, snapSeq, base
	r.purged, r.roots = rec.Purged, roots
	r.updatedAt, r.hist = rec.UpdatedAt, nil
	r.tail, r.tailN, r.tailBytes = nil, 0, 0
	if doc != nil {
		r.doc, r.docSeq, r.docBytes = doc, snapSeq, doc.MemoryBytes()
	}
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
	r.mu.RLock()
	seq := r.seq
	r.mu.RUnlock()
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
	r.ix, r.seq, r.snap, r.snapSeq = fresh.ix, fresh.seq, fresh.snap, fresh.snapSeq
	r.tail, r.tailN, r.tailBytes = fresh.tail, fresh.tailN, fresh.tailBytes
	r.doc, r.docSeq, r.docBytes = fresh.doc, fresh.docSeq, fresh.docBytes
	r.purged, r.roots = fresh.purged, fresh.roots
	r.updatedAt, r.hist = fresh.updatedAt, nil // positions in the old index
	r.updateCostLocked()
	return nil
}
