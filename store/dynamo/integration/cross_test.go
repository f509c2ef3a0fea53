package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/internal/testutil"
	"github.com/dynamerge/dynamerge/store"
	"github.com/dynamerge/dynamerge/store/bolt"
	"github.com/dynamerge/dynamerge/store/dynamo/dynamotest"
)

// TestAcrossStores writes records through the embedded store and through the
// DynamoDB store, copies each to the other one through the protocol (a full
// pull from one server, a push to the other), and reads every record back
// through both, from engines started afresh on the stores (so from the
// stores, not from a cache): same JSON, same heads, and the heads of the
// client that wrote it. Compaction every few changes makes both stores
// serve snapshots as well as logs; one record holds more than a DynamoDB
// item.
func TestAcrossStores(t *testing.T) {
	dynamotest.Endpoint(t)
	ctx := context.Background()
	bs, err := bolt.Open(filepath.Join(t.TempDir(), "cross.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.Close() })
	ds := dynamotest.NewStore(t, nil, nil)
	stores := map[string]store.Store{"bolt": bs, "dynamodb": ds}
	opts := engine.Options{CompactEvery: 4}
	write := map[string]*testutil.Stack{"bolt": newStack(t, bs, opts), "dynamodb": newStack(t, ds, opts)}

	type written struct {
		d    *doc
		from string
	}
	var all []written
	for _, from := range []string{"bolt", "dynamodb"} {
		for r := range 3 {
			d := newDoc(store.Key{Collection: "cross", ID: fmt.Sprintf("%s-%d", from, r)})
			for e := range 3 + 4*r {
				d.set(t, fmt.Sprintf("k%d", e%5), fmt.Sprintf("%s %d %d", from, r, e))
				if r == 2 && e == 0 {
					d.set(t, "big", randomText(500<<10)) // over one DynamoDB item
				}
				if e%2 == 1 { // pushes of one and of several changes
					continue
				}
				mustPush(t, write[from].Client, d, d.pending)
			}
			mustPush(t, write[from].Client, d, d.pending)
			all = append(all, written{d, from})
		}
	}

	// Copy each record to the other store through the protocol.
	for _, w := range all {
		to := "bolt"
		if w.from == "bolt" {
			to = "dynamodb"
		}
		res, err := write[w.from].Client.Sync(ctx, []client.Doc{{Collection: w.d.key.Collection, ID: w.d.key.ID}})
		if err != nil || res[0].Err != nil {
			t.Fatalf("pull %s from %s: %v %v", w.d.key, w.from, err, res[0].Err)
		}
		// The answer may start with a document chunk; a push is changes.
		changes, err := crdt.DeltaChanges(res[0].Changes)
		if err != nil {
			t.Fatalf("pull %s from %s: %v", w.d.key, w.from, err)
		}
		mustPush(t, write[to].Client, w.d, [][]byte{changes})
	}

	// Read back through fresh engines on both stores.
	read := map[string]*testutil.Stack{}
	for name, st := range stores {
		read[name] = newStack(t, st, engine.Options{})
	}
	for _, w := range all {
		var docs [][]byte
		for _, name := range []string{"bolt", "dynamodb"} {
			rec, err := read[name].Client.Get(ctx, w.d.key.Collection, w.d.key.ID)
			if err != nil {
				t.Fatalf("Get %s from %s: %v", w.d.key, name, err)
			}
			if !slices.Equal(rec.Heads, w.d.heads()) {
				t.Fatalf("%s written through %s, read through %s: heads %v, want %v", w.d.key, w.from, name, rec.Heads, w.d.heads())
			}
			var v any
			if err := json.Unmarshal(rec.Doc, &v); err != nil {
				t.Fatal(err)
			}
			canon, _ := json.Marshal(v)
			docs = append(docs, canon)
		}
		if !bytes.Equal(docs[0], docs[1]) {
			t.Fatalf("%s written through %s: JSON differs between the stores:\nbolt:     %.200s\ndynamodb: %.200s", w.d.key, w.from, docs[0], docs[1])
		}
	}
	for name, st := range stores {
		for _, w := range all {
			rec, err := st.Load(ctx, w.d.key)
			if err != nil {
				t.Fatalf("%s: Load %s: %v", name, w.d.key, err)
			}
			if w.from == name && rec.Snapshot == nil && rec.Seq > 4 {
				t.Errorf("%s: %s has %d entries and no snapshot: compaction never ran", name, w.d.key, rec.Seq)
			}
		}
	}
}

// mustPush pushes changes of d through c and marks them acknowledged.
func mustPush(tb testing.TB, c *client.Client, d *doc, changes [][]byte) {
	tb.Helper()
	if len(changes) == 0 {
		return
	}
	res, err := c.Sync(context.Background(), []client.Doc{{Collection: d.key.Collection, ID: d.key.ID, Changes: join(changes)}})
	if err != nil || res[0].Err != nil {
		tb.Fatalf("push %s: %v %v", d.key, err, res[0].Err)
	}
	d.pending = nil
}
