package dynamo_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/store"
	"github.com/dynamerge/dynamerge/store/dynamo"
	"github.com/dynamerge/dynamerge/store/dynamo/dynamotest"
)

// TestCapacity checks that the store counts the capacity DynamoDB reports,
// and the write units of a small Append (issue 15's ceiling: at most 4): the
// put of its log item (1 unit), the update of the meta item (1) and the move
// of the record's feed index entry (a delete and a put, 2; the first append
// only puts it). A transaction would bill each item twice.
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
	if perAppend < 3 || perAppend > 4 {
		t.Fatalf("%.2f write units per small append, want 3.9 (1 log item + 1 meta + 2 index, the first 3)", perAppend)
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

// TestCapacity_Attribution measures what attribution costs a lone push:
// the same appends with and without it, on two records of one table. It
// rides in the log item the push writes anyway, so it adds bytes, not
// requests; the write units change only when those bytes cross a 1 KB
// boundary. It also measures the rows a compaction keeps per change.
func TestCapacity_Attribution(t *testing.T) {
	dynamotest.Endpoint(t)
	ctx := context.Background()
	const n, size = 20, 200                      // a typed word is a change of ~150-250 bytes
	by := "0b9f8c2e-4b1d-4f7e-9a53-2c9d1e7f6a10" // a UUID subject, 36 bytes
	measure := func(attributed bool) float64 {
		s := dynamotest.NewStore(t, nil, nil)
		key := store.Key{Collection: "capacity", ID: fmt.Sprint("attributed-", attributed)}
		for seq := uint64(1); seq <= n; seq++ {
			e := entry(seq, size)
			if attributed {
				e.By, e.At = []string{by}, time.Now()
			}
			if err := s.Append(ctx, key, e, meta(seq)); err != nil {
				t.Fatal(err)
			}
		}
		return s.Capacity().AppendWrites / n
	}
	without, with := measure(false), measure(true)
	attr := store.EncodeEntryAttribution([]string{by}, time.Now())
	t.Logf("lone push of a %d-byte change: %.2f write units without attribution, %.2f with (+%d bytes in the log item: %q attribute)",
		size, without, with, len(attr)+len(dynamo.AttrAttribution), dynamo.AttrAttribution)
	if with != without {
		t.Fatalf("attribution changed the write units of a small push: %.2f → %.2f", without, with)
	}

	// Compaction: the rows of 1,000 one-change entries.
	rows := make([]store.Attributed, 1000)
	for i := range rows {
		rows[i] = store.Attributed{Seq: uint64(i + 1), Hash: fmt.Sprintf("%064x", i), By: by, At: time.Now()}
	}
	b, err := store.EncodeRows(rows, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("compacted attribution: %.1f bytes per change (1,000 one-change entries, one pusher)", float64(len(b))/float64(len(rows)))
}
