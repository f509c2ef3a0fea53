package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/store"
)

// JSON returns the record as plain JSON at heads (nil for the current
// heads), and the heads it reflects. ErrNotFound if never written;
// ErrUnknownHeads when heads names a change the record does not have.
func (e *Engine) JSON(ctx context.Context, key store.Key, heads []crdt.Hash) (doc []byte, at []crdt.Hash, err error) {
	if err := e.begin(); err != nil {
		return nil, nil, err
	}
	defer e.wg.Done()
	if err := key.Validate(); err != nil {
		return nil, nil, fmt.Errorf("engine: %w", err)
	}
	r, err := e.acquire(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	defer e.release(r)

	r.mu.Lock()
	seq := r.seq
	if seq == 0 {
		r.mu.Unlock()
		return nil, nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if missing := r.graph.Missing(heads); len(missing) > 0 {
		r.mu.Unlock()
		return nil, nil, fmt.Errorf("%w: %s has no change %s", ErrUnknownHeads, key, hashList(missing))
	}
	if len(heads) == 0 {
		// Always ask for explicit heads: the worker's document may be ahead
		// of r.seq with a write in flight, and must never show changes that
		// are not durable yet.
		heads = r.graph.Heads()
	}
	b := r.captureLocked()
	r.mu.Unlock()

	wctx, cancel := context.WithTimeout(ctx, workerTimeout)
	defer cancel()
	doc, atStr, err := e.pool.JSON(wctx, r.poolKey, seq, b.fn(seq, nil), crdt.HashStrings(heads))
	if err != nil {
		if errors.Is(err, crdt.ErrMissingDeps) {
			return nil, nil, fmt.Errorf("%w: %s: %w", ErrUnknownHeads, key, err)
		}
		return nil, nil, fmt.Errorf("engine: json %s: %w", key, err)
	}
	at, err = crdt.ParseHashes(atStr)
	if err != nil {
		return nil, nil, fmt.Errorf("engine: json %s: worker heads: %w", key, err)
	}
	return doc, at, nil
}
