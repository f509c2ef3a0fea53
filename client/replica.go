package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/automerge/automerge-go"
)

// Replica is a local Automerge copy of one record that syncs through a
// Client. The client trusts its server, so it applies the server's changes
// with automerge-go directly.
//
// Edit Doc(), Commit, then Sync. A Replica is safe for concurrent use except
// that edits of Doc() must not overlap a Sync of the same replica.
type Replica struct {
	c          *Client
	collection string
	id         string

	order uint64 // lock order across replicas, so SyncAll calls never deadlock

	mu  sync.Mutex
	doc *automerge.Doc
	// acked are the server's heads after the last successful sync: every
	// change up to them is on the server, so only later ones are pushed.
	acked []automerge.ChangeHash
}

// NewReplica returns an empty replica of collection/id; the first Sync pulls
// what the server has.
func NewReplica(c *Client, collection, id string) *Replica {
	return &Replica{c: c, collection: collection, id: id, doc: automerge.New(), order: replicaOrder.Add(1)}
}

var replicaOrder atomic.Uint64

// Collection returns the record's collection.
func (r *Replica) Collection() string { return r.collection }

// ID returns the record's id.
func (r *Replica) ID() string { return r.id }

// Doc returns the local document. Edit it and Commit before Sync.
func (r *Replica) Doc() *automerge.Doc { return r.doc }

// Heads returns the local document's heads as hex strings.
func (r *Replica) Heads() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return hexHeads(r.doc.Heads())
}

// ServerHeads returns the server's heads as of the last successful Sync.
func (r *Replica) ServerHeads() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return hexHeads(r.acked)
}

// Sync pushes the local changes the server has not acknowledged and applies
// what the server sends back.
func (r *Replica) Sync(ctx context.Context) error {
	return SyncAll(ctx, r.c, []*Replica{r})
}

// SyncAll syncs many replicas in one request (through c, whatever client
// each replica was made with). A whole-request error is returned as is (an
// *Error when the server answered); per-record errors are joined, each
// wrapping the record's *Error. A record refused with missing_deps is sent
// again once with its whole history, which the server always accepts.
func SyncAll(ctx context.Context, c *Client, replicas []*Replica) error {
	if len(replicas) == 0 {
		return nil
	}
	locked := slices.Clone(replicas)
	slices.SortFunc(locked, func(a, b *Replica) int { return cmp.Compare(a.order, b.order) })
	for i, r := range locked {
		if i > 0 && locked[i-1] == r {
			return fmt.Errorf("dynamerge: sync: replica %s/%s given twice", r.collection, r.id)
		}
	}
	for _, r := range locked {
		r.mu.Lock()
		defer r.mu.Unlock()
	}
	docs := make([]Doc, len(replicas))
	for i, r := range replicas {
		d, err := r.request(false)
		if err != nil {
			return err
		}
		docs[i] = d
	}
	results, err := c.Sync(ctx, docs)
	if err != nil {
		return err
	}

	var retry []int
	var errs []error
	for i, res := range results {
		if res.Err != nil && res.Err.Code == CodeMissingDeps {
			retry = append(retry, i)
			continue
		}
		if err := replicas[i].apply(res); err != nil {
			errs = append(errs, err)
		}
	}
	if len(retry) > 0 {
		full := make([]Doc, len(retry))
		for j, i := range retry {
			d, err := replicas[i].request(true)
			if err != nil {
				return err
			}
			full[j] = d
		}
		results, err := c.Sync(ctx, full)
		if err != nil {
			return err
		}
		for j, res := range results {
			if err := replicas[retry[j]].apply(res); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// request builds the sync request of the replica: its heads, and the
// changes since the server's last acknowledged heads (all of them when full).
func (r *Replica) request(full bool) (Doc, error) {
	var since []automerge.ChangeHash
	if !full {
		since = r.acked
	}
	changes, err := r.doc.Changes(since...)
	if err != nil {
		return Doc{}, fmt.Errorf("dynamerge: replica %s/%s: changes: %w", r.collection, r.id, err)
	}
	return Doc{
		Collection: r.collection,
		ID:         r.id,
		Have:       hexHeads(r.doc.Heads()),
		Changes:    automerge.SaveChanges(changes),
	}, nil
}

// apply takes in the server's answer for the replica.
func (r *Replica) apply(res DocResult) error {
	if res.Err != nil {
		return fmt.Errorf("dynamerge: replica %s/%s: %w", r.collection, r.id, res.Err)
	}
	if len(res.Changes) > 0 {
		if err := r.doc.LoadIncremental(res.Changes); err != nil {
			return fmt.Errorf("dynamerge: replica %s/%s: apply server changes: %w", r.collection, r.id, err)
		}
	}
	acked := make([]automerge.ChangeHash, 0, len(res.Heads))
	for _, h := range res.Heads {
		ch, err := automerge.NewChangeHash(h)
		if err != nil {
			return fmt.Errorf("dynamerge: replica %s/%s: server head %q: %w", r.collection, r.id, h, err)
		}
		if _, err := r.doc.Change(ch); err != nil {
			// The server's answer did not bring us to its heads (a change
			// was lost on the way): forget what it acknowledged, so the next
			// sync resends everything and pulls from scratch.
			r.acked = nil
			return fmt.Errorf("dynamerge: replica %s/%s: server head %s missing after sync", r.collection, r.id, h)
		}
		acked = append(acked, ch)
	}
	r.acked = acked
	return nil
}

func hexHeads(hs []automerge.ChangeHash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	return out
}
