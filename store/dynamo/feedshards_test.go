package dynamo_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dynamerge/dynamerge/store"
	"github.com/dynamerge/dynamerge/store/dynamo"
	"github.com/dynamerge/dynamerge/store/dynamo/dynamotest"
	"github.com/dynamerge/dynamerge/store/storetest"
)

// TestConformanceFeedShards runs the conformance suite on tables whose feed
// is spread over 8 shards.
func TestConformanceFeedShards(t *testing.T) {
	dynamotest.Endpoint(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		s := dynamotest.NewStore(t, nil, nil, dynamotest.WithoutStream)
		if err := s.RaiseFeedShards(context.Background(), 8); err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestFeedShardsMigrate follows a table from one feed key to 8: a reader's
// cursor taken before the change goes on after it, and between them every
// record is listed, whichever key its entry is under; records written after
// the change are on their shard's key, records not written since stay on
// the old one.
func TestFeedShardsMigrate(t *testing.T) {
	dynamotest.Endpoint(t)
	ctx := context.Background()
	client := dynamotest.Client(t)
	table := dynamotest.NewTable(t, client, dynamotest.WithoutStream)
	old := dynamo.New(client, table, nil)
	k := func(i int) store.Key { return store.Key{Collection: "mig", ID: fmt.Sprintf("r%02d", i)} }
	appendTo := func(s *dynamo.Store, i int, seq uint64) {
		t.Helper()
		h := fmt.Sprintf("%d-%d", i, seq)
		if err := s.Append(ctx, k(i), store.Entry{Seq: seq, Changes: []byte(h)}, store.AppendMeta{Heads: []string{h}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		appendTo(old, i, 1)
	}
	if n, err := old.FeedShards(ctx); err != nil || n != 1 {
		t.Fatalf("FeedShards()=%d, %v, want 1", n, err)
	}
	page, err := old.Feed(ctx, "mig", "", 4)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]int{}
	for _, it := range page.Items {
		listed[it.ID]++
	}

	// Another process raises the count; a fresh store reads it.
	sharded := dynamo.New(client, table, nil)
	if err := sharded.RaiseFeedShards(ctx, 8); err != nil {
		t.Fatal(err)
	}
	if err := sharded.RaiseFeedShards(ctx, 4); err != nil { // never shrinks
		t.Fatal(err)
	}
	if n, _ := sharded.FeedShards(ctx); n != 8 {
		t.Fatalf("FeedShards()=%d after raising to 8 then 4, want 8", n)
	}
	if err := sharded.RaiseFeedShards(ctx, dynamo.MaxFeedShards+1); err == nil {
		t.Fatal("RaiseFeedShards above the maximum succeeded")
	}
	for i := 10; i < 20; i++ {
		appendTo(sharded, i, 1)
	}
	appendTo(sharded, 0, 2) // moves from the old key to its shard

	// Read on from the old cursor to the end of that reading, then the
	// next reading (from the floor), which lists the rest.
	readOn := func(cursor string, more bool) string {
		for more {
			p, err := old.Feed(ctx, "mig", cursor, 3)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range p.Items {
				listed[it.ID]++
			}
			cursor, more = p.Cursor, p.More
		}
		return cursor
	}
	readOn(readOn(page.Cursor, page.More), true)
	for i := range 20 {
		if listed[k(i).ID] == 0 {
			t.Errorf("record %s never listed across the change of shard count", k(i).ID)
		}
	}

	byKey := feedKeysOf(t, client, table)
	if got := byKey["mig"]; got != 9 {
		t.Errorf("%d entries left on the unsharded key, want 9 (records 1-9, not written since)", got)
	}
	sharded8 := 0
	for fpk, n := range byKey {
		if fpk != "mig" {
			sharded8 += n
		}
	}
	if sharded8 != 11 || len(byKey) < 3 {
		t.Errorf("entries on shard keys: %v, want 11 spread over several keys", byKey)
	}
}

// TestFeedShardsPaging pages one item at a time through 30 records on 8
// shards: every record exactly once, in the order of their last change.
func TestFeedShardsPaging(t *testing.T) {
	dynamotest.Endpoint(t)
	ctx := context.Background()
	s := dynamotest.NewStore(t, nil, nil, dynamotest.WithoutStream)
	if err := s.RaiseFeedShards(ctx, 8); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 30 {
		id := fmt.Sprintf("p%02d", (i*7)%30)
		want = append(want, id)
		if err := s.Append(ctx, store.Key{Collection: "pg", ID: id}, store.Entry{Seq: 1, Changes: []byte(id)}, store.AppendMeta{Heads: []string{id}}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	cursor := ""
	for {
		p, err := s.Feed(ctx, "pg", cursor, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range p.Items {
			got = append(got, it.ID)
		}
		cursor = p.Cursor
		if !p.More {
			break
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("paged feed:\n got %v\nwant %v", got, want)
	}
}

// feedKeysOf counts meta items per feed index partition key.
func feedKeysOf(t *testing.T, client *dynamodb.Client, table string) map[string]int {
	t.Helper()
	out, err := client.Scan(context.Background(), &dynamodb.ScanInput{
		TableName:            &table,
		IndexName:            aws.String(dynamo.IndexFeed),
		ProjectionExpression: aws.String(dynamo.AttrFeedPK),
	})
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, it := range out.Items {
		if v, ok := it[dynamo.AttrFeedPK].(*types.AttributeValueMemberS); ok {
			n[v.Value]++
		}
	}
	return n
}
