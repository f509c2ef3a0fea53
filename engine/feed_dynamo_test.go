package engine

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/store"
	"github.com/dynamerge/dynamerge/store/dynamo"
	"github.com/dynamerge/dynamerge/store/dynamo/dynamotest"
)

// TestAckedRetryReachesFeed: process A's append stores log#2 but its meta
// updates fail (throttled), so its client gets an error and retries on
// process B within PendingGrace. B's read returns the pending entry, finds
// the change stored and acknowledges it without an append; the store then
// completes the entry once it is PendingGrace old, so a feed follower lists
// the acknowledged change (it used to wait until the record was read or
// written again).
func TestAckedRetryReachesFeed(t *testing.T) {
	dynamotest.Endpoint(t)
	client := dynamotest.Client(t)
	table := dynamotest.NewTable(t, client, dynamotest.WithoutStream)
	var failMeta atomic.Bool
	stA := dynamo.New(&dynamotest.Faults{API: client, Inject: func(op string, in any) dynamotest.Fault {
		if op == dynamotest.OpUpdateItem && failMeta.Load() {
			return dynamotest.Fault{Err: dynamotest.Throttled()}
		}
		return dynamotest.Fault{}
	}}, table, nil)
	stB := dynamo.New(client, table, nil)
	eA, _ := newEngine(t, stA, Options{})
	eB, _ := newEngine(t, stB, Options{})
	key := store.Key{Collection: "notes", ID: "n1"}

	rep := newReplica()
	if res := rep.push(t, eA, key, rep.edit(t, "a", 1)); res.Err != nil {
		t.Fatal(res.Err)
	}
	failMeta.Store(true)
	c2 := rep.edit(t, "a", 2)
	if res := sync1(t, eA, DocRequest{Key: key, Have: nil, Changes: c2}); res.Err == nil {
		t.Fatal("push to A with meta updates failing succeeded")
	} else {
		t.Logf("push to A: %v", res.Err)
	}
	failMeta.Store(false)
	res := sync1(t, eB, DocRequest{Key: key, Have: nil, Changes: c2})
	if res.Err != nil {
		t.Fatalf("retry on B: %v", res.Err)
	}
	want := rep.heads()
	if !slices.Equal(res.Heads, want) {
		t.Fatalf("B acked at heads %v, want %v", res.Heads, want)
	}
	t.Logf("B acknowledged the change (heads %v)", res.Heads)

	time.Sleep(dynamo.PendingGrace + time.Second)
	// A feed follower, a minute later, in a third process.
	f := dynamo.New(client, table, &dynamo.Options{Now: func() time.Time { return time.Now().Add(time.Minute) }})
	page, err := f.Feed(t.Context(), key.Collection, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range page.Items {
		if it.ID == key.ID {
			if len(it.Heads) != len(want) || it.Heads[0] != want[0].String() {
				t.Fatalf("feed lists %s at heads %v, not the acknowledged %v", it.ID, it.Heads, want)
			}
			return
		}
	}
	t.Fatalf("feed does not list %s", key.ID)
}
