package historytest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/internal/textgen"
	"github.com/dynamerge/dynamerge/store"
)

// Measure builds a record of n typing changes on st (pushed perPush at a
// time, by two users in turns, compacted as the engine does by default)
// and logs the latency of History pages: the first page of a cold record
// (load, attribution read, history built), then warm first and deep pages
// (the deep one near the oldest change), and what the record's history
// costs in memory.
func Measure(t *testing.T, st store.Store, n, perPush int) {
	ctx := context.Background()
	key := store.Key{Collection: Collection, ID: fmt.Sprint("measure-", n)}
	e, err := engine.Open(engine.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	w := textgen.NewWriters(1, "text")[0]
	start := time.Now()
	batch := []crdt.Change{w.Create()}
	for i := 1; i < n; i++ {
		batch = append(batch, w.Type("a"))
		if len(batch) == perPush || i == n-1 {
			res, err := e.Sync(ctx, []engine.DocRequest{{Key: key, Changes: crdt.Join(batch), By: fmt.Sprint("user-", i/perPush%2)}})
			if err != nil || res[0].Err != nil {
				t.Fatalf("push: %v %v", err, res[0].Err)
			}
			batch = batch[:0]
		}
	}
	if err := e.Close(ctx); err != nil { // waits for compactions
		t.Fatal(err)
	}
	t.Logf("built %d changes in %d pushes in %v", n, (n+perPush-1)/perPush, time.Since(start).Round(time.Millisecond))

	e, err = engine.Open(engine.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	timed := func(what string, cursor string, runs int) engine.HistoryPage {
		t.Helper()
		var page engine.HistoryPage
		var best, total time.Duration
		for r := range runs {
			s := time.Now()
			page, err = e.History(ctx, key, cursor, 100)
			d := time.Since(s)
			if err != nil || len(page.Changes) == 0 {
				t.Fatalf("%s: %v (%d changes)", what, err, len(page.Changes))
			}
			total += d
			if r == 0 || d < best {
				best = d
			}
		}
		t.Logf("%-48s %d runs: mean %v, best %v", what, runs, (total / time.Duration(runs)).Round(time.Microsecond), best.Round(time.Microsecond))
		return page
	}
	s := time.Now()
	if _, err := e.Sync(ctx, []engine.DocRequest{{Key: key, Have: w.Hashes()[n-1:]}}); err != nil {
		t.Fatal(err)
	}
	t.Logf("%-48s %v", "cold record: loading it (a pull)", time.Since(s).Round(time.Millisecond))
	timed("hot record, first history request (rows, build)", "", 1)
	first := timed("warm: first page of 100", "", 200)
	if first.Changes[0].By == "" || first.Changes[0].At.IsZero() {
		t.Fatalf("newest change not attributed: %+v", first.Changes[0])
	}
	// A cursor near the oldest change: walk there once.
	cursor := first.Cursor
	for i := 0; i < n/100-2; i++ {
		p, err := e.History(ctx, key, cursor, 100)
		if err != nil {
			t.Fatal(err)
		}
		cursor = p.Cursor
	}
	deep := timed(fmt.Sprintf("warm: page of 100 after %d changes", (n/100-1)*100), cursor, 200)
	if deep.More {
		t.Fatalf("the deep page is not the last (%d changes)", len(deep.Changes))
	}
	stats := e.Stats()
	t.Logf("engine after: %d cached records, %d bytes (index, history, snapshot, document)", stats.CachedRecords, stats.CacheBytes)
}
