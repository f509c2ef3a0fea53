package integration

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/store"
	"github.com/dynamerge/dynamerge/store/dynamo"
	"github.com/dynamerge/dynamerge/store/dynamo/dynamotest"
)

// The measurements of schema/dynamodb.md. They take minutes and load the
// machine, so they run only when asked:
//
//	go test ./store/dynamo/integration -run Measure -dynamo.measure -v
var (
	measure      = flag.Bool("dynamo.measure", false, "run the DynamoDB measurements (minutes)")
	loadDuration = flag.Duration("dynamo.load-duration", 20*time.Second, "duration of the 64-client load")
	coldChanges  = flag.Int("dynamo.cold-changes", 100_000, "changes of history of the cold-load record")
	writers      = flag.Int("dynamo.writers", 64, "concurrent writers of TestMeasureStoreAppends")
	noStream     = flag.Bool("dynamo.no-stream", false, "measure on tables without a stream (DynamoDB Local's costs 20-30 ms per write)")
)

func needMeasure(t *testing.T) {
	t.Helper()
	dynamotest.Endpoint(t)
	if !*measure {
		t.Skip("a measurement: run with -dynamo.measure")
	}
}

// benchTable is how the measurements create their tables.
func benchTable() []dynamotest.TableOption {
	if *noStream {
		return []dynamotest.TableOption{dynamotest.WithoutStream}
	}
	return nil
}

// TestMeasureLoad64Clients: 64 clients push single changes to 1,000 records
// (each record edited by one client, chosen at random per push) through the
// HTTP API of one server on DynamoDB Local, for -dynamo.load-duration. It
// reports changes/s and the p50/p99 latency of a push.
func TestMeasureLoad64Clients(t *testing.T) {
	needMeasure(t)
	const clients, records = 64, 1000
	st := dynamotest.NewStore(t, nil, nil, benchTable()...)
	s := newStack(t, st, engine.Options{})
	docs := make([][]*doc, clients)
	for r := range records {
		c := r % clients
		docs[c] = append(docs[c], newDoc(store.Key{Collection: "load", ID: fmt.Sprintf("r%04d", r)}))
	}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		errs      atomic.Int64
		wg        sync.WaitGroup
	)
	ctx := context.Background()
	start := time.Now()
	deadline := start.Add(*loadDuration)
	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 2))
			var mine []time.Duration
			for i := 0; time.Now().Before(deadline); i++ {
				d := docs[c][rng.IntN(len(docs[c]))]
				d.set(t, fmt.Sprintf("f%d", i%8), i)
				t0 := time.Now()
				res, err := s.Client.Sync(ctx, []client.Doc{{Collection: d.key.Collection, ID: d.key.ID, Changes: join(d.pending)}})
				if err != nil || res[0].Err != nil {
					errs.Add(1)
					continue // kept pending, resent with the next push
				}
				mine = append(mine, time.Since(t0))
				d.pending = nil
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(latencies)
	pct := func(p float64) time.Duration { return latencies[int(float64(len(latencies)-1)*p)] }
	c := st.Capacity()
	t.Logf("64 clients, 1000 records, %v: %d pushes of 1 change, %.0f changes/s, p50 %v, p99 %v, %d errors; %d appends, %.2f write units per change",
		elapsed.Round(time.Millisecond), len(latencies), float64(len(latencies))/elapsed.Seconds(), pct(0.50), pct(0.99), errs.Load(),
		c.Appends, c.AppendWrites/float64(len(latencies)))
}

// TestMeasureWriteUnits reports the write units per change that DynamoDB
// (Local) reports: single pushes; bursts on one hot record (64 writers at
// once, group-committed by the engine); and a snapshot compaction.
func TestMeasureWriteUnits(t *testing.T) {
	needMeasure(t)
	ctx := context.Background()

	t.Run("single pushes", func(t *testing.T) {
		st := dynamotest.NewStore(t, nil, nil, benchTable()...)
		s := newStack(t, st, engine.Options{CompactEvery: 1 << 30})
		d := newDoc(store.Key{Collection: "wcu", ID: "single"})
		const n = 200
		for i := range n {
			d.set(t, fmt.Sprintf("f%d", i%8), i)
			mustPush(t, s.Client, d, d.pending)
		}
		c := st.Capacity()
		t.Logf("single pushes: %d changes in %d appends, %.2f write units per change (%.1f per append), %d conditional writes refused",
			n, c.Appends, c.AppendWrites/n, c.AppendWrites/float64(c.Appends), c.RefusedWrites)
	})

	t.Run("hot record burst with group commit", func(t *testing.T) {
		for _, noGroup := range []bool{false, true} {
			st := dynamotest.NewStore(t, nil, nil, benchTable()...)
			s := newStack(t, st, engine.Options{CompactEvery: 1 << 30, NoGroupCommit: noGroup})
			const writers, rounds = 64, 10
			key := store.Key{Collection: "wcu", ID: "hot"}
			var wg sync.WaitGroup
			for range writers {
				d := newDoc(key)
				wg.Go(func() {
					for i := range rounds {
						d.set(t, "f", i)
						mustPush(t, s.Client, d, d.pending)
					}
				})
			}
			wg.Wait()
			c := st.Capacity()
			n := writers * rounds
			t.Logf("burst of %d writers x %d pushes on one record, group commit %v: %d changes in %d appends (%.1f per append), %.2f write units per change; %d conditional writes refused (billed about 1 unit each, not in the units above: %.2f per change with them)",
				writers, rounds, !noGroup, n, c.Appends, float64(n)/float64(c.Appends), c.AppendWrites/float64(n),
				c.RefusedWrites, (c.AppendWrites+float64(c.RefusedWrites))/float64(n))
		}
	})

	t.Run("snapshot compaction", func(t *testing.T) {
		for _, textBytes := range []int{1 << 10, 100 << 10, 1 << 20} {
			st := dynamotest.NewStore(t, nil, nil, benchTable()...)
			s := newStack(t, st, engine.Options{CompactEvery: 100})
			d := newDoc(store.Key{Collection: "wcu", ID: "compact"})
			d.set(t, "text", randomText(textBytes))
			for i := range 101 {
				d.set(t, fmt.Sprintf("f%d", i%8), i)
				if i%10 == 0 {
					mustPush(t, s.Client, d, d.pending)
				}
			}
			mustPush(t, s.Client, d, d.pending)
			var c dynamo.Capacity
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				if c = st.Capacity(); c.CleanupWrites > 0 {
					break
				}
			}
			rec, err := st.Load(ctx, d.key)
			if err != nil || rec.Snapshot == nil {
				t.Fatalf("no snapshot: %v", err)
			}
			t.Logf("compaction of a record of %d bytes saved (%d log entries before): %.1f write units for the snapshot, %.1f to delete the compacted log (%.1f read units to find it)",
				len(rec.Snapshot.Data), rec.Snapshot.Seq, c.SnapshotWrites, c.CleanupWrites, c.CleanupReads)
		}
	})
}

