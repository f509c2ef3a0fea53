package client

import (
	"encoding/base64"
	"fmt"
	"slices"

	"github.com/automerge/automerge-go"

	"github.com/dynamerge/dynamerge/crdt"
)

// Inline is what events carry of the changes they announce (see
// EventChanges).
type Inline struct {
	// Changes are the change chunks, in the events' order, as
	// LoadIncremental takes them.
	Changes []byte
	// Hashes are the hashes of those changes.
	Hashes []automerge.ChangeHash
	// Deps are the hashes the changes depend on that they do not hold
	// themselves: a replica must hold every one before applying them.
	Deps []automerge.ChangeHash
}

// EventChanges decodes the changes that events of one record carry, in the
// order they came. ok is false when one of them carries none (a large
// change, a deleted record, another server process's write) or they are of
// different records: the record must be synced to learn what changed.
// Bytes that are not base64 of change chunks are an error; a client then
// syncs instead.
func EventChanges(evs ...Event) (in Inline, ok bool, err error) {
	var chs []crdt.Change
	for _, ev := range evs {
		if ev.Changes == "" || ev.Collection != evs[0].Collection || ev.ID != evs[0].ID {
			return Inline{}, false, nil
		}
		b, err := base64.StdEncoding.DecodeString(ev.Changes)
		if err != nil {
			return Inline{}, false, fmt.Errorf("dynamerge: event %s/%s: changes: %w", ev.Collection, ev.ID, err)
		}
		cs, err := crdt.Split(b)
		if err != nil {
			return Inline{}, false, fmt.Errorf("dynamerge: event %s/%s: changes: %w", ev.Collection, ev.ID, err)
		}
		in.Changes = append(in.Changes, b...)
		chs = append(chs, cs...)
	}
	if len(chs) == 0 {
		return Inline{}, false, nil
	}
	own := make(map[crdt.Hash]bool, len(chs))
	for _, c := range chs {
		own[c.Hash] = true
		in.Hashes = append(in.Hashes, automerge.ChangeHash(c.Hash))
	}
	seen := map[crdt.Hash]bool{}
	for _, c := range chs {
		for _, d := range c.Deps {
			if own[d] || seen[d] {
				continue
			}
			seen[d] = true
			in.Deps = append(in.Deps, automerge.ChangeHash(d))
		}
	}
	return in, true, nil
}

// ApplyEvents applies the changes that events of the replica's record
// carry (one event, or several that queued up: they are applied together,
// which costs one merge), when the replica holds all their dependencies,
// and reports whether it did: then the replica stands at (or past) the last
// event's heads and need not sync to learn of the changes. When it reports
// false (an event without changes, a dependency missing because an event
// was lost or arrived out of order), Sync the replica as before. Its own
// unpushed changes stay pending either way.
func (r *Replica) ApplyEvents(evs ...Event) (bool, error) {
	if len(evs) == 0 {
		return false, nil
	}
	last := evs[len(evs)-1]
	if last.Collection != r.collection || last.ID != r.id || last.Deleted {
		return false, nil
	}
	in, ok, err := EventChanges(evs...)
	if !ok || err != nil {
		return false, err
	}
	heads := make([]automerge.ChangeHash, len(last.Heads))
	for i, h := range last.Heads {
		if heads[i], err = automerge.NewChangeHash(h); err != nil {
			return false, fmt.Errorf("dynamerge: event %s/%s: head %q: %w", last.Collection, last.ID, h, err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// automerge-go queues changes whose dependencies are missing without a
	// word; checking first keeps the document's state plain.
	for _, d := range in.Deps {
		if _, err := r.doc.Change(d); err != nil {
			return false, nil
		}
	}
	if err := r.applyLocked(in.Changes, "apply event changes"); err != nil {
		return false, err
	}
	for _, h := range heads {
		if _, err := r.doc.Change(h); err != nil {
			return false, nil // the event's heads hold changes it did not carry
		}
	}
	// Everything up to the event's heads is on the server: the next sync
	// pushes only what was made since, and a Push asks only for what came
	// after them.
	r.base = heads
	r.server = slices.Sorted(slices.Values(last.Heads))
	return true, nil
}
