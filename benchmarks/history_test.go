package benchmarks

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/engine"
)

// historyBatch is how many changes of a generated history go in one push
// while the benchmark builds the record: large, so 100k changes take a few
// hundred requests rather than 100k, yet far below the server's body limit
// (10k of these small changes are about 1 MB of base64).
const historyBatch = 10_000

// history is a generated record: one actor's document and its changes, cut
// into push batches.
type history struct {
	doc     *automerge.Doc
	batches []historyPush
}

type historyPush struct {
	changes []byte // change chunks, concatenated
	last    string // hash of the batch's last change: the heads after it
}

// histories caches generated histories per size for the whole process:
// 100k changes take automerge-go several seconds to make, and -count or a
// second benchmark of the same size must not pay that again. Guarded by
// historiesMu; the documents are only forked after they are made.
var (
	historiesMu sync.Mutex
	histories   = map[int]*history{}
)

// makeHistory returns a document with n changes by one actor, each setting
// one of 16 counters — the shape of a long-lived record edited field by
// field.
func makeHistory(tb testing.TB, n int) *history {
	tb.Helper()
	historiesMu.Lock()
	defer historiesMu.Unlock()
	if h, ok := histories[n]; ok {
		return h
	}
	start := time.Now()
	doc := automerge.New()
	for i := range n {
		if err := doc.Path(fmt.Sprint("k", i%16)).Set(int64(i)); err != nil {
			tb.Fatalf("history: set: %v", err)
		}
		if _, err := doc.Commit(""); err != nil {
			tb.Fatalf("history: commit: %v", err)
		}
	}
	// One walk of the history for all of it, then cut it into batches.
	changes, err := doc.Changes()
	if err != nil {
		tb.Fatalf("history: changes: %v", err)
	}
	if len(changes) != n {
		tb.Fatalf("history: %d changes, want %d", len(changes), n)
	}
	h := &history{doc: doc}
	for i := 0; i < n; i += historyBatch {
		batch := changes[i:min(i+historyBatch, n)]
		h.batches = append(h.batches, historyPush{
			changes: automerge.SaveChanges(batch),
			last:    batch[len(batch)-1].Hash().String(),
		})
	}
	tb.Logf("generated a history of %d changes in %v", n, time.Since(start).Round(time.Millisecond))
	histories[n] = h
	return h
}

// push writes the history into the record through the server, batch by
// batch, each announcing the heads of what went before so that the answers
// stay empty.
func (h *history) push(tb testing.TB, c *client.Client, collection, id string) {
	tb.Helper()
	ctx := context.Background()
	var have []string
	took := make([]time.Duration, len(h.batches))
	defer func() { tb.Logf("history push: batches of %d changes took %v", historyBatch, took) }()
	for i, p := range h.batches {
		start := time.Now()
		res, err := c.Sync(ctx, []client.Doc{{Collection: collection, ID: id, Have: have, Changes: p.changes}})
		if err != nil {
			tb.Fatalf("history: push batch %d: %v", i, err)
		}
		r := res[0]
		if r.Err != nil {
			tb.Fatalf("history: push batch %d: %v", i, r.Err)
		}
		if len(r.Heads) != 1 || r.Heads[0] != p.last || len(r.Changes) != 0 {
			tb.Fatalf("history: push batch %d: server at %v with %d bytes back, want %s and none",
				i, r.Heads, len(r.Changes), p.last)
		}
		have = r.Heads
		took[i] = time.Since(start).Round(time.Millisecond)
	}
}

// benchmarkSyncHistory measures one sync that pushes one change and pulls
// one change, on a hot record with n changes of history, end to end over
// HTTP. Invariant 5 says its cost must not grow with n.
//
// Two peers, A and B, hold the whole history and take turns: each edits
// once and syncs, pushing its change and pulling the other's previous one.
// Before the hot loop, the engine is restarted on the same store and the
// first sync of the record is timed alone: the cold load.
func benchmarkSyncHistory(b *testing.B, n int) {
	setup := time.Now()
	h := makeHistory(b, n)
	s := newStack(b, engine.Options{})
	const collection = "bench"
	id := fmt.Sprintf("history-%d", n)
	h.push(b, s.client, collection, id)
	pushed := time.Since(setup)

	var peers [2]*client.Replica
	for i := range peers {
		p, err := client.NewReplicaOf(s.client, collection, id, h.doc).Fork(s.client)
		if err != nil {
			b.Fatal(err)
		}
		peers[i] = p
	}

	// Cold load: a fresh engine, whose workers are already up and whose
	// HTTP connection is open (a sync of another record), meets the record
	// for the first time.
	s.restart()
	ctx := context.Background()
	warm := client.NewReplica(s.client, collection, "warm-up")
	if err := Set(warm, "x", int64(1)); err != nil {
		b.Fatal(err)
	}
	if err := warm.Sync(ctx); err != nil {
		b.Fatalf("warm-up: %v", err)
	}
	a, bb := peers[0], peers[1]
	if err := Set(a, "a", int64(-1)); err != nil {
		b.Fatal(err)
	}
	cold, err := Sync(ctx, a, true)
	if err != nil {
		b.Fatalf("cold sync: %v", err)
	}
	if err := bb.Sync(ctx); err != nil {
		b.Fatalf("catch-up sync: %v", err)
	}
	b.Logf("history %d: pushed in %v (generation included), cold load %v, setup %v in all",
		n, pushed.Round(time.Millisecond), cold.RTT.Round(time.Microsecond), time.Since(setup).Round(time.Millisecond))

	var lat Latencies
	var pulled int
	syncs := 0
	before, boltBefore := s.counts.Counts(), s.bolt.Stats()
	for b.Loop() {
		p := peers[syncs%2]
		if err := Set(p, fmt.Sprint("k", syncs%16), int64(syncs)); err != nil {
			b.Fatal(err)
		}
		st, err := Sync(ctx, p, true)
		if err != nil {
			b.Fatalf("sync %d: %v", syncs, err)
		}
		lat.Add(st.RTT)
		pulled += len(st.Pulled)
		syncs++
	}
	s.reportStore(b, syncs, before, boltBefore)
	s.reportRSS(b)

	// Both peers pull what they lack, then must stand where the server does.
	for _, p := range peers {
		if err := p.Sync(ctx); err != nil {
			b.Fatalf("final sync: %v", err)
		}
	}
	checkConverged(b, s.client, []replicaState{stateOf(peers[0]), stateOf(peers[1]), stateOf(warm)})

	b.ReportMetric(Millis(lat.Percentile(50)), "p50-ms")
	b.ReportMetric(Millis(lat.Percentile(99)), "p99-ms")
	b.ReportMetric(Millis(cold.RTT), "cold-load-ms")
	b.ReportMetric(float64(pulled)/float64(max(syncs, 1)), "pulled-B/sync")
}

func BenchmarkSync_History100(b *testing.B)  { benchmarkSyncHistory(b, 100) }
func BenchmarkSync_History10K(b *testing.B)  { benchmarkSyncHistory(b, 10_000) }
func BenchmarkSync_History100K(b *testing.B) { benchmarkSyncHistory(b, 100_000) }
