package client

import (
	"encoding/base64"
	"fmt"
	"slices"

	"github.com/automerge/automerge-go"

	"github.com/dynamerge/dynamerge/crdt"
)

// Inline is what an event carries of the change it announces (see
// EventChanges).
type Inline struct {
	// Changes are the change chunks, as LoadIncremental takes them.
	Changes []byte
	// Deps are the hashes the changes depend on that they do not hold
	// themselves: a replica must hold every one before applying them.
	Deps []automerge.ChangeHash
}

// EventChanges decodes the changes an event carries. ok is false when it
// carries none (a large change, a deleted record, another server process's
// write): the record must be synced to learn what changed. Bytes that are
// not base64 of change chunks are an error; a client then syncs instead.
func EventChanges(ev Event) (in Inline, ok bool, err error) {
	if ev.Changes == "" {
		return Inline{}, false, nil
	}
	b, err := base64.StdEncoding.DecodeString(ev.Changes)
	if err != nil {
		return Inline{}, false, fmt.Errorf("dynamerge: event %s/%s: changes: %w", ev.Collection, ev.ID, err)
	}
	chs, err := crdt.Split(b)
	if err != nil {
		return Inline{}, false, fmt.Errorf("dynamerge: event %s/%s: changes: %w", ev.Collection, ev.ID, err)
	}
	own := make(map[crdt.Hash]bool, len(chs))
	for _, c := range chs {
		own[c.Hash] = true
	}
	in = Inline{Changes: b}
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

// ApplyEvent applies the changes an event of the replica's record carries,
// when the replica holds all their dependencies, and reports whether it
// did: then the replica stands at (or past) the event's heads and need not
// sync to learn of the change. When it reports false (no changes inlined,
// a dependency missing: an event was lost or arrived out of order), Sync
// the replica as before. Its own unpushed changes stay pending either way.
func (r *Replica) ApplyEvent(ev Event) (bool, error) {
	if ev.Collection != r.collection || ev.ID != r.id || ev.Deleted {
		return false, nil
	}
	in, ok, err := EventChanges(ev)
	if !ok || err != nil {
		return false, err
	}
	heads := make([]automerge.ChangeHash, len(ev.Heads))
	for i, h := range ev.Heads {
		if heads[i], err = automerge.NewChangeHash(h); err != nil {
			return false, fmt.Errorf("dynamerge: event %s/%s: head %q: %w", ev.Collection, ev.ID, h, err)
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
	r.look()
	if err := r.doc.LoadIncremental(in.Changes); err != nil {
		r.walk = true
		return false, fmt.Errorf("dynamerge: replica %s/%s: apply event changes: %w", r.collection, r.id, err)
	}
	r.seen = r.doc.Heads()
	for _, h := range heads {
		if _, err := r.doc.Change(h); err != nil {
			return false, nil // the event's heads hold changes it did not carry
		}
	}
	// Everything up to the event's heads is on the server: the next sync
	// pushes only what was made since, and a Push asks only for what came
	// after them.
	r.base = heads
	r.server = slices.Sorted(slices.Values(ev.Heads))
	return true, nil
}
