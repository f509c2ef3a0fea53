package engine

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/store"
)

// newActor returns the Automerge actor ID of the changes this engine makes
// itself (deletes and undeletes of plain requests): 16 random bytes, as
// Automerge JS uses, so that no two server processes, however many share a
// table, ever make changes as the same actor.
func newActor() []byte {
	a := make([]byte, 16)
	_, _ = rand.Read(a) // crypto/rand.Read never fails
	return a
}

// SetDeleted deletes the record (deleted true) or undeletes it, as
// PROTOCOL.md's DELETE and undelete do: one change this engine makes at
// the record's root "$deleted", merged and stored like a pushed change. It
// returns the record's heads after it; a record that already is as asked
// gets no change. ErrNotFound if the record was never written.
func (e *Engine) SetDeleted(ctx context.Context, key store.Key, deleted bool) ([]crdt.Hash, error) {
	if err := e.begin(); err != nil {
		return nil, err
	}
	defer e.wg.Done()
	if err := key.Validate(); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	r, err := e.acquire(ctx, key)
	if err != nil {
		return nil, err
	}
	defer e.release(r)

	// One change of this engine's actor at a time per record: each takes
	// the next seq of the actor in the record.
	r.ownMu.Lock()
	defer r.ownMu.Unlock()
	var v *crdt.Value
	if deleted {
		t := crdt.BoolValue(true)
		v = &t
	}
	r.mu.RLock()
	if r.seq == 0 {
		r.mu.RUnlock()
		return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	c, made, err := r.ix.ReservedChange(e.actor, crdt.DeletedKey, v, time.Now().Unix())
	heads := r.ix.Heads()
	r.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("engine: %s: %w", key, err)
	}
	if !made {
		return heads, nil
	}
	if err := e.write(ctx, r, []crdt.Change{c}); err != nil {
		return nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.ix.Heads(), nil
}
