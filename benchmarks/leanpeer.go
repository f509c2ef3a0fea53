package benchmarks

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/dynamerge/dynamerge/client"
)

// Peer is a lean replica of one record for the benchmarks that must measure
// the server rather than the client: it pushes exactly the changes it made
// since its last acknowledged sync (taken by hash as they are made, O(1)),
// where client.Replica asks automerge-go for the changes since the server's
// heads — a walk of the whole history (5.5 ms at 100k changes, DESIGN.md)
// that would hide the server's flat cost behind the client's.
//
// A Peer is used by one goroutine at a time.
type Peer struct {
	c              *client.Client
	collection, id string
	// Doc is the replica's document. Edits made on it directly are pushed
	// once Commit has taken them as a change.
	Doc *automerge.Doc

	pending     []byte   // change chunks made since the last acknowledged sync
	nPending    int      // how many
	serverHeads []string // the server's heads in its last answer (sorted)
}

// NewPeer returns a peer of the record collection/id on doc (a new document
// when nil), syncing through c.
func NewPeer(c *client.Client, collection, id string, doc *automerge.Doc) *Peer {
	if doc == nil {
		doc = automerge.New()
	}
	return &Peer{c: c, collection: collection, id: id, Doc: doc}
}

// Client is the client the peer syncs through.
func (p *Peer) Client() *client.Client { return p.c }

// Collection and ID name the peer's record.
func (p *Peer) Collection() string { return p.collection }
func (p *Peer) ID() string         { return p.id }

// Fork returns a peer on a copy of p's document with its own actor, so that
// its changes are new changes rather than duplicates, syncing through c.
func (p *Peer) Fork(c *client.Client) (*Peer, error) {
	d, err := p.Doc.Fork()
	if err != nil {
		return nil, fmt.Errorf("fork: %w", err)
	}
	if err := d.SetActorID(automerge.NewActorID()); err != nil {
		return nil, fmt.Errorf("fork: set actor: %w", err)
	}
	q := NewPeer(c, p.collection, p.id, d)
	q.serverHeads = slices.Clone(p.serverHeads)
	return q, nil
}

// Commit commits the document's pending edits as one change, queued for the
// next sync, and returns its hash and size.
func (p *Peer) Commit() (automerge.ChangeHash, int, error) {
	h, err := p.Doc.Commit("")
	if err != nil {
		return h, 0, fmt.Errorf("peer %s: commit: %w", p.id, err)
	}
	ch, err := p.Doc.Change(h)
	if err != nil {
		return h, 0, fmt.Errorf("peer %s: change %s: %w", p.id, h, err)
	}
	b := ch.Save()
	p.pending = append(p.pending, b...)
	p.nPending++
	return h, len(b), nil
}

// Set sets field to v as one new change, to be pushed by the next sync.
func (p *Peer) Set(field string, v any) (automerge.ChangeHash, int, error) {
	if err := p.Doc.Path(field).Set(v); err != nil {
		return automerge.ChangeHash{}, 0, fmt.Errorf("peer %s: set %s: %w", p.id, field, err)
	}
	return p.Commit()
}

// Pending returns how many changes the next sync pushes.
func (p *Peer) Pending() int { return p.nPending }

// Heads returns the local document's heads, sorted.
func (p *Peer) Heads() []string {
	hs := p.Doc.Heads()
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	slices.Sort(out)
	return out
}

// SyncStats is what one sync moved and how long the server took.
type SyncStats struct {
	RTT    time.Duration // the HTTP round trip alone (client-side merge excluded)
	Pulled []byte        // the change bytes the server sent
}

// Sync pushes the pending changes and takes in the server's answer.
//
// With merge, it announces its real heads, applies what the server sends,
// and checks that it then stands exactly at the server's heads — every sync
// is a convergence check. Without merge it claims the server's last heads as
// its own and drops the answer: the server still computes and sends the
// delta, but the client does not pay automerge-go's merge of other clients'
// changes, which in the same process would compete with the server for the
// same cores. A later sync with merge brings the document up to date.
func (p *Peer) Sync(ctx context.Context, merge bool) (SyncStats, error) {
	have := p.serverHeads
	if merge || have == nil {
		have = p.Heads()
	}
	start := time.Now()
	res, err := p.c.Sync(ctx, []client.Doc{{Collection: p.collection, ID: p.id, Have: have, Changes: p.pending}})
	st := SyncStats{RTT: time.Since(start)}
	if err != nil {
		return st, fmt.Errorf("peer %s: sync: %w", p.id, err)
	}
	if res[0].Err != nil {
		return st, fmt.Errorf("peer %s: sync: %w", p.id, res[0].Err)
	}
	p.pending, p.nPending = nil, 0
	p.serverHeads = slices.Sorted(slices.Values(res[0].Heads))
	st.Pulled = res[0].Changes
	if !merge {
		return st, nil
	}
	if len(res[0].Changes) > 0 {
		if err := p.Doc.LoadIncremental(res[0].Changes); err != nil {
			return st, fmt.Errorf("peer %s: apply %d bytes from the server: %w", p.id, len(res[0].Changes), err)
		}
	}
	if got := p.Heads(); !slices.Equal(got, p.serverHeads) {
		return st, fmt.Errorf("peer %s: heads after sync %v, server says %v", p.id, got, p.serverHeads)
	}
	return st, nil
}
