package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/store"
)

// Session sizes of TestConvergence. The default keeps `go test -race` on two
// cores under about two minutes.
const (
	convSessionsShort   = 20
	convSessionsDefault = 120
	convSessionsLong    = 2000
	convMinPeers        = 8
	convRecords         = 3 // one hot record every peer edits, the rest shared by a few
	convRestartChance   = 0.08
	convProgressEvery   = 1000 // sessions between progress lines (make soak runs -v)
)

// seedFor returns the -seed flag, or a fresh seed, and prints it so that a
// failure can be replayed.
func seedFor(tb testing.TB) uint64 {
	tb.Helper()
	seed := *flagSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	tb.Logf("seed %d (replay with -seed=%d)", seed, seed)
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("FAILED with seed %d: go test ./e2e -run '^%s$' -seed=%d", seed, tb.Name(), seed)
		}
	})
	return seed
}

// convStats counts what the sessions did, to show that each kind of event
// actually happened.
type convStats struct {
	pushes, offline, reordered, duplicates, missingDeps, restarts atomic.Int64
}

// convPeer is one client: a replica of each record it takes part in, edited
// and synced by one goroutine at a time.
type convPeer struct {
	name     string
	replicas []*replica
}

func TestConvergence(t *testing.T) {
	sessions := *flagSessions
	switch {
	case sessions > 0:
	case testing.Short():
		sessions = convSessionsShort
	case *flagLong:
		sessions = convSessionsLong
	default:
		sessions = convSessionsDefault
	}
	seed := seedFor(t)
	rng := rand.New(rand.NewPCG(seed, 0))
	s := newStack(t)
	acks := newAckLog()
	var stats convStats
	final := map[store.Key][]string{} // heads every record converged to
	start := time.Now()
	for i := 0; i < sessions && !t.Failed(); i++ {
		runConvSession(t, s, acks, &stats, seed, i, rng, final)
		if (i+1)%convProgressEvery == 0 {
			t.Logf("%d of %d sessions in %v", i+1, sessions, time.Since(start).Round(time.Second))
		}
	}
	if t.Failed() {
		return
	}
	// A last restart: everything converged must still be there, unchanged.
	s.restart()
	ctx := context.Background()
	for key, want := range final {
		rec, err := s.client.Get(ctx, key.Collection, key.ID)
		if len(want) == 0 {
			if !client.IsCode(err, client.CodeNotFound) {
				t.Errorf("after final restart: GET %s that nobody wrote: %v, want not_found", key, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("after final restart: GET %s: %v", key, err)
		}
		if got := sortedHeads(rec.Heads); !slices.Equal(got, want) {
			t.Errorf("after final restart: %s heads %v, want %v", key, got, want)
		}
	}
	t.Logf("%d sessions in %v: %d records, %d pushes, %d acked changes, %d offline periods, %d reordered pushes, %d duplicate pushes, %d missing_deps recoveries, %d server restarts",
		sessions, time.Since(start).Round(time.Millisecond), len(final), stats.pushes.Load(), acks.count(),
		stats.offline.Load(), stats.reordered.Load(), stats.duplicates.Load(), stats.missingDeps.Load(), stats.restarts.Load())
}

func runConvSession(t *testing.T, s *stack, acks *ackLog, stats *convStats, seed uint64, session int, rng *rand.Rand, final map[store.Key][]string) {
	ctx := context.Background()
	keys := make([]store.Key, convRecords)
	for i := range keys {
		keys[i] = store.Key{Collection: "conv", ID: fmt.Sprintf("s%d-r%d", session, i)}
	}
	// The hot record, and about half of the others, start from a common
	// change holding a short text, so that the peers' text edits are
	// concurrent edits of one text object (peers that each create "body"
	// make rival objects, of which only one is seen).
	bases := make([][]byte, convRecords)
	for i := range keys {
		if i == 0 || rng.IntN(2) == 0 {
			bases[i] = baseText(t, fmt.Sprintf("%016x%08x%04x%04x", seed, session, 0xffff, i), randomText(rng, 20+rng.IntN(60)))
		}
	}
	peers := make([]*convPeer, convMinPeers+rng.IntN(2))
	for p := range peers {
		peer := &convPeer{name: fmt.Sprintf("session %d peer %d", session, p)}
		for i, key := range keys {
			// Record 0 is hot: everyone edits it. The others are shared by
			// a few peers: two, and about a sixth of the others.
			if i == 0 || p < 2 || rng.IntN(6) == 0 {
				actor := fmt.Sprintf("%016x%08x%04x%04x", seed, session, p, i)
				r := newReplica(t, key, actor)
				if bases[i] != nil {
					if err := r.doc.LoadIncremental(bases[i]); err != nil {
						t.Fatalf("%s: load the base change: %v", key, err)
					}
				}
				peer.replicas = append(peer.replicas, r)
			}
		}
		peers[p] = peer
	}
	rounds := 2 + rng.IntN(2)
	restartAt := -1
	if rng.Float64() < convRestartChance {
		restartAt = rng.IntN(rounds)
	}
	for round := 0; round < rounds && !t.Failed(); round++ {
		if round == restartAt {
			s.restart()
			stats.restarts.Add(1)
		}
		var wg sync.WaitGroup
		for p, peer := range peers {
			prng := rand.New(rand.NewPCG(seed, uint64(session)<<32|uint64(round)<<16|uint64(p)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, r := range peer.replicas {
					convStep(ctx, t, s.client, acks, stats, prng, peer.name, r)
				}
			}()
		}
		wg.Wait()
	}
	if t.Failed() {
		return
	}
	quiesce(ctx, t, s.client, acks, peers, session)
	if t.Failed() {
		return
	}
	for _, key := range keys {
		verifyConverged(ctx, t, s, acks, peers, key, session)
		var one *replica
		for _, p := range peers {
			for _, r := range p.replicas {
				if r.key == key {
					one = r
				}
			}
		}
		final[key] = hashStrings(one.doc.Heads())
	}
}

// convStep is one peer's turn on one replica: a few edits, then one of
// sync, stay offline, push a later change before an earlier one, or resend
// an acknowledged push.
func convStep(ctx context.Context, t *testing.T, c *client.Client, acks *ackLog, stats *convStats, rng *rand.Rand, who string, r *replica) {
	for range rng.IntN(4) {
		r.edit(t, rng)
	}
	fail := func(what string, e *client.Error, err error) {
		t.Errorf("%s %s: %s: per-doc error %v, request error %v (server heads known %v, local heads %v)",
			who, r.key, what, e, err, hashStrings(r.server), hashStrings(r.doc.Heads()))
	}
	switch x := rng.Float64(); {
	case x < 0.25: // offline: changes pile up locally
		stats.offline.Add(1)
		return
	case x < 0.40: // reordered: the later of two new changes goes first
		r.edit(t, rng)
		r.edit(t, rng)
		// After a local commit the only head is that commit, whose
		// dependency (the first of the two) the server has never seen.
		heads := r.doc.Heads()
		later, cerr := r.doc.Change(heads[0])
		if len(heads) != 1 || cerr != nil {
			t.Fatalf("%s %s: after a commit heads are %v (%v)", who, r.key, heads, cerr)
		}
		last := []*automerge.Change{later}
		stats.pushes.Add(1)
		stats.reordered.Add(1)
		e, err := r.push(ctx, t, c, acks, last)
		if err != nil || e == nil || e.Code != "missing_deps" {
			fail("push of a change without its dependency: want missing_deps", e, err)
			return
		}
		// The protocol's recovery: resend the whole history.
		stats.missingDeps.Add(1)
		all, cerr := r.doc.Changes()
		if cerr != nil {
			t.Fatalf("%s: Changes(): %v", r.key, cerr)
		}
		stats.pushes.Add(1)
		if e, err := r.push(ctx, t, c, acks, all); err != nil || e != nil {
			fail("resend of the whole history", e, err)
		}
		return
	case x < 0.55 && len(r.acked) > 0: // duplicate of an acknowledged push
		old := r.acked[rng.IntN(len(r.acked))]
		stats.pushes.Add(1)
		stats.duplicates.Add(1)
		res, err := c.Sync(ctx, []client.Doc{{Collection: r.key.Collection, ID: r.key.ID, Have: hashStrings(r.doc.Heads()), Changes: old}})
		if err != nil || len(res) != 1 || res[0].Err != nil {
			var e *client.Error
			if len(res) == 1 {
				e = res[0].Err
			}
			fail("resend of an acknowledged push", e, err)
			return
		}
		// Answer applied without acking anything new: these changes were
		// acknowledged before.
		if e := r.apply(t, res[0], nil, nil, acks); e != nil {
			fail("resend of an acknowledged push", e, nil)
			return
		}
	}
	stats.pushes.Add(1)
	if err := r.sync(ctx, t, c, acks); err != nil {
		fail("sync", nil, err)
	}
}

// quiesce syncs every replica until all replicas of each record agree.
func quiesce(ctx context.Context, t *testing.T, c *client.Client, acks *ackLog, peers []*convPeer, session int) {
	const maxRounds = 6
	for round := 0; round < maxRounds; round++ {
		var wg sync.WaitGroup
		for _, peer := range peers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, r := range peer.replicas {
					if err := r.sync(ctx, t, c, acks); err != nil {
						t.Errorf("%s %s: final sync: %v", peer.name, r.key, err)
					}
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		heads := map[store.Key]string{}
		agree := true
		for _, peer := range peers {
			for _, r := range peer.replicas {
				h := fmt.Sprint(hashStrings(r.doc.Heads()))
				if prev, ok := heads[r.key]; ok && prev != h {
					agree = false
				}
				heads[r.key] = h
				// Pending local changes mean another round is needed.
				if !slices.Equal(hashStrings(r.server), hashStrings(r.doc.Heads())) {
					agree = false
				}
			}
		}
		if agree {
			return
		}
	}
	t.Errorf("session %d: replicas did not converge after %d sync rounds", session, maxRounds)
}

// verifyConverged checks one record after quiescence: every replica, the
// server's JSON view and the stored log have the same heads and JSON, and
// every acknowledged change is in the stored log.
func verifyConverged(ctx context.Context, t *testing.T, s *stack, acks *ackLog, peers []*convPeer, key store.Key, session int) {
	var ref *replica
	var refName string
	for _, peer := range peers {
		for _, r := range peer.replicas {
			if r.key != key {
				continue
			}
			if ref == nil {
				ref, refName = r, peer.name
				continue
			}
			if got, want := hashStrings(r.doc.Heads()), hashStrings(ref.doc.Heads()); !slices.Equal(got, want) {
				t.Errorf("session %d %s: %s heads %v, %s heads %v", session, key, peer.name, got, refName, want)
			}
			if got, want := docJSON(t, r.doc), docJSON(t, ref.doc); !jsonEqual(got, want) {
				t.Errorf("session %d %s: %s JSON %s, %s JSON %s", session, key, peer.name, compact(got), refName, compact(want))
			}
		}
	}
	want := hashStrings(ref.doc.Heads())
	wantJSON := docJSON(t, ref.doc)
	if len(want) == 0 {
		// Nobody ever edited this record: the server must not have it.
		if _, err := s.client.Get(ctx, key.Collection, key.ID); !client.IsCode(err, client.CodeNotFound) {
			t.Errorf("session %d: GET %s that nobody wrote: %v, want not_found", session, key, err)
		}
		if _, err := s.store.Load(ctx, key); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("session %d: store Load %s that nobody wrote: %v, want ErrNotFound", session, key, err)
		}
		return
	}

	rec, err := s.client.Get(ctx, key.Collection, key.ID)
	if err != nil {
		t.Errorf("session %d: GET %s: %v", session, key, err)
	} else {
		if got := sortedHeads(rec.Heads); !slices.Equal(got, want) {
			t.Errorf("session %d %s: server JSON view heads %v, replicas %v", session, key, got, want)
		}
		if got := decodeJSON(t, rec.Doc); !jsonEqual(got, wantJSON) {
			t.Errorf("session %d %s: server JSON %s, replicas %s", session, key, compact(got), compact(wantJSON))
		}
	}

	stored := loadStored(ctx, t, s.store, key)
	if got := hashStrings(stored.Heads()); !slices.Equal(got, want) {
		t.Errorf("session %d %s: stored log heads %v, replicas %v", session, key, got, want)
	}
	if got := docJSON(t, stored); !jsonEqual(got, wantJSON) {
		t.Errorf("session %d %s: stored JSON %s, replicas %s", session, key, compact(got), compact(wantJSON))
	}
	if lost := acks.missing(key, stored); len(lost) > 0 {
		t.Errorf("session %d %s: %d acknowledged changes missing from the store, e.g. %s", session, key, len(lost), lost[0])
	}
}

// baseText returns the change bytes of a document, made by actor, whose
// "body" is a text holding s.
func baseText(tb testing.TB, actor, s string) []byte {
	tb.Helper()
	d := automerge.New()
	if err := d.SetActorID(actor); err != nil {
		tb.Fatalf("SetActorID(%q): %v", actor, err)
	}
	if err := d.RootMap().Set("body", automerge.NewText(s)); err != nil {
		tb.Fatalf("base text: %v", err)
	}
	if _, err := d.Commit("base"); err != nil {
		tb.Fatalf("base text: commit: %v", err)
	}
	return d.Save()
}
