package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/automerge/automerge-go"
)

// Replica is a local Automerge copy of one record that syncs through a
// Client. The client trusts its server, so it applies the server's changes
// with automerge-go directly.
//
// Edit Doc(), Commit, then Sync. A Replica is safe for concurrent use except
// that edits of Doc() must not overlap a Sync or Commit of the same replica.
//
// A replica keeps the changes made through Commit since the server last
// acknowledged a push, so a sync pushes exactly those: its cost follows
// what changed, not the record's history. Asking automerge-go for the
// changes since the server's heads instead walks the whole history (5.5 ms
// at 100,000 changes), which the replica falls back to only when the
// document moved in a way it did not see (a commit or a merge made on
// Doc() directly).
type Replica struct {
	c          *Client
	collection string
	id         string

	order uint64 // lock order across replicas, so SyncAll calls never deadlock

	mu  sync.Mutex
	doc *automerge.Doc
	// pending holds the change chunks made through Commit since the last
	// acknowledged push, in order; nPending counts them.
	pending  []byte
	nPending int
	// seen are the document's heads as the replica last left them (after a
	// Commit, Apply or merged answer). Other heads mean the document moved
	// behind its back: walk is set and the next push sends every change
	// since base.
	seen []automerge.ChangeHash
	walk bool
	// base are server heads the local document holds: every change up to
	// them is on the server.
	base []automerge.ChangeHash
	// server are the server's heads in its last answer, sorted (the
	// document may not hold them after a Push).
	server []string
	last   SyncInfo
}

// SyncInfo is what the replica's last sync moved.
type SyncInfo struct {
	RTT    time.Duration // the HTTP round trip alone, merging excluded
	Pushed int           // changes pushed
	// Pulled are the change chunks the server sent: what arrived. The
	// replica holds them until its next sync.
	Pulled []byte
}

// NewReplica returns an empty replica of collection/id; the first Sync pulls
// what the server has.
func NewReplica(c *Client, collection, id string) *Replica {
	return NewReplicaOf(c, collection, id, automerge.New())
}

// NewReplicaOf returns a replica of collection/id holding doc, a copy made
// earlier (loaded from disk, or received elsewhere). Its first sync pushes
// every change of doc, which the server takes idempotently.
func NewReplicaOf(c *Client, collection, id string, doc *automerge.Doc) *Replica {
	return &Replica{c: c, collection: collection, id: id, doc: doc, order: replicaOrder.Add(1), seen: doc.Heads()}
}

var replicaOrder atomic.Uint64

// Collection returns the record's collection.
func (r *Replica) Collection() string { return r.collection }

// ID returns the record's id.
func (r *Replica) ID() string { return r.id }

// Client returns the client the replica syncs through.
func (r *Replica) Client() *Client { return r.c }

// Doc returns the local document. Edit it and Commit before Sync.
func (r *Replica) Doc() *automerge.Doc { return r.doc }

// Heads returns the local document's heads as hex strings, sorted.
func (r *Replica) Heads() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return hexHeads(r.doc.Heads())
}

// ServerHeads returns the server's heads as of the last successful sync,
// sorted.
func (r *Replica) ServerHeads() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.server)
}

// Pending returns how many changes made through Commit the next sync
// pushes.
func (r *Replica) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nPending
}

// LastSync returns what the last successful sync of the replica moved.
func (r *Replica) LastSync() SyncInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// Commit commits the document's edits as one change with message msg and
// queues it for the next sync. It returns the change, or nil when there was
// nothing to commit.
func (r *Replica) Commit(msg string) (*automerge.Change, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Not look() first: automerge-go's Heads commits the open edits.
	h, err := r.doc.Commit(msg)
	if err != nil {
		// automerge-go refuses an empty commit with an error; the document
		// standing where the replica left it tells that case apart.
		r.look()
		if !r.walk {
			return nil, nil
		}
		return nil, fmt.Errorf("dynamerge: replica %s/%s: commit: %w", r.collection, r.id, err)
	}
	c, err := r.doc.Change(h)
	if err != nil {
		r.walk = true
		return nil, fmt.Errorf("dynamerge: replica %s/%s: change %s: %w", r.collection, r.id, h, err)
	}
	// A commit depends on every head: other dependencies than the heads
	// the replica saw mean commits it did not see.
	if !equalHeads(c.Dependencies(), r.seen) {
		r.walk = true
	}
	r.pending = append(r.pending, c.Save()...)
	r.nPending++
	r.seen = []automerge.ChangeHash{h}
	return c, nil
}

