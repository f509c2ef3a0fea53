package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/dynamerge/dynamerge/crdt"
)

// syncDoc handles one record of a Sync.
func (e *Engine) syncDoc(ctx context.Context, req DocRequest) DocResult {
	res := DocResult{Key: req.Key}
	if err := req.Key.Validate(); err != nil {
		res.Err = fmt.Errorf("engine: %w", err)
		return res
	}
	pushed, err := e.split(req.Changes)
	if err != nil {
		res.Err = fmt.Errorf("engine: %s: %w", req.Key, err)
		return res
	}
	r, err := e.acquire(ctx, req.Key)
	if err != nil {
		res.Err = err
		return res
	}
	defer e.release(r)

	if err := r.goneFor(pushed); err != nil {
		res.Err = err
		return res
	}
	if len(pushed) > 0 {
		r.mu.RLock()
		fresh := false
		for _, c := range pushed {
			if !r.ix.Has(c.Hash) {
				fresh = true
				break
			}
		}
		r.mu.RUnlock()
		// A retry of changes the record already has is answered without
		// touching the write path (retries are free).
		if fresh {
			res.Err = e.write(ctx, r, pushed, req.By)
		}
	}

	// The client has its have plus what it pushed and what that depends on
	// (whether or not the push was accepted: it holds those changes, and so
	// their dependencies, either way). The dependencies matter when the
	// pushed changes are unknown here (refused) and have names only them:
	// without the dependencies nothing of have would be known, and the
	// answer would resend the client the whole history it already holds.
	have := req.Have
	if len(pushed) > 0 {
		have = make([]crdt.Hash, 0, len(req.Have)+2*len(pushed))
		have = append(have, req.Have...)
		for _, c := range pushed {
			have = append(have, c.Hash)
			have = append(have, c.Deps...)
		}
	}
	r.mu.RLock()
	res.Heads = r.ix.Heads()
	raw, needSnap := r.ix.Since(have)
	snap := r.snap
	r.mu.RUnlock()
	res.Changes = joinDelta(snap, needSnap, raw)
	return res
}

// joinDelta concatenates a delta: the snapshot first when some of the
// changes the client lacks are held only there (a first pull of a record
// with a long history gets one compact Automerge document, which
// loadIncremental accepts, instead of every change), then the changes.
func joinDelta(snap []byte, needSnap bool, raw [][]byte) []byte {
	n := 0
	if needSnap {
		n += len(snap)
	}
	for _, c := range raw {
		n += len(c)
	}
	if n == 0 {
		return nil
	}
	out := make([]byte, 0, n)
	if needSnap {
		out = append(out, snap...)
	}
	for _, c := range raw {
		out = append(out, c...)
	}
	return out
}

// split parses pushed bytes in pure Go, enforces MaxChangeBytes and the
// allocation budget of a change, and drops duplicates within the push.
func (e *Engine) split(b []byte) ([]crdt.Change, error) {
	if len(b) == 0 {
		return nil, nil
	}
	cs, err := crdt.ParseChanges(b, e.opts.Limits)
	if errors.Is(err, crdt.ErrChunkTooLarge) {
		return nil, fmt.Errorf("%w: %w", ErrTooLarge, err)
	}
	if err != nil {
		return nil, err
	}
	seen := make(map[crdt.Hash]bool, len(cs))
	out := cs[:0]
	for _, c := range cs {
		if len(c.Raw) > e.opts.MaxChangeBytes {
			return nil, fmt.Errorf("%w: change %s is %d bytes, limit %d", ErrTooLarge, c.Hash, len(c.Raw), e.opts.MaxChangeBytes)
		}
		if !seen[c.Hash] {
			seen[c.Hash] = true
			out = append(out, c)
		}
	}
	return out, nil
}
