package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/store"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCompaction_ColdLoad(t *testing.T) {
	st := newBolt(t)
	e, _ := newEngine(t, st, Options{CompactEvery: 5})
	key := todo("compact")
	a := newReplica()
	var mid, last []crdt.Hash
	for i := range 13 {
		if res := a.push(t, e, key, a.edit(t, fmt.Sprint("k", i%4), i)); res.Err != nil {
			t.Fatalf("push %d: %v", i, res.Err)
		}
		switch i {
		case 4:
			mid = a.heads()
		case 11:
			last = a.heads()
		}
	}
	waitFor(t, "a compaction", func() bool { return e.Stats().Compactions > 0 })

	rec, err := st.Load(context.Background(), key)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if rec.Snapshot == nil || rec.Snapshot.Seq < 6 {
		t.Fatalf("store snapshot=%v, want one at seq >= 6", rec.Snapshot)
	}
	hot1 := sync1(t, e, DocRequest{Key: key, Have: mid})

	// A second engine loads the record cold (snapshot + log) and answers
	// the same heads and the same deltas.
	cold, _ := newEngine(t, st, Options{CompactEvery: 5})
	for _, have := range [][]crdt.Hash{nil, mid, last, a.heads()} {
		got := sync1(t, cold, DocRequest{Key: key, Have: have})
		want := sync1(t, e, DocRequest{Key: key, Have: have})
		if got.Err != nil || !slices.Equal(got.Heads, want.Heads) || !slices.Equal(got.Heads, a.heads()) {
			t.Fatalf("cold heads=%v (err %v), hot %v, replica %v", got.Heads, got.Err, want.Heads, a.heads())
		}
		// Either may answer with the snapshot (a superset of the exact
		// delta), depending on where its window of held changes starts.
		if gotSet, wantSet := changeSet(t, got.Changes), changeSet(t, want.Changes); !subset(gotSet, wantSet) && !subset(wantSet, gotSet) {
			t.Fatalf("have %v: cold delta %d changes, hot %d, neither holds the other", have, len(gotSet), len(wantSet))
		}
	}
	// A client 8 changes behind gets exactly those, or, when that is
	// farther back than the last snapshot's window of CompactEvery changes,
	// the snapshot (a document chunk) and what follows it.
	if got, want := len(changeSet(t, hot1.Changes)), 8; crdt.IsDocument(hot1.Changes) {
		want = 13
		if got != want {
			t.Fatalf("delta since change 5 of 13, with the snapshot: %d changes, want %d", got, want)
		}
	} else if got != want {
		t.Fatalf("delta since change 5 of 13: %d changes, want %d", got, want)
	}
	// One a change behind gets exactly that change.
	if res := sync1(t, cold, DocRequest{Key: key, Have: last}); crdt.IsDocument(res.Changes) || len(changeSet(t, res.Changes)) != 1 {
		t.Fatalf("delta since change 12 of 13: %d changes, want 1", len(changeSet(t, res.Changes)))
	}
	// The JSON view survives too.
	doc, _, err := cold.JSON(context.Background(), key, nil)
	if err != nil {
		t.Fatalf("JSON: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil || m["k0"] != float64(12) {
		t.Fatalf("JSON=%s (%v), want k0=12", doc, err)
	}
}

func changeSet(tb testing.TB, b []byte) map[crdt.Hash]bool {
	tb.Helper()
	if len(b) == 0 {
		return map[crdt.Hash]bool{}
	}
	cs, err := crdt.ParseDelta(b)
	if err != nil {
		tb.Fatalf("ParseDelta: %v", err)
	}
	m := map[crdt.Hash]bool{}
	for _, c := range cs {
		m[c.Hash] = true
	}
	return m
}

