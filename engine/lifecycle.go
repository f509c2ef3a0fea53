package engine

import (
	"context"
	"crypto/rand"
	"errors"
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
// gets no change. ErrNotFound if the record was never written. The change
// is attributed to by, the caller who asked for it ("" without
// authentication).
func (e *Engine) SetDeleted(ctx context.Context, key store.Key, deleted bool, by string) ([]crdt.Hash, error) {
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
	if r.purged {
		r.mu.RUnlock()
		return nil, fmt.Errorf("%w: %s", ErrGone, key)
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
	if err := e.write(ctx, r, []crdt.Change{c}, by); err != nil {
		return nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.ix.Heads(), nil
}

// purgeBatch is how many deleted records one DeletedBefore call lists.
const purgeBatch = 100

// PurgeInterval is how often the engine looks for records to purge when
// deleted ones are kept for retention: a tenth of it, at most an hour, so a
// record is purged within min(retention/10, 1h) of its time.
func PurgeInterval(retention time.Duration) time.Duration {
	return min(retention/10, time.Hour)
}

// purgeLoop purges records deleted for longer than Options.PurgeAfter,
// every PurgeInterval, until the engine closes.
func (e *Engine) purgeLoop(stop <-chan struct{}) {
	defer e.wg.Done()
	t := time.NewTicker(PurgeInterval(e.opts.PurgeAfter))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), PurgeInterval(e.opts.PurgeAfter))
		n, err := e.Purge(ctx, time.Now())
		cancel()
		switch {
		case errors.Is(err, store.ErrNotSupported):
			e.log.Warn("engine: deleted records are never purged: the store cannot list them", "err", err)
			return
		case err != nil:
			e.log.Warn("engine: purge sweep failed; the next one retries", "purged", n, "err", err)
		case n > 0:
			e.log.Info("engine: purged deleted records", "purged", n)
		}
	}
}

// Purge purges every record deleted before now minus Options.PurgeAfter
// (PROTOCOL.md, Record lifecycle): its history goes, and a tombstone keeps
// the hashes of its root changes so that no device can bring it back. A
// record undeleted or changed since the store listed it is left alone (the
// store refuses a purge of a record that moved on, so an undelete
// acknowledged before the purge always wins). It returns how many records
// it purged.
func (e *Engine) Purge(ctx context.Context, now time.Time) (int, error) {
	if err := e.begin(); err != nil {
		return 0, err
	}
	defer e.wg.Done()
	if e.opts.PurgeAfter <= 0 {
		return 0, nil
	}
	before := now.Add(-e.opts.PurgeAfter)
	purged := 0
	skip := map[store.Key]uint64{} // listed, moved on: not again this sweep
	for {
		sctx, cancel := context.WithTimeout(ctx, e.opts.StoreTimeout)
		recs, err := e.store.DeletedBefore(sctx, before, purgeBatch)
		cancel()
		if err != nil {
			return purged, err
		}
		progress := false
		for _, d := range recs {
			if s, ok := skip[d.Key]; ok && s == d.Seq {
				continue
			}
			done, err := e.purgeOne(ctx, d)
			if err != nil {
				return purged, err
			}
			if done {
				purged++
			}
			skip[d.Key] = d.Seq
			progress = true
		}
		if len(recs) < purgeBatch || !progress {
			return purged, nil
		}
	}
}

// purgeOne purges one listed record, if it still is as listed.
func (e *Engine) purgeOne(ctx context.Context, d store.DeletedRecord) (bool, error) {
	r, err := e.acquire(ctx, d.Key)
	if err != nil {
		return false, err
	}
	defer e.release(r)
	r.mu.RLock()
	var roots []string
	current := r.seq == d.Seq && (r.purged || r.ix.Deleted())
	if !r.purged {
		roots = crdt.HashStrings(r.ix.Roots())
	}
	r.mu.RUnlock()
	if !current {
		return false, nil // changed since it was listed
	}
	sctx, cancel := context.WithTimeout(ctx, e.opts.StoreTimeout)
	err = e.store.Purge(sctx, d.Key, d.Seq, roots)
	cancel()
	if errors.Is(err, store.ErrConflict) {
		return false, nil // undeleted or changed meanwhile: it wins
	}
	if err != nil {
		return false, fmt.Errorf("engine: purge %s: %w", d.Key, err)
	}
	// Hold the tombstone from now on, and tell followers: they pull, get
	// gone, and drop their copies.
	if err := e.reload(ctx, r); err != nil {
		e.drop(r)
	}
	e.stats.purges.Add(1)
	e.subs.publish(d.Key, nil, true, nil)
	return true, nil
}
