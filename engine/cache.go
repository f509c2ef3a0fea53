package engine

import (
	"context"
	"time"

	"github.com/dynamerge/dynamerge/store"
)

// rssInterval is how often the workers' RSS is measured for the cache bound.
const rssInterval = 250 * time.Millisecond

// acquire returns the record, pinned (release it), loaded and up to date
// with the store: a cold record is loaded once however many callers want it
// at the same time; a hot one reads the log tail first, so a record another
// process wrote is never served stale.
func (e *Engine) acquire(ctx context.Context, key store.Key) (*record, error) {
	e.mu.Lock()
	r := e.records[key]
	loader := r == nil
	if loader {
		r = newRecord(key)
		e.records[key] = r
		r.elem = e.lru.PushFront(r)
	} else {
		e.lru.MoveToFront(r.elem)
	}
	r.refs++
	e.mu.Unlock()

	if loader {
		err := e.load(ctx, r)
		r.loadErr = err
		close(r.ready)
		if err != nil {
			e.drop(r)
			e.release(r)
			return nil, err
		}
		return r, nil
	}
	select {
	case <-r.ready:
	case <-ctx.Done():
		e.release(r)
		return nil, ctx.Err()
	}
	if r.loadErr != nil {
		e.release(r)
		return nil, r.loadErr
	}
	if err := e.refresh(ctx, r); err != nil {
		e.release(r)
		return nil, err
	}
	return r, nil
}

// pin keeps r in the cache until unpinned with release.
func (e *Engine) pin(r *record) {
	e.mu.Lock()
	r.refs++
	e.mu.Unlock()
}

// release unpins r, accounts for its new size and evicts cold records while
// the cache is over budget.
func (e *Engine) release(r *record) {
	e.measureRSS()
	e.mu.Lock()
	r.refs--
	if !r.evicted {
		c := r.cost.Load()
		e.goBytes += c - r.charged
		r.charged = c
	}
	evicted := e.evictLocked()
	e.mu.Unlock()
	// Outside e.mu: Evict talks to a worker.
	for _, k := range evicted {
		e.pool.Evict(k)
	}
}

// drop removes r from the cache at once (failed load).
func (e *Engine) drop(r *record) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.removeLocked(r)
}

func (e *Engine) removeLocked(r *record) {
	if r.evicted {
		return
	}
	r.evicted = true
	if e.records[r.key] == r {
		delete(e.records, r.key)
	}
	e.lru.Remove(r.elem)
	e.goBytes -= r.charged
	r.charged = 0
}

// evictLocked evicts least recently used records that nobody holds (no
// request, write or compaction in flight) while the Go-side bytes plus the
// workers' RSS exceed CacheBytes. It always keeps the most recently used
// record: worker RSS does not shrink at once when documents are dropped
// (and one big record can exceed the budget alone: a 100k-change record
// takes ~0.9 GB in a worker), so without that floor every request would
// evict the record it just used and pay a full reload on the next one.
func (e *Engine) evictLocked() (poolKeys []string) {
	front := e.lru.Front()
	for el := e.lru.Back(); el != nil && el != front && e.goBytes+max(e.rss.Load(), 0) > e.opts.CacheBytes; {
		r := el.Value.(*record)
		el = el.Prev()
		if r.refs > 0 {
			continue
		}
		e.removeLocked(r)
		poolKeys = append(poolKeys, r.poolKey)
		e.rss.Add(-workerRecordRSS)
	}
	return poolKeys
}

// measureRSS refreshes the workers' RSS when the last measurement is old.
func (e *Engine) measureRSS() {
	now := time.Now().UnixNano()
	last := e.rssAt.Load()
	if now-last < int64(rssInterval) || !e.rssAt.CompareAndSwap(last, now) {
		return
	}
	e.rss.Store(e.pool.RSS())
}
