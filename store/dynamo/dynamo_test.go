package dynamo_test

import (
	"context"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/store"
	"github.com/dynamerge/dynamerge/store/dynamo"
	"github.com/dynamerge/dynamerge/store/dynamo/dynamotest"
	"github.com/dynamerge/dynamerge/store/storetest"
)

// TestConformance runs the store conformance suite on DynamoDB Local, one
// fresh table per case. The tables have no stream, which the suite does not
// read and which makes DynamoDB Local's writes ten times slower; the stream
// tests cover the table as deployed.
func TestConformance(t *testing.T) {
	dynamotest.Endpoint(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return dynamotest.NewStore(t, nil, nil, dynamotest.WithoutStream)
	})
}

// TestFeedLateClock has two processes share a table, one with a clock 10 s
// behind. A reader that followed the feed to its end (through the process
// with the right clock) still sees, with its last cursor, a record the late
// process writes afterwards, although that record sorts before the
// reader's position: the feed's overlap window covers it.
func TestFeedLateClock(t *testing.T) {
	dynamotest.Endpoint(t)
	client := dynamotest.Client(t)
	table := dynamotest.NewTable(t, client, dynamotest.WithoutStream)
	onTime := dynamo.New(client, table, nil)
	late := dynamo.New(client, table, &dynamo.Options{Now: func() time.Time { return time.Now().Add(-10 * time.Second) }})
	ctx := context.Background()
	k := func(id string) store.Key { return store.Key{Collection: "clocks", ID: id} }
	for _, id := range []string{"a", "b"} {
		if err := onTime.Append(ctx, k(id), store.Entry{Seq: 1, Changes: []byte(id)}, store.AppendMeta{Heads: []string{id}}); err != nil {
			t.Fatal(err)
		}
	}
	cursor := ""
	for {
		page, err := onTime.Feed(ctx, "clocks", cursor, 1)
		if err != nil {
			t.Fatal(err)
		}
		cursor = page.Cursor
		if !page.More {
			break
		}
	}
	if err := late.Append(ctx, k("late"), store.Entry{Seq: 1, Changes: []byte("late")}, store.AppendMeta{Heads: []string{"late"}}); err != nil {
		t.Fatal(err)
	}
	page, err := onTime.Feed(ctx, "clocks", cursor, 10)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, it := range page.Items {
		found = found || it.ID == "late"
	}
	if !found {
		t.Fatalf("the record written with a late clock is not in the feed after the last cursor: %+v", page.Items)
	}
}
