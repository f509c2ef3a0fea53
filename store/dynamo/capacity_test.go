package dynamo_test

import (
	"context"
	"testing"

	"github.com/dynamerge/dynamerge/store"
	"github.com/dynamerge/dynamerge/store/dynamo/dynamotest"
)

// TestCapacity checks that the store counts the capacity DynamoDB reports:
// an Append of a small entry is one transaction of two items, which
// DynamoDB bills at two write units per item (transactions cost double),
// plus the feed index.
func TestCapacity(t *testing.T) {
	dynamotest.Endpoint(t)
	s := dynamotest.NewStore(t, nil, nil)
	ctx := context.Background()
	for seq := uint64(1); seq <= 10; seq++ {
		if err := s.Append(ctx, testKey, entry(seq, 200), meta(seq)); err != nil {
			t.Fatal(err)
		}
	}
	c := s.Capacity()
	if c.Appends != 10 {
		t.Fatalf("Appends = %d, want 10", c.Appends)
	}
	perAppend := c.AppendWrites / float64(c.Appends)
	t.Logf("write units per small append: %.2f", perAppend)
	if perAppend < 4 {
		t.Fatalf("%.2f write units per append; a transaction of two items costs at least 4", perAppend)
	}
	if _, err := s.Load(ctx, testKey); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(ctx, testKey, store.Snapshot{Seq: 10, Data: entry(77, 1000).Changes}); err != nil {
		t.Fatal(err)
	}
	c = s.Capacity()
	t.Logf("capacity: %+v", c)
	if c.Reads <= 0 || c.SnapshotWrites <= 0 || c.CleanupWrites <= 0 {
		t.Fatalf("capacity not counted: %+v", c)
	}
}