// Apply merges change chunks the server already holds that reached the
// replica outside its own syncs (an event's inlined changes), keeping track
// of where the document stands, so the next sync stays as cheap. Changes
// from anywhere else go through Doc().LoadIncremental: the replica then
// sees that the document moved and pushes everything since the server's
// heads.
func (r *Replica) Apply(changes []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applyLocked(changes, "apply")
}

// applyLocked merges server changes into the document and notes where it
// stands. A failed merge may have left part of them applied: the next push
// then walks the history (what is tracked no longer tells the document).
func (r *Replica) applyLocked(changes []byte, what string) error {
	r.look()
	if err := r.doc.LoadIncremental(changes); err != nil {
		r.walk = true
		return fmt.Errorf("dynamerge: replica %s/%s: %s: %w", r.collection, r.id, what, err)
	}
	r.seen = r.doc.Heads()
	return nil
}

// look notes whether the document moved since the replica last saw it,
// and returns its heads.
func (r *Replica) look() []automerge.ChangeHash {
	hs := r.doc.Heads()
	if !equalHeads(hs, r.seen) {
		r.walk = true
	}
	return hs
}

func equalHeads(a, b []automerge.ChangeHash) bool {
	cmpHash := func(x, y automerge.ChangeHash) int { return slices.Compare(x[:], y[:]) }
	return slices.Equal(slices.SortedFunc(slices.Values(a), cmpHash), slices.SortedFunc(slices.Values(b), cmpHash))
}

// Fork returns a replica of the same record on a copy of the document with
// a new actor (so its edits are new changes), syncing through c: a second
// device starting from this one's copy.
func (r *Replica) Fork(c *Client) (*Replica, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, err := r.doc.Fork()
	if err != nil {
		return nil, fmt.Errorf("dynamerge: replica %s/%s: fork: %w", r.collection, r.id, err)
	}
	if err := d.SetActorID(automerge.NewActorID()); err != nil {
		return nil, fmt.Errorf("dynamerge: replica %s/%s: fork: set actor: %w", r.collection, r.id, err)
	}
	f := NewReplicaOf(c, r.collection, r.id, d)
	f.pending, f.nPending, f.walk = slices.Clone(r.pending), r.nPending, r.walk
	f.base, f.server = slices.Clone(r.base), slices.Clone(r.server)
	return f, nil
}

// Sync pushes the local changes the server has not acknowledged and applies
// what the server sends back; the document then holds the server's heads.
func (r *Replica) Sync(ctx context.Context) error {
	return syncAll(ctx, r.c, []*Replica{r}, true)
}

// Push pushes the local changes the server has not acknowledged and does
// not apply what the server sends back: a writer that does not need the
// others' edits yet (a logger, a bulk import) skips merging them, and the
// server, told the heads it answered last, sends only what came since. A
// later Sync brings the document up to date.
func (r *Replica) Push(ctx context.Context) error {
	return syncAll(ctx, r.c, []*Replica{r}, false)
}

// SyncAll syncs many replicas in one request (through c, whatever client
// each replica was made with). A whole-request error is returned as is (an
// *Error when the server answered); per-record errors are joined, each
// wrapping the record's *Error. A record refused with missing_deps is sent
// again once with its whole history, which the server always accepts.
func SyncAll(ctx context.Context, c *Client, replicas []*Replica) error {
	return syncAll(ctx, c, replicas, true)
}

