package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/store"
)

// View is a record's JSON view.
type View struct {
	Doc     []byte      // the record as plain JSON, reserved root keys ("$…") left out
	Heads   []crdt.Hash // the heads it reflects
	Deleted bool        // root "$deleted" shows true at Heads
	// Conflicts, when asked for (ViewOptions.Conflicts): every map key or
	// list element with several values; never nil then.
	Conflicts []Conflict
}

// JSON returns the record as plain JSON at heads (nil for the current
// heads), and the heads it reflects. Root keys reserved by the protocol
// ("$…") are left out. ErrNotFound if never written; ErrUnknownHeads when
// heads names a change the record does not have. A deleted record is shown
// all the same: View says whether it is.
func (e *Engine) JSON(ctx context.Context, key store.Key, heads []crdt.Hash) (doc []byte, at []crdt.Hash, err error) {
	v, err := e.View(ctx, key, heads)
	return v.Doc, v.Heads, err
}

// View is JSON, with whether the record is deleted at those heads.
func (e *Engine) View(ctx context.Context, key store.Key, heads []crdt.Hash) (View, error) {
	return e.ViewWith(ctx, key, ViewOptions{Heads: heads})
}

// ViewOptions selects what ViewWith shows.
type ViewOptions struct {
	// Heads, when not nil, shows the record as it was at those heads.
	Heads []crdt.Hash
	// Conflicts fills View.Conflicts.
	Conflicts bool
}

// ViewWith is View, with the options: ErrNotFound, ErrGone and
// ErrUnknownHeads as View.
func (e *Engine) ViewWith(ctx context.Context, key store.Key, opts ViewOptions) (View, error) {
	if err := e.begin(); err != nil {
		return View{}, err
	}
	defer e.wg.Done()
	if err := key.Validate(); err != nil {
		return View{}, fmt.Errorf("engine: %w", err)
	}
	r, err := e.acquire(ctx, key)
	if err != nil {
		return View{}, err
	}
	defer e.release(r)
	return e.view(ctx, r, opts)
}

// view is ViewWith on a pinned record.
func (e *Engine) view(ctx context.Context, r *record, opts ViewOptions) (View, error) {
	key, heads := r.key, opts.Heads
	r.mu.RLock()
	seq, purged := r.seq, r.purged
	missing := r.ix.Missing(heads)
	r.mu.RUnlock()
	if seq == 0 {
		return View{}, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if purged {
		return View{}, fmt.Errorf("%w: %s", ErrGone, key)
	}
	if len(missing) > 0 {
		return View{}, fmt.Errorf("%w: %s has no change %s", ErrUnknownHeads, key, hashList(missing))
	}
	var v View
	var conflicts []crdt.Conflict
	err := e.withDoc(ctx, r, seq, func(d *crdt.Doc) error {
		doc, err := d.JSON(crdt.JSONOptions{Heads: heads, HideReserved: true})
		if err != nil {
			return err
		}
		deleted, err := d.Deleted(heads)
		if err != nil {
			return err
		}
		v = View{Doc: doc, Heads: heads, Deleted: deleted}
		if v.Heads == nil {
			v.Heads = d.Heads()
		}
		if opts.Conflicts {
			conflicts, err = d.Conflicts(heads)
		}
		return err
	})
	if errors.Is(err, crdt.ErrMissingDeps) {
		return View{}, fmt.Errorf("%w: %s: %w", ErrUnknownHeads, key, err)
	}
	if err != nil {
		return View{}, err
	}
	if opts.Conflicts {
		// Outside withDoc: who wrote each value comes from the record's
		// history, which must not wait for the document.
		if v.Conflicts, err = e.conflicts(ctx, key, conflicts); err != nil {
			return View{}, err
		}
	}
	return v, nil
}

// withDoc calls fn with the record's document, materialized up to at least
// log seq atLeast (its current state, for the caller), holding the record's
// document lock: one request builds or advances the document while the
// others wait for it. The document is built from the snapshot and the log
// tail, or advanced from where it stood by the entries since; it stays with
// the record until the cache needs the room.
func (e *Engine) withDoc(ctx context.Context, r *record, atLeast uint64, fn func(*crdt.Doc) error) error {
	r.docMu.Lock()
	defer r.docMu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.RLock()
	d, docSeq := r.doc, r.docSeq
	snap, snapSeq, tail, seq := r.snap, r.snapSeq, r.tail, r.seq
	r.mu.RUnlock()
	if d == nil || docSeq < snapSeq && !covers(tail, docSeq) {
		// Build it: from the snapshot, then the log after it.
		d, docSeq = crdt.NewDoc(), 0
		if snap != nil {
			var err error
			if d, _, err = crdt.LoadDoc(snap); err != nil {
				return fmt.Errorf("engine: %s: snapshot %d: %w", r.key, snapSeq, err)
			}
			docSeq = snapSeq
		}
		e.stats.materialized.Add(1)
	}
	if docSeq < seq {
		for _, le := range tail {
			if le.seq <= docSeq {
				continue
			}
			cs, err := crdt.ParseChanges(le.changes, storedLimits)
			if err == nil {
				err = d.Apply(cs)
			}
			if err != nil {
				// The document may hold part of the entry: drop it.
				r.mu.Lock()
				r.doc = nil
				r.updateCostLocked()
				r.mu.Unlock()
				return fmt.Errorf("engine: %s: log entry %d: %w", r.key, le.seq, err)
			}
			docSeq = le.seq
		}
	}
	if docSeq < atLeast {
		return fmt.Errorf("%w: %s: document at seq %d, want %d", ErrUnavailable, r.key, docSeq, atLeast)
	}
	r.mu.Lock()
	if docSeq >= r.docSeq || r.doc == nil {
		r.doc, r.docSeq, r.docBytes = d, docSeq, d.MemoryBytes()
		r.updateCostLocked()
	}
	r.mu.Unlock()
	return fn(d)
}

// covers reports whether the tail holds every entry after seq, so that a
// document at seq can be advanced from it.
func covers(tail []logEntry, seq uint64) bool {
	return len(tail) > 0 && tail[0].seq <= seq+1
}
