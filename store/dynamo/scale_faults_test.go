package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dynamerge/dynamerge/store"
	"github.com/dynamerge/dynamerge/store/dynamo"
	"github.com/dynamerge/dynamerge/store/dynamo/dynamotest"
)

// TestFeedShardsFaults: a feed key that cannot be read, or a shard count
// that cannot be read, fails the page (a partial page would skip records
// for good); a writer that has not read the shard count still appends, on a
// key readers read.
func TestFeedShardsFaults(t *testing.T) {
	dynamotest.Endpoint(t)
	ctx := context.Background()
	faults := &dynamotest.Faults{}
	s := dynamotest.NewStore(t, nil, func(api dynamo.API) dynamo.API { faults.API = api; return faults }, dynamotest.WithoutStream)
	if err := s.RaiseFeedShards(ctx, 8); err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		appendOne(t, s, store.Key{Collection: "ff", ID: fmt.Sprintf("r%d", i)}, 1)
	}
	queryOf := func(in any) string {
		q, ok := in.(*dynamodb.QueryInput)
		if !ok || q.IndexName == nil {
			return ""
		}
		v, _ := q.ExpressionAttributeValues[":c"].(*types.AttributeValueMemberS)
		if v == nil {
			return ""
		}
		return v.Value
	}
	for _, tc := range []struct {
		name   string
		inject func(op string, in any) dynamotest.Fault
	}{
		{"one shard throttled", func(op string, in any) dynamotest.Fault {
			if op == dynamotest.OpQuery && queryOf(in) == "ff#3" {
				return dynamotest.Fault{Err: dynamotest.Throttled()}
			}
			return dynamotest.Fault{}
		}},
		{"the unsharded key throttled", func(op string, in any) dynamotest.Fault {
			if op == dynamotest.OpQuery && queryOf(in) == "ff" {
				return dynamotest.Fault{Err: dynamotest.Throttled()}
			}
			return dynamotest.Fault{}
		}},
		{"shard count unreadable", func(op string, in any) dynamotest.Fault {
			if op == dynamotest.OpGetItem {
				return dynamotest.Fault{Err: dynamotest.Throttled()}
			}
			return dynamotest.Fault{}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			faults.Inject = tc.inject
			page, err := s.Feed(ctx, "ff", "", 100)
			faults.Inject = nil
			if !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("Feed()=%d items, %v; want store.ErrUnavailable", len(page.Items), err)
			}
			page, err = s.Feed(ctx, "ff", "", 100)
			if err != nil || len(page.Items) != 12 {
				t.Fatalf("Feed() after the fault: %d items, %v; want 12", len(page.Items), err)
			}
		})
	}

	// A fresh writer that could not read the shard count (New reads
	// nothing; its reads of the config item fail here) appends anyway, on
	// the unsharded key, and the record is listed.
	writer := dynamo.New(faults, s.Table(), nil)
	faults.Inject = func(op string, in any) dynamotest.Fault {
		if g, ok := in.(*dynamodb.GetItemInput); ok && g.Key[dynamo.AttrPK].(*types.AttributeValueMemberS).Value == dynamo.ConfigPK {
			return dynamotest.Fault{Err: dynamotest.Throttled()}
		}
		return dynamotest.Fault{}
	}
	appendOne(t, writer, store.Key{Collection: "ff", ID: "blind"}, 1)
	faults.Inject = nil
	page, err := s.Feed(ctx, "ff", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, it := range page.Items {
		found = found || it.ID == "blind"
	}
	if !found || len(page.Items) != 13 {
		t.Fatalf("after an append by a writer that could not read the shard count: %d items, blind listed %v", len(page.Items), found)
	}
}

// TestFanoutPeerDown: a registered process that stops answering (its
// endpoint is gone, its registration not yet lapsed) costs the others
// nothing but the messages to it, which are counted as dropped.
func TestFanoutPeerDown(t *testing.T) {
	dynamotest.Endpoint(t)
	client := dynamotest.Client(t)
	table := dynamotest.NewTable(t, client)
	procs := []*fanProc{startFanProc(t, client, table, nil), startFanProc(t, client, table, nil), startFanProc(t, client, table, nil)}
	procs[2].srv.CloseClientConnections()
	procs[2].srv.Close()
	live := procs[:2]
	for i := range 10 {
		key := store.Key{Collection: "down", ID: fmt.Sprintf("r%d", i)}
		appendOne(t, live[i%2].s, key, 1)
		start := time.Now()
		for j, at := range waitAll(live, key, 1, 5*time.Second) {
			if at.IsZero() {
				t.Fatalf("process %d never heard of %s while a third process was down", j, key)
			}
			if d := at.Sub(start); d > time.Second {
				t.Errorf("process %d heard of %s after %v with a third process down", j, key, d)
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for procs[0].s.FanoutStats().Dropped == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no message to the dead process was given up: %+v", procs[0].s.FanoutStats())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
