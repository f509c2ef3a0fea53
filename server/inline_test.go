package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/engine"
)

// countingTransport counts the /v1/sync requests a client sends.
type countingTransport struct {
	syncs atomic.Int64
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == "/v1/sync" {
		t.syncs.Add(1)
	}
	return http.DefaultTransport.RoundTrip(req)
}

// nextEventOf waits for the next event of collection/id.
func nextEventOf(ctx context.Context, tb testing.TB, events <-chan client.Event, id string) client.Event {
	tb.Helper()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				tb.Fatal("event stream closed")
			}
			if ev.ID == id {
				return ev
			}
		case <-ctx.Done():
			tb.Fatalf("no event for %s", id)
		}
	}
}

// TestReplicaAppliesEventsReal: a follower applies the changes events carry
// without a single sync; a follower that missed an event (it lacks a
// dependency) does not apply the next one and pulls instead; a change over
// the server's bound comes without its bytes, and is pulled.
func TestReplicaAppliesEventsReal(t *testing.T) {
	const limit = 4 << 10
	rs := newRealServer(t, Options{}, engine.Options{MaxEventChangeBytes: limit})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	writerC := client.New(rs.url)
	ct := &countingTransport{}
	followerC := &client.Client{BaseURL: rs.url, HTTP: &http.Client{Transport: ct}}

	w := client.NewReplica(writerC, "todos", "live")
	edit := func(k string, v any) {
		t.Helper()
		if err := w.Doc().Path(k).Set(v); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Doc().Commit(""); err != nil {
			t.Fatal(err)
		}
		if err := w.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	edit("title", "milk")
	f := client.NewReplica(followerC, "todos", "live")
	if err := f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	events, err := followerC.Events(ctx, "todos")
	if err != nil {
		t.Fatal(err)
	}
	base := ct.syncs.Load()

	for i := range 5 {
		edit("n", int64(i))
		ev := nextEventOf(ctx, t, events, "live")
		if ev.Changes == "" {
			t.Fatalf("event %d carries no changes", i)
		}
		ok, err := f.ApplyEvents(ev)
		if err != nil || !ok {
			t.Fatalf("ApplyEvents %d = %v, %v; want applied", i, ok, err)
		}
		if got, want := sortedJoin(f.Heads()), sortedJoin(w.Heads()); got != want {
			t.Fatalf("follower heads %s after event %d, want %s", got, i, want)
		}
	}
	// Events that queued up are applied together.
	edit("q", int64(1))
	edit("q", int64(2))
	batch := []client.Event{nextEventOf(ctx, t, events, "live"), nextEventOf(ctx, t, events, "live")}
	if ok, err := f.ApplyEvents(batch...); err != nil || !ok {
		t.Fatalf("ApplyEvents of two queued events = %v, %v; want applied", ok, err)
	}
	if got, want := sortedJoin(f.Heads()), sortedJoin(w.Heads()); got != want {
		t.Fatalf("follower heads %s after two queued events, want %s", got, want)
	}
	if got := ct.syncs.Load() - base; got != 0 {
		t.Fatalf("follower sent %d syncs while applying events, want 0", got)
	}

	// A lost event: the next one builds on a change the follower lacks.
	edit("lost", true)
	_ = nextEventOf(ctx, t, events, "live") // dropped on purpose
	edit("after", true)
	ev := nextEventOf(ctx, t, events, "live")
	if ok, err := f.ApplyEvents(ev); err != nil || ok {
		t.Fatalf("ApplyEvents without the lost dependency = %v, %v; want not applied", ok, err)
	}
	if err := f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := sortedJoin(f.Heads()), sortedJoin(w.Heads()); got != want {
		t.Fatalf("follower heads %s after pulling, want %s", got, want)
	}

	// Over the bound: announced without bytes; the follower pulls.
	edit("notes", strings.Repeat("x", 2*limit))
	ev = nextEventOf(ctx, t, events, "live")
	if ev.Changes != "" {
		t.Fatalf("event of a change over %d bytes carries %d base64 characters", limit, len(ev.Changes))
	}
	if ok, err := f.ApplyEvents(ev); err != nil || ok {
		t.Fatalf("ApplyEvents of an event without changes = %v, %v", ok, err)
	}
	if got, want := ct.syncs.Load()-base, int64(1); got != want {
		t.Fatalf("follower sent %d syncs, want %d (the pull after the lost event)", got, want)
	}
}

// TestEventsBurstReal: events that queue up while a stream writes go out
// together, and none is lost or cut.
func TestEventsBurstReal(t *testing.T) {
	rs := newRealServer(t, Options{}, engine.Options{})
	c := client.New(rs.url)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	events, err := c.Events(ctx, "todos")
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			h := newHistory()
			if _, err := c.Sync(ctx, []client.Doc{{Collection: "todos", ID: fmt.Sprintf("burst-%d", i), Changes: h.edit(t, "i", int64(i))}}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for len(seen) < n {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("event stream closed")
			}
			if _, ok, err := client.EventChanges(ev); !ok || err != nil {
				t.Fatalf("event %s: changes %v, %v", ev.ID, ok, err)
			}
			seen[ev.ID] = true
		case <-ctx.Done():
			t.Fatalf("%d of %d events", len(seen), n)
		}
	}
}
