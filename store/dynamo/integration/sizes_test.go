package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/store"
	"github.com/dynamerge/dynamerge/store/dynamo"
	"github.com/dynamerge/dynamerge/store/dynamo/dynamotest"
)

// TestSizesThroughServer pushes a record of 5 MB of text through the HTTP
// API in ten changes of 512 KB (each over DynamoDB's item limit, so chunked;
// compaction every three changes writes snapshots of up to 5 MB), reads it
// back through a fresh engine, then pushes one change larger than a
// transaction can hold: it is refused too_large and nothing of it is
// written. No item written is over 400 KB.
func TestSizesThroughServer(t *testing.T) {
	dynamotest.Endpoint(t)
	var faults *dynamotest.Faults
	st := dynamotest.NewStore(t, nil, func(api dynamo.API) dynamo.API {
		faults = &dynamotest.Faults{API: api}
		return faults
	}, dynamotest.WithoutStream)
	ctx := context.Background()
	key := store.Key{Collection: "sizes", ID: "big"}
	d := newDoc(key)
	want := map[string]string{}
	const parts, partSize = 10, 512 << 10
	a := newStack(t, st, engine.Options{CompactEvery: 3})
	for i := range parts {
		k := fmt.Sprintf("part%02d", i)
		want[k] = randomText(partSize)
		d.set(t, k, want[k])
		res, err := a.Client.Sync(ctx, []client.Doc{{Collection: key.Collection, ID: key.ID, Changes: join(d.pending)}})
		if err != nil || res[0].Err != nil {
			t.Fatalf("push %s: %v %v", k, err, res[0].Err)
		}
		d.pending = nil
	}

	// A fresh engine (another process) loads it from the table.
	b := newStack(t, st, engine.Options{})
	rec, err := b.Client.Get(ctx, key.Collection, key.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	var got map[string]string
	if err := json.Unmarshal(rec.Doc, &got); err != nil {
		t.Fatalf("record JSON: %v", err)
	}
	total := 0
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s: %d bytes back, want the %d pushed", k, len(got[k]), len(v))
		}
		total += len(v)
	}
	if !slices.Equal(rec.Heads, d.heads()) {
		t.Fatalf("heads %v, want %v", rec.Heads, d.heads())
	}
	before, err := st.Load(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if before.Snapshot == nil || len(before.Snapshot.Data) < 2*dynamo.ChunkSize {
		t.Fatalf("no snapshot over two chunks was saved (%+v)", before.Snapshot)
	}
	t.Logf("%d bytes of text round-tripped; snapshot at seq %d of %d bytes; largest item %d bytes",
		total, before.Snapshot.Seq, len(before.Snapshot.Data), faults.MaxItemSize())

	// One change over what a transaction holds (but under the engine's
	// and the server's own limits, so that the store is what refuses it).
	d.set(t, "huge", randomText(dynamo.MaxEntrySize+100<<10))
	res, err := b.Client.Sync(ctx, []client.Doc{{Collection: key.Collection, ID: key.ID, Have: rec.Heads, Changes: join(d.pending)}})
	if err != nil {
		t.Fatalf("push huge: %v", err)
	}
	if res[0].Err == nil || res[0].Err.Code != client.CodeTooLarge {
		t.Fatalf("push of a %d-byte change = %+v, want too_large", len(join(d.pending)), res[0].Err)
	}
	after, err := st.Load(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if after.Seq != before.Seq {
		t.Fatalf("log moved from seq %d to %d after a refused change", before.Seq, after.Seq)
	}
	if rec2, err := b.Client.Get(ctx, key.Collection, key.ID); err != nil || !slices.Equal(rec2.Heads, rec.Heads) {
		t.Fatalf("heads after the refused change = %v, %v; want %v", rec2.Heads, err, rec.Heads)
	}
	if got := faults.MaxItemSize(); got > 400*1024 {
		t.Fatalf("an item of %d bytes was written", got)
	}
	if _, err := st.ReadLog(ctx, key, after.Seq); err != nil && !errors.Is(err, store.ErrCompacted) {
		t.Fatal(err)
	}
}
