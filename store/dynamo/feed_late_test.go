package dynamo_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/store"
	"github.com/dynamerge/dynamerge/store/dynamo"
	"github.com/dynamerge/dynamerge/store/dynamo/dynamotest"
)

// TestFeedListsLateMetaUpdate: a writer whose meta update lands long after
// its put (throttled attempts, each up to CallTimeout) writes the feed
// position of the update's time, not the put's: a feed follower whose
// cursor moved on meanwhile (past FeedOverlap) still lists the change.
func TestFeedListsLateMetaUpdate(t *testing.T) {
	dynamotest.Endpoint(t)
	ctx := context.Background()
	client, table := oneTable(t)
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	opts := &dynamo.Options{Now: now}
	h := dynamo.New(client, table, opts)
	r := dynamo.New(client, table, opts)
	other := store.Key{Collection: testKey.Collection, ID: "other"}

	cursor := ""
	seen := map[string][]string{} // ID -> heads last listed
	poll := func() {
		for {
			page, err := r.Feed(ctx, testKey.Collection, cursor, 10)
			if err != nil {
				t.Fatalf("Feed = %v", err)
			}
			for _, it := range page.Items {
				seen[it.ID] = it.Heads
			}
			cursor = page.Cursor
			if !page.More {
				return
			}
		}
	}

	if err := h.Append(ctx, testKey, entry(1, 100), meta(1)); err != nil {
		t.Fatal(err)
	}
	poll()

	var calls atomic.Int32
	inject := func(op string, in any) dynamotest.Fault {
		if op != dynamotest.OpUpdateItem || skOf(in) != dynamo.SKMeta {
			return dynamotest.Fault{}
		}
		n := calls.Add(1)
		if n > 3 {
			return dynamotest.Fault{} // the 4th attempt (ConflictRetries = 3) lands
		}
		offset.Add(int64(11 * time.Second)) // each throttled attempt ~ CallTimeout
		if n == 3 {
			// Meanwhile the collection lives on and the follower polls.
			if err := h.Append(ctx, other, entry(1, 10), meta(1)); err != nil {
				t.Fatal(err)
			}
			poll()
		}
		return dynamotest.Fault{Err: dynamotest.Throttled()}
	}
	w := dynamo.New(&dynamotest.Faults{API: client, Inject: inject}, table, opts)
	if err := w.Append(ctx, testKey, entry(2, 100), meta(2)); err != nil {
		t.Fatalf("Append(2) = %v", err) // acknowledged
	}
	if rec, err := r.Load(ctx, testKey); err != nil || rec.Seq != 2 {
		t.Fatalf("Load = %+v, %v", rec, err)
	}
	// The follower keeps following its cursor.
	for range 3 {
		offset.Add(int64(time.Second))
		poll()
	}
	if !slices.Equal(seen[testKey.ID], meta(2).Heads) {
		t.Fatalf("the feed follower never listed %s at seq 2 (last listed heads %v): an acknowledged change skipped", testKey.ID, seen[testKey.ID])
	}
}
