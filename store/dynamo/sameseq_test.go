package dynamo_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/store"
	"github.com/dynamerge/dynamerge/store/dynamo"
	"github.com/dynamerge/dynamerge/store/dynamo/dynamotest"
)

// TestSameBytesOneWinner: two processes append byte-identical changes at
// seq 2 (a client's push racing its own retry through another process),
// with their own attribution: one wins, the other gets ErrConflict (and its
// engine re-reads the log), instead of both taking the stored item for
// their own.
func TestSameBytesOneWinner(t *testing.T) {
	dynamotest.Endpoint(t)
	ctx := context.Background()
	client, table := oneTable(t)
	a, b := dynamo.New(client, table, nil), dynamo.New(client, table, nil)
	if err := a.Append(ctx, testKey, entry(1, 10), meta(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ReadLog(ctx, testKey, 0); err != nil {
		t.Fatal(err)
	}
	ea, eb := entry(2, 10), entry(2, 10)
	ea.By, ea.At = []string{"alice", "alice", "alice", "alice", "alice", "alice", "alice", "alice", "alice", "alice"}, time.Unix(1, 0)
	eb.By, eb.At = []string{"bob", "bob", "bob", "bob", "bob", "bob", "bob", "bob", "bob", "bob"}, time.Unix(2, 0)
	errA := a.Append(ctx, testKey, ea, meta(2))
	errB := b.Append(ctx, testKey, eb, meta(2))
	got, err := a.ReadLog(ctx, testKey, 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("ReadLog = %v, %v", got, err)
	}
	if errA != nil || !errors.Is(errB, store.ErrConflict) {
		t.Fatalf("Append(2) = %v by A, %v by B; want nil, then ErrConflict", errA, errB)
	}
	if got[0].By[0] != "alice" {
		t.Fatalf("entry 2 by %v, want alice's", got[0].By)
	}
}