func syncAll(ctx context.Context, c *Client, replicas []*Replica, merge bool) error {
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
	pushed := make([]int, len(replicas))
	for i, r := range replicas {
		d, n, err := r.request(false, merge)
		if err != nil {
			return err
		}
		docs[i], pushed[i] = d, n
	}
	start := time.Now()
	results, err := c.Sync(ctx, docs)
	rtt := time.Since(start)
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
		if err := replicas[i].apply(res, merge, SyncInfo{RTT: rtt, Pushed: pushed[i]}); err != nil {
			errs = append(errs, err)
		}
	}
	if len(retry) > 0 {
		full := make([]Doc, len(retry))
		for j, i := range retry {
			d, n, err := replicas[i].request(true, merge)
			if err != nil {
				return err
			}
			full[j], pushed[i] = d, n
		}
		start := time.Now()
		results, err := c.Sync(ctx, full)
		rtt += time.Since(start)
		if err != nil {
			return err
		}
		for j, res := range results {
			i := retry[j]
			if err := replicas[i].apply(res, merge, SyncInfo{RTT: rtt, Pushed: pushed[i]}); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// request builds the sync request of the replica and says how many changes
// it pushes: the changes made through Commit since the last acknowledged
// push, every change since base when the document moved behind the
// replica's back, all of them when full. A merging sync announces the
// document's heads; a push announces the server's last heads, so that the
// answer holds only what came since.
func (r *Replica) request(full, merge bool) (Doc, int, error) {
	d := Doc{Collection: r.collection, ID: r.id, Have: hexHeads(r.look())}
	if !merge && r.server != nil {
		d.Have = slices.Clone(r.server)
	}
	if !full && !r.walk {
		d.Changes = r.pending
		return d, r.nPending, nil
	}
	var since []automerge.ChangeHash
	if !full {
		since = r.base
	}
	changes, err := r.doc.Changes(since...)
	if err != nil {
		return Doc{}, 0, fmt.Errorf("dynamerge: replica %s/%s: changes: %w", r.collection, r.id, err)
	}
	d.Changes = automerge.SaveChanges(changes)
	return d, len(changes), nil
}

// apply takes in the server's answer for the replica: what it pushed is
// acknowledged, and with merge the server's changes are applied.
func (r *Replica) apply(res DocResult, merge bool, info SyncInfo) error {
	if res.Err != nil {
		return fmt.Errorf("dynamerge: replica %s/%s: %w", r.collection, r.id, res.Err)
	}
	r.pending, r.nPending, r.walk = nil, 0, false
	r.server = slices.Sorted(slices.Values(res.Heads))
	info.Pulled = res.Changes
	r.last = info
	if !merge {
		return nil
	}
	if len(res.Changes) > 0 {
		if err := r.doc.LoadIncremental(res.Changes); err != nil {
			r.walk = true
			return fmt.Errorf("dynamerge: replica %s/%s: apply server changes: %w", r.collection, r.id, err)
		}
	}
	r.seen = r.doc.Heads()
	base := make([]automerge.ChangeHash, 0, len(res.Heads))
	for _, h := range res.Heads {
		ch, err := automerge.NewChangeHash(h)
		if err != nil {
			return fmt.Errorf("dynamerge: replica %s/%s: server head %q: %w", r.collection, r.id, h, err)
		}
		if _, err := r.doc.Change(ch); err != nil {
			// The server's answer did not bring us to its heads (a change
			// was lost on the way): forget what it acknowledged, so the next
			// sync resends everything and pulls from scratch.
			r.base, r.walk = nil, true
			return fmt.Errorf("dynamerge: replica %s/%s: server head %s missing after sync", r.collection, r.id, h)
		}
		base = append(base, ch)
	}
	r.base = base
	return nil
}

// hexHeads returns hs as hex strings, sorted.
func hexHeads(hs []automerge.ChangeHash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	slices.Sort(out)
	return out
}
