package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/crdt/worker"
	"github.com/dynamerge/dynamerge/store"
)

// push is one client push waiting for the record's writer.
type push struct {
	changes []crdt.Change // validated by crdt.Split, deduplicated
	done    chan error    // buffered: the writer never blocks on it

	// Per attempt, set by the writer.
	fresh []crdt.Change // changes new to the record, dependencies first
	err   error         // final refusal (never retried)
}

// write queues the changes for the record's writer and waits until they are
// durable (nil) or refused. The record must be pinned by the caller.
func (e *Engine) write(ctx context.Context, r *record, changes []crdt.Change) error {
	p := &push{changes: changes, done: make(chan error, 1)}
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
			// Still holding the writer slot: nothing else is applying to
			// the record's document, so the worker's copy at r.seq is the
			// durable one and can be saved as a snapshot.
			e.maybeCompact(r)
		}
	}
}

// tmpLabel numbers intermediate documents of a group commit in the worker.
// The high bit keeps them apart from real log seqs: a document left at such
// a label is simply reloaded by the next write.
var tmpLabel atomic.Uint64

func nextTmpLabel() uint64 { return 1<<63 | tmpLabel.Add(1) }

// writeBatch validates the pushes of one batch and writes every accepted
// change as one log entry, retrying after losing the seq to another process.
// It answers every push. It reports whether something was written.
func (e *Engine) writeBatch(r *record, batch []*push) (wrote bool) {
	answer := func(p *push, err error) { p.done <- err }
	for attempt := 0; ; attempt++ {
		entry, heads, size, live, seq := e.prepare(r, batch)
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

		meta := store.AppendMeta{Heads: crdt.HashStrings(heads), Size: size}
		ctx, cancel := context.WithTimeout(context.Background(), e.opts.StoreTimeout)
		err := e.store.Append(ctx, r.key, store.Entry{Seq: seq + 1, Changes: entry}, meta)
		cancel()
		switch {
		case err == nil:
			e.commit(r, seq+1, entry, batch, heads)
			return true
		case errors.Is(err, store.ErrConflict) && attempt < e.opts.AppendRetries:
			// Another process took seq+1. The worker's document has our
			// changes at seq+1, which is not what the log says: drop it.
			e.stats.storeConflicts.Add(1)
			e.pool.Evict(r.poolKey)
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
			e.pool.Evict(r.poolKey)
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
// worker holds changes that are not durable: drop its document. The
// record's in-memory state was not touched.
func (e *Engine) fail(r *record, batch []*push, err error) {
	e.pool.Evict(r.poolKey)
	e.log.Warn("engine: write failed", "key", r.key.String(), "pushes", len(batch), "err", err)
	for _, p := range batch {
		p.done <- err
	}
}

// prepare checks each push of the batch against the record, in order, and
// runs the survivors through the record's document in a worker (one Apply
// per push, so that a bad push fails alone). Pushes refused for good get
// p.err; the rest are returned in live. entry holds the new changes of the
// live pushes, to be appended at seq+1, and heads and size the record's state
// after it.
func (e *Engine) prepare(r *record, batch []*push) (entry []byte, heads []crdt.Hash, size int64, live []*push, seq uint64) {
	r.mu.Lock()
	seq = r.seq
	b := r.captureLocked()
	headSet := make(map[crdt.Hash]bool)
	for _, h := range r.graph.Heads() {
		headSet[h] = true
	}
	size = r.graph.Bytes()
	ops := r.graph.Ops()
	r.mu.Unlock()

	accepted := make(map[crdt.Hash]bool) // new changes of earlier live pushes
	known := func(h crdt.Hash) bool {
		if accepted[h] {
			return true
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.graph.Has(h)
	}

	// Pure-Go checks first, for every push, so that the worker chain below
	// knows which push is last and can label it seq+1.
	var toApply []*push
	for _, p := range batch {
		if p.err != nil {
			continue
		}
		var fresh []crdt.Change
		n := 0
		nOps := int64(0)
		for _, c := range p.changes {
			if !known(c.Hash) {
				fresh = append(fresh, c)
				n += len(c.Raw)
				nOps += int64(c.Ops)
			}
		}
		sorted, missing := sortPush(fresh, known)
		switch {
		case len(missing) > 0:
			p.err = fmt.Errorf("%w: %s lacks %s", ErrMissingDeps, r.key, hashList(missing))
			continue
		case size+int64(n) > int64(e.opts.MaxRecordBytes):
			p.err = fmt.Errorf("%w: record %s would hold %d bytes, limit %d", ErrTooLarge, r.key, size+int64(n), e.opts.MaxRecordBytes)
			continue
		case ops+nOps > e.opts.MaxOpsPerRecord:
			p.err = fmt.Errorf("%w: record %s would hold %d ops, limit %d", ErrTooLarge, r.key, ops+nOps, e.opts.MaxOpsPerRecord)
			continue
		}
		p.fresh = sorted
		live = append(live, p)
		if len(sorted) == 0 {
			continue
		}
		for _, c := range sorted {
			accepted[c.Hash] = true
		}
		size += int64(n)
		ops += nOps
		toApply = append(toApply, p)
	}

	// The worker checks what pure Go cannot: that automerge accepts every
	// change. The document moves seq → tmp → … → seq+1 along the chain, so
	// that after a successful append it sits at the record's new seq.
	from := seq
	var extra []byte // changes of the pushes already applied in this chain
	kept := live[:0]
	for _, p := range live {
		if len(p.fresh) == 0 {
			kept = append(kept, p)
			continue
		}
		to := nextTmpLabel()
		if p == toApply[len(toApply)-1] {
			to = seq + 1
		}
		raw := crdt.Join(p.fresh)
		ctx, cancel := context.WithTimeout(context.Background(), workerTimeout)
		err := e.pool.Apply(ctx, r.poolKey, from, to, b.fn(from, extra), raw)
		cancel()
		if err != nil {
			p.err = workerError(r, err)
			size -= int64(len(raw))
			continue
		}
		from = to
		extra = append(extra, raw...)
		kept = append(kept, p)
	}
	live = kept
	if from != seq+1 && len(extra) > 0 {
		// The last push failed: the worker dropped its document, or holds
		// it at a temporary label. Either way the next write reloads it.
		e.pool.Evict(r.poolKey)
	}

	// Heads after the entry: the new changes replace the heads they depend on.
	for _, p := range live {
		for _, c := range p.fresh {
			for _, d := range c.Deps {
				delete(headSet, d)
			}
			headSet[c.Hash] = true
		}
	}
	heads = make([]crdt.Hash, 0, len(headSet))
	for h := range headSet {
		heads = append(heads, h)
	}
	slices.SortFunc(heads, func(a, b crdt.Hash) int { return bytes.Compare(a[:], b[:]) })
	return extra, heads, size, live, seq
}

// workerError turns a refusal by the worker into the push's error.
func workerError(r *record, err error) error {
	switch {
	case errors.Is(err, crdt.ErrInvalidChange), errors.Is(err, worker.ErrPoison):
		return fmt.Errorf("engine: %s: %w", r.key, err)
	case errors.Is(err, crdt.ErrMissingDeps):
		return fmt.Errorf("engine: %s: %w", r.key, err)
	default:
		return fmt.Errorf("%w: worker: %s: %w", ErrUnavailable, r.key, err)
	}
}

// commit merges a durable entry into the record, answers its pushes and
// tells subscribers.
func (e *Engine) commit(r *record, seq uint64, entry []byte, batch []*push, heads []crdt.Hash) {
	n := 0
	for _, p := range batch {
		n += len(p.fresh)
	}
	var broken error
	r.mu.Lock()
	if r.seq == seq-1 {
		// r.seq may already be seq: a concurrent refresh read our entry
		// from the log before we got here.
	add:
		for _, p := range batch {
			for _, c := range p.fresh {
				if err := r.graph.Add(c); err != nil {
					// prepare checked the deps at this very seq, so this
					// means the in-memory record is wrong.
					broken = err
					break add
				}
			}
		}
		r.tail = append(r.tail, logEntry{seq: seq, changes: entry, n: n})
		r.tailN += n
		r.seq = seq
		r.updateCostLocked()
	}
	r.mu.Unlock()
	if broken != nil {
		// The entry is durable; the store is the truth. Forget the record
		// so that the next request loads it afresh.
		e.log.Error("engine: record out of step with its log, dropping it from the cache", "key", r.key.String(), "seq", seq, "err", broken)
		e.drop(r)
		e.pool.Evict(r.poolKey)
	}
	e.stats.storeWrites.Add(1)
	e.stats.changesMerged.Add(uint64(n))
	e.stats.bytesMerged.Add(uint64(len(entry)))
	for _, p := range batch {
		p.done <- nil
	}
	e.publishLocal(r.key, seq, heads)
}

func hashList(hs []crdt.Hash) string {
	if len(hs) > 4 {
		return fmt.Sprintf("%s and %d more", crdt.HashStrings(hs[:4]), len(hs)-4)
	}
	return fmt.Sprint(crdt.HashStrings(hs))
}
