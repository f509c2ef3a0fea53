package engine

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/store"
)

// histories caches generated histories across benchmarks: making 100k
// Automerge changes takes seconds.
var histories sync.Map // int → *history

type history struct {
	r      *replica
	chunks [][]byte
	saved  []byte // the document after the last chunk
}

func makeHistory(tb testing.TB, n int) *history {
	tb.Helper()
	if h, ok := histories.Load(n); ok {
		return h.(*history)
	}
	h := &history{r: newReplica()}
	for i := range n {
		h.chunks = append(h.chunks, h.r.edit(tb, fmt.Sprint("k", i%16), int64(i)))
	}
	h.saved = h.r.doc.Save()
	histories.Store(n, h)
	return h
}

// benchmarkSync measures a 1-change push (and its answer) on a hot record
// with n changes of history. Invariant 5 says it must not grow with n.
func benchmarkSync(b *testing.B, n int) {
	t0 := time.Now()
	h := makeHistory(b, n)
	b.Logf("history of %d changes: %v", n, time.Since(t0))
	st := newBolt(b)
	key := todo("bench")
	// Write the history straight to the store, 1000 changes an entry.
	ctx := context.Background()
	seq := uint64(0)
	for i := 0; i < n; i += 1000 {
		var entry []byte
		for _, c := range h.chunks[i:min(i+1000, n)] {
			entry = append(entry, c...)
		}
		seq++
		if err := st.Append(ctx, key, store.Entry{Seq: seq, Changes: entry}, store.AppendMeta{}); err != nil {
			b.Fatalf("Append: %v", err)
		}
	}
	// And a snapshot of it, as compaction would have left it: a worker
	// loading 100k changes from the log alone takes over a minute
	// (automerge-go's LoadIncremental grows faster than linearly), while
	// loading the saved document takes seconds.
	if err := st.SaveSnapshot(ctx, key, store.Snapshot{Seq: seq, Data: h.saved}); err != nil {
		b.Fatalf("SaveSnapshot: %v", err)
	}
	// A cache big enough for the record: this measures the hot path.
	e, _ := newEngine(b, st, Options{CompactEvery: 1 << 30, CacheBytes: 64 << 30})
	// A fork of the history's replica keeps pushing on top of it.
	fork, err := h.r.doc.Fork()
	if err != nil {
		b.Fatal(err)
	}
	r := &replica{doc: fork}
	changes := make([][]byte, b.N+2)
	for i := range changes {
		changes[i] = r.edit(b, "bench", int64(i))
	}
	// The first push loads the record (cold) and its document in a worker.
	t0 = time.Now()
	if res := sync1(b, e, DocRequest{Key: key, Changes: changes[0]}); res.Err != nil {
		b.Fatalf("warm-up push: %v", res.Err)
	}
	b.Logf("warm-up push (cold load): %v", time.Since(t0))
	t0 = time.Now()
	if res := sync1(b, e, DocRequest{Key: key, Changes: changes[1]}); res.Err != nil {
		b.Fatalf("second push: %v", res.Err)
	}
	b.Logf("second push: %v (%+v)", time.Since(t0), e.Stats())
	changes = changes[1:]
	have := []crdt.Hash{mustHash(b, changes[0])}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		res, err := e.Sync(ctx, []DocRequest{{Key: key, Have: have, Changes: changes[i]}})
		if err != nil || res[0].Err != nil || len(res[0].Changes) != 0 {
			b.Fatalf("push %d: %v %v (%d bytes back)", i, err, res[0].Err, len(res[0].Changes))
		}
		have = res[0].Heads
	}
	b.StopTimer()
	if st := e.Stats(); st.Loads != 1 {
		b.Fatalf("%d loads of a hot record, want 1", st.Loads)
	}
}

func BenchmarkSync_History100(b *testing.B)  { benchmarkSync(b, 100) }
func BenchmarkSync_History10K(b *testing.B)  { benchmarkSync(b, 10_000) }
func BenchmarkSync_History100K(b *testing.B) { benchmarkSync(b, 100_000) }

// benchmarkConcurrentPushes: 64 goroutines pushing to one record, each its
// own replica (so every push is a new concurrent change).
func benchmarkConcurrentPushes(b *testing.B, noGroup bool) {
	e, fs := newEngine(b, newBolt(b), Options{NoGroupCommit: noGroup, CompactEvery: 1 << 30})
	key := todo("hot")
	var ids atomic.Int64
	b.SetParallelism(32) // 64 goroutines on 2 cores
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := newReplica()
		id := ids.Add(1)
		var have []crdt.Hash // what the server said last time
		for i := 0; pb.Next(); i++ {
			if err := r.doc.Path(fmt.Sprint("g", id)).Set(int64(i)); err != nil {
				b.Error(err)
				return
			}
			h, _ := r.doc.Commit("")
			c, _ := r.doc.Change(h)
			// The client would apply the answer; claiming the previous
			// heads keeps each answer to what happened in between without
			// paying automerge-go's client-side merge in the benchmark.
			res, err := e.Sync(context.Background(), []DocRequest{{Key: key, Have: have, Changes: c.Save()}})
			if err != nil || res[0].Err != nil {
				b.Errorf("push: %v %v", err, res[0].Err)
				return
			}
			have = res[0].Heads
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/float64(max(fs.appends.Load(), 1)), "pushes/append")
}

func BenchmarkPushes64_GroupCommit(b *testing.B)   { benchmarkConcurrentPushes(b, false) }
func BenchmarkPushes64_NoGroupCommit(b *testing.B) { benchmarkConcurrentPushes(b, true) }
