package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/store"
)

// push is one client push waiting for the record's writer.
type push struct {
	changes []crdt.Change // parsed by crdt.ParseChanges, deduplicated
	by      string        // who pushed them (the token subject, "" without auth)
	done    chan error    // buffered: the writer never blocks on it

	// Per attempt, set by the writer.
	fresh []crdt.Change // changes new to the record, dependencies first
	err   error         // final refusal (never retried)
}

// write queues the changes for the record's writer and waits until they are
// durable (nil) or refused. The record must be pinned by the caller. by is
// who asked for them (a token subject, "" without authentication): the
// changes the record did not have are attributed to by, each one to the
// first caller whose write stored it, since a group commit mixes callers.
func (e *Engine) write(ctx context.Context, r *record, changes []crdt.Change, by string) error {
	p := &push{changes: changes, by: by, done: make(chan error, 1)}
	r.qmu.Lock()
	r.queue = append(r.queue, p)
	start := !r.writing
	r.writing = true
	r.qmu.Unlock()
	if start {
		e.startWriter(r)
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		// The write may still land; the client retries and gets the same
		// answer for free.
		return ctx.Err()
	}
}

// startWriter runs the record's writer in its own goroutine, which holds the
// writer slot (r.writing) until the queue is empty. The writer does not run
// on a caller's goroutine because it serves every queued push, whatever
// happens to the caller that started it.
func (e *Engine) startWriter(r *record) {
	e.pin(r)
	e.wg.Add(1) // a Sync is in flight, so the group is not at zero
	go func() {
		defer e.wg.Done()
		defer e.release(r)
		e.writeLoop(r)
	}()
}

func (e *Engine) writeLoop(r *record) {
	for {
		r.qmu.Lock()
		n := len(r.queue)
		if n > 0 && e.opts.NoGroupCommit {
			n = 1
		}
		batch := slices.Clone(r.queue[:n])
		r.queue = r.queue[n:]
		if n == 0 {
			r.queue = nil
		}
		if len(batch) == 0 {
			r.writing = false
			r.qmu.Unlock()
			return
		}
		r.qmu.Unlock()
		if e.writeBatch(r, batch) {
			e.maybeCompact(r)
		}
	}
}

// writeBatch validates the pushes of one batch and writes every accepted
// change as one log entry, retrying after losing the seq to another process.
// It answers every push. It reports whether something was written.
func (e *Engine) writeBatch(r *record, batch []*push) (wrote bool) {
	answer := func(p *push, err error) { p.done <- err }
	for attempt := 0; ; attempt++ {
		tx, entry, heads, meta, live, seq := e.prepare(r, batch)
		for _, p := range batch {
			if p.err != nil {
				answer(p, p.err)
			}
		}
		batch = live
		if len(batch) == 0 {
			return false
		}
		if len(entry) == 0 {
			// Everything left was already in the record (another process
			// wrote it and we merged its log): durable, done.
			for _, p := range batch {
				answer(p, nil)
			}
			return false
		}

		// Whole microseconds: what the stores keep, so the time a history
		// shows does not change when the record is read back.
		at := time.Now().UTC().Truncate(time.Microsecond)
		by := attributionOf(tx.Changes(), batch)
		ctx, cancel := context.WithTimeout(context.Background(), e.opts.StoreTimeout)
		err := e.store.Append(ctx, r.key, store.Entry{Seq: seq + 1, Changes: entry, By: by, At: at}, meta)
		cancel()
		e.writes.note(err)
		switch {
		case err == nil:
			e.commit(r, tx, logEntry{seq: seq + 1, changes: entry, by: by, at: at}, batch, heads, meta.Deleted)
			return true
		case errors.Is(err, store.ErrConflict) && attempt < e.opts.AppendRetries:
			// Another process took seq+1: merge what it wrote, and try
			// again on top of it.
			e.stats.storeConflicts.Add(1)
			ctx, cancel := context.WithTimeout(context.Background(), e.opts.StoreTimeout)
			rerr := e.refresh(ctx, r)
			cancel()
			if rerr != nil {
				e.fail(r, batch, rerr)
				return false
			}
			time.Sleep(conflictBackoff(attempt))
		case errors.Is(err, store.ErrTooLarge) && len(batch) > 1:
			// Together they are over what the backend holds in one entry;
			// each alone may not be.
			for _, p := range batch {
				if e.writeBatch(r, []*push{p}) {
					wrote = true
				}
			}
			return wrote
		case errors.Is(err, store.ErrTooLarge):
			e.fail(r, batch, fmt.Errorf("%w: append %s seq %d: %w", ErrTooLarge, r.key, seq+1, err))
			return false
		default:
			if errors.Is(err, store.ErrConflict) {
				e.stats.storeConflicts.Add(1)
			} else {
				e.stats.storeErrors.Add(1)
			}
			e.fail(r, batch, fmt.Errorf("%w: append %s seq %d: %w", ErrUnavailable, r.key, seq+1, err))
			return false
		}
	}
}

// attributionOf returns who pushed each of the changes of an entry, in
// order: the caller of the push that brought it. A change two pushes of the
// batch both bring is fresh only in the first (prepare validates them in
// order), so that caller is the first to have pushed it.
func attributionOf(changes []crdt.Change, batch []*push) []string {
	by := make([]string, len(changes))
	if len(batch) == 1 { // the common case: one caller
		for i := range by {
			by[i] = batch[0].by
		}
		return by
	}
	who := make(map[crdt.Hash]string, len(changes))
	for _, p := range batch {
		for _, c := range p.fresh {
			if _, ok := who[c.Hash]; !ok {
				who[c.Hash] = p.by
			}
		}
	}
	for i, c := range changes {
		by[i] = who[c.Hash]
	}
	return by
}

