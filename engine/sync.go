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

	if len(pushed) > 0 {
		r.mu.Lock()
		fresh := false
		for _, c := range pushed {
			if !r.graph.Has(c.Hash) {
				fresh = true
				break
			}
		}
		r.mu.Unlock()
		// A retry of changes the record already has is answered without
		// touching the write path (retries are free).
		if fresh {
			res.Err = e.write(ctx, r, pushed)
		}
	}

	// The client has its have plus what it pushed (whether or not the push
	// was accepted: it holds those changes either way).
	have := req.Have
	if len(pushed) > 0 {
		have = make([]crdt.Hash, 0, len(req.Have)+len(pushed))
		have = append(have, req.Have...)
		for _, c := range pushed {
			have = append(have, c.Hash)
		}
	}
	r.mu.Lock()
	res.Heads = r.graph.Heads()
	res.Changes = crdt.Join(r.graph.Since(have))
	r.mu.Unlock()
	return res
}

// split validates pushed bytes in pure Go, enforces MaxChangeBytes, and
// drops duplicates within the push.
func (e *Engine) split(b []byte) ([]crdt.Change, error) {
	if len(b) == 0 {
		return nil, nil
	}
	cs, err := crdt.SplitLimits(b, crdt.DefaultMaxChunkBytes, e.opts.MaxOpsPerChange)
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

// sortPush orders a push's changes so that each comes after its
// dependencies within the push (clients may send them in any order), and
// returns the dependencies found neither in the push nor by known.
func sortPush(cs []crdt.Change, known func(crdt.Hash) bool) (sorted []crdt.Change, missing []crdt.Hash) {
	inPush := make(map[crdt.Hash]int, len(cs))
	for i, c := range cs {
		inPush[c.Hash] = i
	}
	// Depth-first post-order; change hashes cover their deps, so there are
	// no cycles, but guard anyway against a crafted duplicate.
	const (
		unvisited = iota
		visiting
		done
	)
	state := make([]uint8, len(cs))
	sorted = make([]crdt.Change, 0, len(cs))
	missingSet := map[crdt.Hash]bool{}
	var visit func(i int)
	visit = func(i int) {
		if state[i] != unvisited {
			return
		}
		state[i] = visiting
		for _, d := range cs[i].Deps {
			if j, ok := inPush[d]; ok {
				visit(j)
			} else if !known(d) && !missingSet[d] {
				missingSet[d] = true
				missing = append(missing, d)
			}
		}
		state[i] = done
		sorted = append(sorted, cs[i])
	}
	for i := range cs {
		visit(i)
	}
	return sorted, missing
}