// TestMeasureColdLoad builds a record of -dynamo.cold-changes changes
// (pushed 1,000 per sync, compacted as the engine does by default), then
// times loading it cold: store.Load alone, and the first JSON read of an
// engine that has never seen it.
func TestMeasureColdLoad(t *testing.T) {
	needMeasure(t)
	ctx := context.Background()
	st := dynamotest.NewStore(t, nil, nil, benchTable()...)
	key := store.Key{Collection: "cold", ID: "history"}
	d := newDoc(key)
	w := newStack(t, st, engine.Options{})
	n := *coldChanges
	t0 := time.Now()
	for i := range n {
		d.set(t, fmt.Sprintf("f%d", i%100), i)
		if len(d.pending) == 1000 || i == n-1 {
			mustPush(t, w.Client, d, d.pending)
		}
	}
	t.Logf("built %d changes in %v", n, time.Since(t0).Round(time.Millisecond))
	// Let the last compaction land.
	time.Sleep(2 * time.Second)

	reads := st.Capacity().Reads
	t1 := time.Now()
	rec, err := st.Load(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	loadTook := time.Since(t1)
	reads = st.Capacity().Reads - reads
	var snap, snapSeq int
	if rec.Snapshot != nil {
		snap, snapSeq = len(rec.Snapshot.Data), int(rec.Snapshot.Seq)
	}
	r := newStack(t, st, engine.Options{})
	t2 := time.Now()
	got, err := r.Client.Get(ctx, key.Collection, key.ID)
	if err != nil {
		t.Fatal(err)
	}
	getTook := time.Since(t2)
	if !slices.Equal(got.Heads, d.heads()) {
		t.Fatalf("heads differ after the cold load")
	}
	t.Logf("cold record of %d changes: store.Load %v (snapshot %d bytes at seq %d, %d log entries after it, %.1f read units); first GET through a fresh engine %v",
		n, loadTook.Round(time.Millisecond), snap, snapSeq, len(rec.Entries), reads, getTook.Round(time.Millisecond))
}

// TestMeasureStoreAppends is the store alone under the same load as
// TestMeasureLoad64Clients (-dynamo.writers, 64 by default, 1,000 records, one 200-byte entry
// per append), to tell DynamoDB (Local)'s share of the latency from the
// engine's.
func TestMeasureStoreAppends(t *testing.T) {
	needMeasure(t)
	const records = 1000
	writers := *writers
	st := dynamotest.NewStore(t, nil, nil, benchTable()...)
	var (
		mu        sync.Mutex
		latencies []time.Duration
		wg        sync.WaitGroup
	)
	ctx := context.Background()
	start := time.Now()
	deadline := start.Add(*loadDuration)
	for w := range writers {
		wg.Go(func() {
			seqs := map[int]uint64{}
			rng := rand.New(rand.NewPCG(uint64(w), 3))
			var mine []time.Duration
			payload := make([]byte, 200)
			for time.Now().Before(deadline) {
				r := w + writers*rng.IntN(records/writers) // records of this writer only
				key := store.Key{Collection: "appends", ID: fmt.Sprintf("r%04d", r)}
				seqs[r]++
				t0 := time.Now()
				if err := st.Append(ctx, key, store.Entry{Seq: seqs[r], Changes: payload}, store.AppendMeta{Heads: []string{fmt.Sprintf("%064x", seqs[r])}}); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(latencies)
	pct := func(p float64) time.Duration { return latencies[int(float64(len(latencies)-1)*p)] }
	t.Logf("store alone, %d writers, 1000 records, %v: %d appends, %.0f appends/s, p50 %v, p99 %v",
		writers, elapsed.Round(time.Millisecond), len(latencies), float64(len(latencies))/elapsed.Seconds(), pct(0.50), pct(0.99))
}