func TestSubscribe(t *testing.T) {
	e, _ := newEngine(t, newBolt(t), Options{})
	todos, cancelTodos := e.Subscribe([]string{"todos"})
	all, cancelAll := e.Subscribe(nil)
	defer cancelAll()

	change := newReplica().edit(t, "x", 1)
	sync1(t, e, DocRequest{Key: store.Key{Collection: "notes", ID: "n"}, Changes: newReplica().edit(t, "x", 2)})
	sync1(t, e, DocRequest{Key: todo("t"), Changes: change})
	sync1(t, e, DocRequest{Key: todo("t"), Changes: change}) // a retry writes nothing: no event

	next := func(ch <-chan Event) Event {
		t.Helper()
		select {
		case ev := <-ch:
			return ev
		case <-time.After(5 * time.Second):
			t.Fatalf("no event")
		}
		return Event{}
	}
	if ev := next(todos); ev.Key != todo("t") || !slices.Equal(ev.Heads, []crdt.Hash{mustHash(t, change)}) {
		t.Fatalf("todos event=%+v", ev)
	}
	if ev := next(all); ev.Key.Collection != "notes" {
		t.Fatalf("first event of all=%+v, want notes", ev)
	}
	if ev := next(all); ev.Key != todo("t") {
		t.Fatalf("second event of all=%+v", ev)
	}
	select {
	case ev := <-todos:
		t.Fatalf("unexpected event %+v", ev)
	default:
	}
	cancelTodos()
	if _, ok := <-todos; ok {
		t.Fatalf("channel still open after cancel")
	}
	cancelTodos() // idempotent

	// A subscriber that never reads does not block writers.
	_, cancelSlow := e.Subscribe(nil)
	defer cancelSlow()
	r := newReplica()
	for i := range subscriberBuffer + 10 {
		if res := r.push(t, e, todo("busy"), r.edit(t, "x", i)); res.Err != nil {
			t.Fatalf("push %d: %v", i, res.Err)
		}
	}
}

func TestJSON(t *testing.T) {
	e, _ := newEngine(t, newBolt(t), Options{})
	key := todo("json")
	ctx := context.Background()
	if _, _, err := e.JSON(ctx, key, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("JSON of unknown record: %v, want ErrNotFound", err)
	}
	a := newReplica()
	a.push(t, e, key, a.edit(t, "title", "first"))
	old := a.heads()
	a.push(t, e, key, a.edit(t, "title", "second"))

	for _, tc := range []struct {
		name  string
		heads []crdt.Hash
		want  string
		err   error
	}{
		{"current", nil, `"second"`, nil},
		{"time travel", old, `"first"`, nil},
		{"unknown heads", []crdt.Hash{{1, 2, 3}}, "", ErrUnknownHeads},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, at, err := e.JSON(ctx, key, tc.heads)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("err=%v, want %v", err, tc.err)
			}
			if tc.err != nil {
				return
			}
			if !bytes.Contains(doc, []byte(tc.want)) {
				t.Fatalf("JSON=%s, want title %s", doc, tc.want)
			}
			wantAt := tc.heads
			if wantAt == nil {
				wantAt = a.heads()
			}
			if !slices.Equal(at, wantAt) {
				t.Fatalf("at=%v, want %v", at, wantAt)
			}
		})
	}
}

func TestClose(t *testing.T) {
	e, _ := newEngine(t, newBolt(t), Options{})
	events, _ := e.Subscribe(nil)
	sync1(t, e, DocRequest{Key: todo("c"), Changes: newReplica().edit(t, "x", 1)})
	<-events
	if err := e.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := e.Sync(context.Background(), []DocRequest{{Key: todo("c")}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sync after Close: %v, want ErrClosed", err)
	}
	if _, _, err := e.JSON(context.Background(), todo("c"), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("JSON after Close: %v, want ErrClosed", err)
	}
	if _, ok := <-events; ok {
		t.Fatalf("subscription still open after Close")
	}
}

func TestFeedAndReady(t *testing.T) {
	e, _ := newEngine(t, newBolt(t), Options{})
	ctx := context.Background()
	if err := e.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	c := newReplica().edit(t, "x", 1)
	for _, id := range []string{"f1", "f2"} {
		sync1(t, e, DocRequest{Key: todo(id), Changes: c})
	}
	page, err := e.Feed(ctx, "todos", "", 10)
	if err != nil {
		t.Fatalf("Feed: %v", err)
	}
	var ids []string
	for _, it := range page.Items {
		ids = append(ids, it.ID)
		if want := crdt.HashStrings([]crdt.Hash{mustHash(t, c)}); !slices.Equal(it.Heads, want) {
			t.Fatalf("feed heads of %s=%v, want %v", it.ID, it.Heads, want)
		}
	}
	if !slices.Equal(ids, []string{"f1", "f2"}) {
		t.Fatalf("feed=%v, want [f1 f2]", ids)
	}
}

// subset reports whether every element of a is in b.
func subset(a, b map[crdt.Hash]bool) bool {
	for h := range a {
		if !b[h] {
			return false
		}
	}
	return true
}
