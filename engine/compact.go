package engine

import (
	"context"
	"time"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/store"
)

// compactDue reports whether a record's log tail is due to be folded into a
// new snapshot: more than CompactEvery changes since the last one, and
// either a quarter of the snapshot's size in change bytes or eight times
// CompactEvery changes. Writing a snapshot costs in proportion to the whole
// record, so for a big record it waits until the tail is big too: the cost
// per byte written stays constant (amortised), and a first pull (snapshot
// plus tail) stays within 1.25 times the snapshot's size.
func (e *Engine) compactDueLocked(r *record) bool {
	n := e.opts.CompactEvery
	return r.tailN > n && (4*r.tailBytes >= int64(len(r.snap)) || r.tailN > 8*n)
}

// maybeCompact starts a background compaction of the record when one is
// due: it materializes the document at the record's seq (or advances the
// one it holds), saves it as an Automerge document and stores it as the new
// snapshot, which lets the store drop the log entries it covers. At most
// MaxCompactions run at once; when none is free the next write tries again.
func (e *Engine) maybeCompact(r *record) {
	r.mu.RLock()
	due := e.compactDueLocked(r)
	seq := r.seq
	r.mu.RUnlock()
	if !due || !r.compacting.CompareAndSwap(false, true) {
		return
	}
	select {
	case e.compacts <- struct{}{}:
	default:
		r.compacting.Store(false)
		return
	}
	e.pin(r)
	e.wg.Add(1) // the writer calling us is counted, so the group is not at zero
	go func() {
		defer e.wg.Done()
		defer e.release(r)
		defer func() { <-e.compacts; r.compacting.Store(false) }()
		start := time.Now()
		var data []byte
		var at uint64
		var rows []store.Attributed
		err := e.withDoc(context.Background(), r, seq, func(d *crdt.Doc) error {
			r.mu.RLock()
			at = r.docSeq
			// The attribution of the entries the snapshot compacts goes
			// with it: the store keeps it before it drops them.
			rows = attributedRows(r.tail, at)
			r.mu.RUnlock()
			data = d.Save()
			return nil
		})
		if err != nil {
			e.log.Warn("engine: compaction: materialize failed", "key", r.key.String(), "seq", seq, "err", err)
			return
		}
		e.saveSnapshot(r, store.Snapshot{Seq: at, Data: data, Attribution: rows}, time.Since(start))
	}()
}

func (e *Engine) saveSnapshot(r *record, snap store.Snapshot, built time.Duration) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.StoreTimeout)
	err := e.store.SaveSnapshot(ctx, r.key, snap)
	cancel()
	e.writes.note(err)
	if err != nil {
		e.stats.storeErrors.Add(1)
		e.log.Warn("engine: compaction: store failed", "key", r.key.String(), "seq", snap.Seq, "err", err)
		return
	}
	r.mu.Lock()
	if snap.Seq > r.snapSeq {
		r.snap, r.snapSeq = snap.Data, snap.Seq
		// A new slice: readers that captured the old one keep it.
		var tail []logEntry
		n, b := 0, int64(0)
		for _, le := range r.tail {
			if le.seq > snap.Seq {
				tail = append(tail, le)
				n += le.n
				b += int64(len(le.changes))
			}
		}
		r.tail, r.tailN, r.tailBytes = tail, n, b
		r.ix.Fold(r.ix.Len()-n, e.opts.CompactEvery)
		r.updateCostLocked()
	}
	r.mu.Unlock()
	e.stats.compactions.Add(1)
	e.log.Debug("engine: compacted", "key", r.key.String(), "seq", snap.Seq, "bytes", len(snap.Data), "built", built, "stored", time.Since(start))
}
