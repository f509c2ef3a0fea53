package engine

import (
	"context"

	"github.com/dynamerge/dynamerge/store"
)

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
	e.mu.Lock()
	r.refs--
	e.chargeLocked(r)
	e.evictLocked()
	e.mu.Unlock()
}

// chargeLocked brings r's share of the cache up to date.
func (e *Engine) chargeLocked(r *record) {
	if !r.evicted {
		c := r.cost.Load()
		e.goBytes += c - r.charged
		r.charged = c
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

// evictLocked frees memory while the cache is over CacheBytes, least
// recently used records first: first their documents (cheap to build again
// from the snapshot and the log), then whole records that nobody holds (no
// request, write or compaction in flight). It always keeps the most
// recently used record: one big record may exceed the budget alone, and
// evicting the record a request just used would make the next request pay a
// full reload.
func (e *Engine) evictLocked() {
	if e.goBytes <= e.opts.CacheBytes {
		return
	}
	front := e.lru.Front()
	for el := e.lru.Back(); el != nil && el != front && e.goBytes > e.opts.CacheBytes; el = el.Prev() {
		r := el.Value.(*record)
		if r.refs > 0 || !r.hasDoc.Load() || !r.mu.TryLock() {
			continue
		}
		r.doc, r.docBytes = nil, 0
		r.updateCostLocked()
		r.mu.Unlock()
		e.chargeLocked(r)
	}
	for el := e.lru.Back(); el != nil && el != front && e.goBytes > e.opts.CacheBytes; {
		r := el.Value.(*record)
		el = el.Prev()
		if r.refs > 0 {
			continue
		}
		e.removeLocked(r)
	}
}
