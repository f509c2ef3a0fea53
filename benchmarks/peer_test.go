package benchmarks

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/dynamerge/dynamerge/client"
)

// peer is a lean replica of one record for the benchmarks that must measure
// the server rather than the client: it pushes exactly the changes it made
// since its last acknowledged sync (taken by hash, O(1)), where
// client.Replica asks automerge-go for the changes since the server's heads
// — a walk of the whole history (5.5 ms at 100k changes, DESIGN.md) that
// would hide the server's flat cost behind the client's.
//
// A peer is used by one goroutine at a time.
type peer struct {
	c              *client.Client
	collection, id string
	doc            *automerge.Doc

	pending     []byte   // change chunks made since the last acknowledged sync
	serverHeads []string // the server's heads in its last answer (sorted)
}

func newPeer(c *client.Client, collection, id string, doc *automerge.Doc) *peer {
	if doc == nil {
		doc = automerge.New()
	}
	return &peer{c: c, collection: collection, id: id, doc: doc}
}

// fork returns a peer on a copy of doc with its own actor, so that its
// changes are new changes rather than duplicates of another peer's.
func fork(c *client.Client, collection, id string, doc *automerge.Doc) (*peer, error) {
	d, err := doc.Fork()
	if err != nil {
		return nil, fmt.Errorf("fork: %w", err)
	}
	if err := d.SetActorID(automerge.NewActorID()); err != nil {
		return nil, fmt.Errorf("fork: set actor: %w", err)
	}
	return newPeer(c, collection, id, d), nil
}

// edit sets field to v as one new change, to be pushed by the next sync.
func (p *peer) edit(field string, v int64) error {
	if err := p.doc.Path(field).Set(v); err != nil {
		return fmt.Errorf("peer %s: set %s: %w", p.id, field, err)
	}
	h, err := p.doc.Commit("")
	if err != nil {
		return fmt.Errorf("peer %s: commit: %w", p.id, err)
	}
	ch, err := p.doc.Change(h)
	if err != nil {
		return fmt.Errorf("peer %s: change %s: %w", p.id, h, err)
	}
	p.pending = append(p.pending, ch.Save()...)
	return nil
}

// heads returns the local document's heads, sorted.
func (p *peer) heads() []string {
	hs := hexHeads(p.doc.Heads())
	slices.Sort(hs)
	return hs
}

func hexHeads(hs []automerge.ChangeHash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	return out
}

// syncStats is what one sync moved and how long the server took.
type syncStats struct {
	rtt    time.Duration // the HTTP round trip alone (client-side merge excluded)
	pulled int           // change bytes the server sent
}

// sync pushes the pending changes and takes in the server's answer.
//
// With merge, it announces its real heads, applies what the server sends,
// and checks that it then stands exactly at the server's heads — every sync
// is a convergence check. Without merge it claims the server's last heads as
// its own and drops the answer: the server still computes and sends the
// delta, but the client does not pay automerge-go's merge of other clients'
// changes, which in this one process would compete with the server for the
// same two cores. A later sync with merge brings the document up to date.
func (p *peer) sync(ctx context.Context, merge bool) (syncStats, error) {
	have := p.serverHeads
	if merge || have == nil {
		have = p.heads()
	}
	start := time.Now()
	res, err := p.c.Sync(ctx, []client.Doc{{Collection: p.collection, ID: p.id, Have: have, Changes: p.pending}})
	rtt := time.Since(start)
	if err != nil {
		return syncStats{}, fmt.Errorf("peer %s: sync: %w", p.id, err)
	}
	if res[0].Err != nil {
		return syncStats{}, fmt.Errorf("peer %s: sync: %w", p.id, res[0].Err)
	}
	p.pending = nil
	p.serverHeads = slices.Sorted(slices.Values(res[0].Heads))
	st := syncStats{rtt: rtt, pulled: len(res[0].Changes)}
	if !merge {
		return st, nil
	}
	if len(res[0].Changes) > 0 {
		if err := p.doc.LoadIncremental(res[0].Changes); err != nil {
			return st, fmt.Errorf("peer %s: apply %d bytes from the server: %w", p.id, len(res[0].Changes), err)
		}
	}
	if got := p.heads(); !slices.Equal(got, p.serverHeads) {
		return st, fmt.Errorf("peer %s: heads after sync %v, server says %v", p.id, got, p.serverHeads)
	}
	return st, nil
}

// state returns what checkConverged needs of the peer.
func (p *peer) state() replicaState {
	return replicaState{collection: p.collection, id: p.id, heads: p.heads()}
}
