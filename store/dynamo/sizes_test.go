package dynamo_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/dynamerge/dynamerge/store"
	"github.com/dynamerge/dynamerge/store/dynamo"
	"github.com/dynamerge/dynamerge/store/dynamo/dynamotest"
)

// itemLimit is DynamoDB's maximum item size.
const itemLimit = 400 * 1024

// TestSizes writes the largest entry a transaction can hold, a snapshot of
// 5 MB, and an entry one byte too large: the first two round-trip, the last
// is refused with ErrTooLarge and writes nothing, and no item written is
// over DynamoDB's limit.
func TestSizes(t *testing.T) {
	dynamotest.Endpoint(t)
	s, f := faulty(t, nil, nil)
	ctx := context.Background()

	tooBig := entry(1, dynamo.MaxEntrySize+1)
	err := s.Append(ctx, testKey, tooBig, meta(1))
	if !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("Append(%d bytes) = %v, want ErrTooLarge", len(tooBig.Changes), err)
	}
	if _, err := s.Load(ctx, testKey); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load after a refused Append = %v, want ErrNotFound", err)
	}

	largest := entry(1, dynamo.MaxEntrySize)
	if err := s.Append(ctx, testKey, largest, meta(1)); err != nil {
		t.Fatalf("Append(%d bytes) = %v", len(largest.Changes), err)
	}
	small := entry(2, 10)
	if err := s.Append(ctx, testKey, small, meta(2)); err != nil {
		t.Fatal(err)
	}
	checkLog(t, s, largest, small)

	snap := entry(99, 5<<20).Changes
	if err := s.SaveSnapshot(ctx, testKey, store.Snapshot{Seq: 1, Data: snap}); err != nil {
		t.Fatalf("SaveSnapshot(5 MiB) = %v", err)
	}
	rec, err := s.Load(ctx, testKey)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Snapshot == nil || rec.Snapshot.Seq != 1 || !bytes.Equal(rec.Snapshot.Data, snap) {
		t.Fatal("the 5 MiB snapshot did not round-trip")
	}
	if len(rec.Entries) != 1 || !bytes.Equal(rec.Entries[0].Changes, small.Changes) {
		t.Fatalf("entries after the snapshot = %d, want seq 2", len(rec.Entries))
	}
	if got := f.MaxItemSize(); got > itemLimit || got < dynamo.ChunkSize {
		t.Fatalf("largest item written = %d bytes; want at most %d (and chunks of %d)", got, itemLimit, dynamo.ChunkSize)
	}
}

// TestLoadDuringCompaction loads a record over and over while another
// goroutine appends and saves snapshots that delete what earlier loads
// pointed to: every load is whole and consistent.
func TestLoadDuringCompaction(t *testing.T) {
	dynamotest.Endpoint(t)
	s := dynamotest.NewStore(t, nil, nil, dynamotest.WithoutStream)
	ctx := context.Background()
	const last = 30
	done := make(chan error, 1)
	go func() {
		for seq := uint64(1); seq <= last; seq++ {
			if err := s.Append(ctx, testKey, entry(seq, 100_000), meta(seq)); err != nil {
				done <- err
				return
			}
			if seq%3 == 0 {
				// Snapshot data that names its seq, over two chunks.
				if err := s.SaveSnapshot(ctx, testKey, store.Snapshot{Seq: seq, Data: entry(1000+seq, 400_000).Changes}); err != nil {
					done <- err
					return
				}
			}
		}
		done <- nil
	}()
	loads := 0
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("writer: %v", err)
			}
			if loads == 0 {
				t.Fatal("no load ran during the writes")
			}
			t.Logf("%d loads during %d appends and %d snapshots", loads, last, last/3)
			return
		default:
		}
		rec, err := s.Load(ctx, testKey)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("Load = %v", err)
		}
		loads++
		from := uint64(1)
		if rec.Snapshot != nil {
			if !bytes.Equal(rec.Snapshot.Data, entry(1000+rec.Snapshot.Seq, 400_000).Changes) {
				t.Fatalf("snapshot %d has another snapshot's data", rec.Snapshot.Seq)
			}
			from = rec.Snapshot.Seq + 1
		}
		for i, e := range rec.Entries {
			if e.Seq != from+uint64(i) || !bytes.Equal(e.Changes, entry(e.Seq, 100_000).Changes) {
				t.Fatalf("entry %d: seq %d, want %d with its data", i, e.Seq, from+uint64(i))
			}
		}
		if rec.Seq != from-1+uint64(len(rec.Entries)) {
			t.Fatalf("Seq %d with entries from %d: %d", rec.Seq, from, len(rec.Entries))
		}
	}
}
