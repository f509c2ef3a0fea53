package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/dynamerge/dynamerge/client"
)

// peer is a lean replica of one record for the scenarios that must measure
// the server rather than the client: it pushes exactly the changes it made
// since its last acknowledged sync (taken by hash as they are made), where
// client.Replica asks automerge-go for the changes since the server's heads
// — a walk of the whole history that would hide the server's cost behind
// the client's on long records.
//
// A peer is used by one goroutine at a time.
type peer struct {
	c              *client.Client
	collection, id string
	doc            *automerge.Doc

	pending     []byte   // change chunks made since the last acknowledged sync
	nPending    int      // how many
	serverHeads []string // the server's heads in its last answer (sorted)
}

func newPeer(c *client.Client, collection, id string, doc *automerge.Doc) *peer {
	if doc == nil {
		doc = automerge.New()
	}
	return &peer{c: c, collection: collection, id: id, doc: doc}
}

// fork returns a peer on a copy of p's document with its own actor, so that
// its changes are new changes rather than duplicates.
func (p *peer) fork(c *client.Client) (*peer, error) {
	d, err := p.doc.Fork()
	if err != nil {
		return nil, fmt.Errorf("fork: %w", err)
	}
	if err := d.SetActorID(automerge.NewActorID()); err != nil {
		return nil, fmt.Errorf("fork: set actor: %w", err)
	}
	q := newPeer(c, p.collection, p.id, d)
	q.serverHeads = slices.Clone(p.serverHeads)
	return q, nil
}

// commit commits the document's pending edits as one change, queued for the
// next sync, and returns its hash and size.
func (p *peer) commit() (automerge.ChangeHash, int, error) {
	h, err := p.doc.Commit("")
	if err != nil {
		return h, 0, fmt.Errorf("peer %s: commit: %w", p.id, err)
	}
	ch, err := p.doc.Change(h)
	if err != nil {
		return h, 0, fmt.Errorf("peer %s: change %s: %w", p.id, h, err)
	}
	b := ch.Save()
	p.pending = append(p.pending, b...)
	p.nPending++
	return h, len(b), nil
}

// set sets field to v as one new change.
func (p *peer) set(field string, v any) (automerge.ChangeHash, int, error) {
	if err := p.doc.Path(field).Set(v); err != nil {
		return automerge.ChangeHash{}, 0, fmt.Errorf("peer %s: set %s: %w", p.id, field, err)
	}
	return p.commit()
}

func (p *peer) heads() []string {
	hs := p.doc.Heads()
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	slices.Sort(out)
	return out
}

// syncStats is what one sync moved and how long the round trip took.
type syncStats struct {
	rtt    time.Duration
	pulled []byte
}

// sync pushes the pending changes and takes in the answer. With merge it
// announces its real heads, applies what the server sends and checks that
// it then stands at the server's heads; without, it claims the server's
// last heads and drops the answer (the server still computes and sends the
// delta) so that the shared cores are not spent merging other clients'
// changes in this process.
func (p *peer) sync(ctx context.Context, merge bool) (syncStats, error) {
	have := p.serverHeads
	if merge || have == nil {
		have = p.heads()
	}
	start := time.Now()
	res, err := p.c.Sync(ctx, []client.Doc{{Collection: p.collection, ID: p.id, Have: have, Changes: p.pending}})
	st := syncStats{rtt: time.Since(start)}
	if err != nil {
		return st, fmt.Errorf("peer %s: sync: %w", p.id, err)
	}
	if res[0].Err != nil {
		return st, fmt.Errorf("peer %s: sync: %w", p.id, res[0].Err)
	}
	p.pending, p.nPending = nil, 0
	p.serverHeads = slices.Sorted(slices.Values(res[0].Heads))
	st.pulled = res[0].Changes
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

// latencies collects durations and answers nearest-rank percentiles.
type latencies struct{ d []time.Duration }

func (l *latencies) add(d time.Duration) { l.d = append(l.d, d) }

// pct returns the p-th percentile in milliseconds (NaN when empty, which
// record() leaves out of the metrics).
func (l *latencies) pct(p float64) float64 {
	if len(l.d) == 0 {
		return nan
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	rank := int(p/100*float64(len(s)) + 0.999999)
	return float64(s[min(max(rank, 1), len(s))-1]) / float64(time.Millisecond)
}

var nan = func() float64 { var z float64; return z / z }()

func (l *latencies) len() int { return len(l.d) }

func sortedStrings(s []string) []string { return slices.Sorted(slices.Values(s)) }
