package engine

import (
	"context"
	"time"

	"github.com/dynamerge/dynamerge/store"
)

// maybeCompact saves the record as a snapshot when its log holds more than
// CompactEvery changes since the last one. The caller holds the record's
// writer slot, which is what makes the worker's document at r.seq the
// durable one (no write of ours is half-applied to it); the Save runs under
// that slot (it blocks the record's next write for one Save, ~0.1 s at 100k
// changes, once every CompactEvery changes), the store write does not. At
// most MaxCompactions run at once; when none is free the next write tries
// again.
func (e *Engine) maybeCompact(r *record) {
	r.mu.Lock()
	due := r.tailN > e.opts.CompactEvery
	seq := r.seq
	b := r.captureLocked()
	r.mu.Unlock()
	if !due || !r.compacting.CompareAndSwap(false, true) {
		return
	}
	select {
	case e.compacts <- struct{}{}:
	default:
		r.compacting.Store(false)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), workerTimeout)
	data, err := e.pool.Save(ctx, r.poolKey, seq, b.fn(seq, nil))
	cancel()
	if err != nil {
		<-e.compacts
		r.compacting.Store(false)
		e.log.Warn("engine: compaction: save failed", "key", r.key.String(), "seq", seq, "err", err)
		return
	}
	e.pin(r)
	e.wg.Add(1) // the writer calling us is counted, so the group is not at zero
	go func() {
		defer e.wg.Done()
		defer e.release(r)
		defer func() { <-e.compacts; r.compacting.Store(false) }()
		e.saveSnapshot(r, store.Snapshot{Seq: seq, Data: data})
	}()
}

func (e *Engine) saveSnapshot(r *record, snap store.Snapshot) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.StoreTimeout)
	err := e.store.SaveSnapshot(ctx, r.key, snap)
	cancel()
	if err != nil {
		e.stats.storeErrors.Add(1)
		e.log.Warn("engine: compaction: store failed", "key", r.key.String(), "seq", snap.Seq, "err", err)
		return
	}
	r.mu.Lock()
	if snap.Seq > r.snapSeq {
		r.snap, r.snapSeq = snap.Data, snap.Seq
		// A new slice: bases captured earlier keep the old one.
		var tail []logEntry
		n := 0
		for _, le := range r.tail {
			if le.seq > snap.Seq {
				tail = append(tail, le)
				n += le.n
			}
		}
		r.tail, r.tailN = tail, n
		r.updateCostLocked()
	}
	r.mu.Unlock()
	e.stats.compactions.Add(1)
	e.log.Debug("engine: compacted", "key", r.key.String(), "seq", snap.Seq, "bytes", len(snap.Data), "took", time.Since(start))
}