// conflictBackoff is the pause before retry attempt+1 of a write that lost
// the race for a seq: random (full jitter), so that processes fighting over
// one record do not collide in lockstep, growing from 2 ms and capped at
// 200 ms, so that the retries outlast a burst of another process's writes
// without leaving the record idle for long.
func conflictBackoff(attempt int) time.Duration {
	ceiling := min(2*time.Millisecond<<min(attempt, 10), 200*time.Millisecond)
	return time.Duration(rand.Int64N(int64(ceiling)))
}

// fail answers every push of a batch with err after a failed write. The
// record's in-memory state was not touched.
func (e *Engine) fail(r *record, batch []*push, err error) {
	e.log.Warn("engine: write failed", "key", r.key.String(), "pushes", len(batch), "err", err)
	for _, p := range batch {
		p.done <- err
	}
}

// prepare checks each push of the batch against the record, in order, in
// one crdt.Tx: each push's changes are validated against the record's index
// and the pushes before it (a bad push fails alone), and the record's limits
// are applied. Pushes refused for good get p.err; the rest are returned in
// live. entry holds the new changes of the live pushes, to be appended at
// seq+1, and heads and size the record's state after it. The Tx is
// committed to the index once the entry is durable.
//
// Validation needs no document: it costs O(the changes), whatever the
// record's size, and runs under the record's read lock, so pulls go on.
//
// meta is what the store keeps of the record after the entry (its heads,
// size, whether it is deleted, whether it starts a history after a purge),
// read with the validation, under one lock.
func (e *Engine) prepare(r *record, batch []*push) (tx *crdt.Tx, entry []byte, heads []crdt.Hash, meta store.AppendMeta, live []*push, seq uint64) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	seq = r.seq
	tx = r.ix.Begin()
	for _, p := range batch {
		if p.err != nil {
			continue
		}
		var n, budget, nOps int64
		for _, c := range p.changes {
			if !tx.Has(c.Hash) {
				n += int64(len(c.Raw))
				budget += int64(c.Budget)
				nOps += int64(c.Ops)
			}
		}
		bytes := r.ix.Bytes() + tx.Bytes() + n
		ops := r.ix.Budget() + tx.Budget() + budget
		all := r.ix.Ops() + tx.Ops() + nOps
		switch {
		case e.opts.MaxRecordOps > 0 && all > e.opts.MaxRecordOps:
			p.err = fmt.Errorf("%w: record %s would hold %d operations, limit %d", ErrTooLarge, r.key, all, e.opts.MaxRecordOps)
			continue
		case bytes > e.opts.MaxRecordBytes:
			p.err = fmt.Errorf("%w: record %s would hold %d bytes of changes, limit %d", ErrTooLarge, r.key, bytes, e.opts.MaxRecordBytes)
			continue
		case ops > e.recordBudget(bytes):
			p.err = fmt.Errorf("%w: record %s would hold %d operations in %d bytes, over its allocation budget of %d", ErrTooLarge, r.key, ops, bytes, e.recordBudget(bytes))
			continue
		}
		if r.purged || len(r.roots) > 0 {
			// The record was purged, maybe while this push waited.
			if err := r.goneForLocked(p.changes); err != nil {
				p.err = err
				continue
			}
		}
		fresh, err := tx.Add(p.changes)
		if errors.Is(err, crdt.ErrMissingDeps) && r.purged {
			// Changes that build on history a tombstone no longer has:
			// the purged one.
			err = fmt.Errorf("%w: %w", ErrGone, err)
		}
		if err != nil {
			p.err = fmt.Errorf("engine: %s: %w", r.key, err)
			continue
		}
		p.fresh = fresh
		live = append(live, p)
	}
	heads = tx.Heads()
	meta = store.AppendMeta{Heads: crdt.HashStrings(heads), Size: r.ix.Bytes() + tx.Bytes(), Deleted: tx.Deleted(), NewHistory: r.purged}
	return tx, crdt.Join(tx.Changes()), heads, meta, live, seq
}

// recordBudget is the allocation budget of a record of the given change
// bytes (see DefaultRecordOpFloor).
func (e *Engine) recordBudget(bytes int64) int64 {
	perByte := int64(e.opts.Limits.OpsPerByte)
	if perByte <= 0 {
		perByte = crdt.DefaultOpsPerByte
	}
	return e.opts.RecordOpFloor + perByte*bytes
}

// commit merges a durable entry (le, without its hashes and count yet)
// into the record, answers its pushes and tells subscribers.
func (e *Engine) commit(r *record, tx *crdt.Tx, le logEntry, batch []*push, heads []crdt.Hash, deleted bool) {
	n := len(tx.Changes())
	le.n = n
	le.hashes = make([]crdt.Hash, n)
	for i, c := range tx.Changes() {
		le.hashes[i] = c.Hash
	}
	r.mu.Lock()
	if r.seq == le.seq-1 {
		// r.seq may already be seq: a concurrent refresh read our entry
		// from the log before we got here, and the index has it.
		tx.Commit()
		r.purged = false // a new history, if the record was a tombstone
		r.appendTailLocked(le)
		r.updateCostLocked()
	}
	r.mu.Unlock()
	e.stats.storeWrites.Add(1)
	e.stats.changesMerged.Add(uint64(n))
	e.stats.bytesMerged.Add(uint64(len(le.changes)))
	for _, p := range batch {
		p.done <- nil
	}
	e.publishLocal(r.key, le.seq, heads, deleted, le.changes)
}

func hashList(hs []crdt.Hash) string {
	if len(hs) > 4 {
		return fmt.Sprintf("%s and %d more", crdt.HashStrings(hs[:4]), len(hs)-4)
	}
	return fmt.Sprint(crdt.HashStrings(hs))
}
