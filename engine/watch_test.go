package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/store"
)

// bus plays the part of DynamoDB Streams for engines sharing one store in
// this process: every successful Append through any watchStore on the bus
// is sent to every watch of the bus, the writer's own included.
type bus struct {
	mu   sync.Mutex
	subs map[chan store.Change]context.Context
}

func newBus() *bus { return &bus{subs: map[chan store.Change]context.Context{}} }

// send delivers c to every watch, waiting for slow ones (a watcher drops
// nothing) unless their context ends.
func (b *bus) send(c store.Change) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch, ctx := range b.subs {
		select {
		case ch <- c:
		case <-ctx.Done():
		}
	}
}

// end closes every watch, as a store does when its stream breaks for good.
func (b *bus) end() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		delete(b.subs, ch)
		close(ch)
	}
}

// watchStore is a store.Store that is also a store.Watcher, through a bus.
type watchStore struct {
	store.Store
	bus       *bus
	failWatch atomic.Int32 // fail this many coming Watch calls
	watches   atomic.Int32 // successful Watch calls
	live      atomic.Int32 // watches whose context has not ended
}

var _ store.Watcher = (*watchStore)(nil)

func (s *watchStore) Append(ctx context.Context, key store.Key, e store.Entry, meta store.AppendMeta) error {
	if err := s.Store.Append(ctx, key, e, meta); err != nil {
		return err
	}
	s.bus.send(store.Change{Key: key, Seq: e.Seq, Heads: meta.Heads})
	return nil
}

func (s *watchStore) Watch(ctx context.Context) (<-chan store.Change, error) {
	if s.failWatch.Add(-1) >= 0 {
		return nil, errors.New("injected: stream not reachable")
	}
	s.failWatch.Store(0)
	ch := make(chan store.Change, 16)
	s.bus.mu.Lock()
	s.bus.subs[ch] = ctx
	s.bus.mu.Unlock()
	s.watches.Add(1)
	s.live.Add(1)
	go func() {
		<-ctx.Done()
		s.bus.mu.Lock()
		if _, ok := s.bus.subs[ch]; ok {
			delete(s.bus.subs, ch)
			close(ch)
		}
		s.bus.mu.Unlock()
		s.live.Add(-1)
	}()
	return ch, nil
}

// openWatchEngine opens an engine directly on st (newEngine's faultStore
// would hide the Watcher), closed at the end of the test.
func openWatchEngine(tb testing.TB, st store.Store) *Engine {
	tb.Helper()
	e, err := Open(Options{Store: st, Logger: quietLogger(), StoreTimeout: 5 * time.Second})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.Close(ctx); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return e
}

// nextEvent waits up to d for an event; ok is false on timeout.
func nextEvent(events <-chan Event, d time.Duration) (ev Event, ok bool) {
	select {
	case ev, ok = <-events:
		return ev, ok
	case <-time.After(d):
		return Event{}, false
	}
}

// noEvent fails the test if an event arrives within d.
func noEvent(tb testing.TB, what string, events <-chan Event, d time.Duration) {
	tb.Helper()
	if ev, ok := nextEvent(events, d); ok {
		tb.Errorf("%s: unexpected event %s %v", what, ev.Key, crdt.HashStrings(ev.Heads))
	}
}

func TestWatchPublishesOtherEnginesWrites(t *testing.T) {
	shared, b := newBolt(t), newBus()
	a := openWatchEngine(t, &watchStore{Store: shared, bus: b})
	bEng := openWatchEngine(t, &watchStore{Store: shared, bus: b})
	evA, cancelA := a.Subscribe([]string{"todos"})
	defer cancelA()
	evB, cancelB := bEng.Subscribe([]string{"todos"})
	defer cancelB()

	rep := newReplica()
	key := todo("w1")
	for i := range 3 {
		res := rep.push(t, a, key, rep.edit(t, "title", i))
		if res.Err != nil {
			t.Fatalf("push %d: %v", i, res.Err)
		}
		want := crdt.HashStrings(res.Heads)
		for name, events := range map[string]<-chan Event{"writer": evA, "other": evB} {
			ev, ok := nextEvent(events, 2*time.Second)
			if !ok {
				t.Fatalf("push %d: no event on the %s engine within 2s", i, name)
			}
			if got := crdt.HashStrings(ev.Heads); ev.Key != key || !slices.Equal(got, want) {
				t.Errorf("push %d: %s engine event %s %v, want %s %v", i, name, ev.Key, got, key, want)
			}
		}
	}
	// The writer heard of its own writes twice (its commit and the bus) but
	// told its subscribers once.
	noEvent(t, "writer", evA, 200*time.Millisecond)
	noEvent(t, "other", evB, 0)
	if got := a.WatchStats(); !got.Watching || got.Changes != 3 || got.Gaps != 0 {
		t.Errorf("writer WatchStats() = %+v, want watching, 3 changes, no gaps", got)
	}
	if got := bEng.WatchStats(); got.Changes != 3 || got.Published != 3 || got.Gaps != 0 {
		t.Errorf("other WatchStats() = %+v, want 3 changes, 3 published, no gaps", got)
	}
}

func TestWatchRefreshesCachedRecord(t *testing.T) {
	shared, b := newBolt(t), newBus()
	a := openWatchEngine(t, &watchStore{Store: shared, bus: b})
	other := openWatchEngine(t, &watchStore{Store: shared, bus: b})
	rep := newReplica()
	key := todo("hot")
	if res := rep.push(t, a, key, rep.edit(t, "n", 1)); res.Err != nil {
		t.Fatal(res.Err)
	}
	// The other engine caches the record at seq 1.
	if res := sync1(t, other, DocRequest{Key: key}); res.Err != nil {
		t.Fatal(res.Err)
	}
	if got := cachedSeq(other, key); got != 1 {
		t.Fatalf("cached seq on the other engine = %d, want 1", got)
	}
	res := rep.push(t, a, key, rep.edit(t, "n", 2))
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	// Without any request to it, the other engine catches up.
	deadline := time.Now().Add(2 * time.Second)
	for cachedSeq(other, key) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("cached seq on the other engine = %d after 2s, want 2", cachedSeq(other, key))
		}
		time.Sleep(5 * time.Millisecond)
	}
	other.mu.Lock()
	r := other.records[key]
	other.mu.Unlock()
	r.mu.Lock()
	heads := r.ix.Heads()
	r.mu.Unlock()
	if got, want := crdt.HashStrings(heads), crdt.HashStrings(res.Heads); !slices.Equal(got, want) {
		t.Errorf("refreshed heads %v, want %v", got, want)
	}
	if got := other.WatchStats().Refreshed; got != 1 {
		t.Errorf("WatchStats().Refreshed = %d, want 1", got)
	}
	// A record that is not cached is not loaded because of a change.
	if res := rep.push(t, a, todo("cold"), newReplica().edit(t, "x", 1)); res.Err != nil {
		t.Fatal(res.Err)
	}
	time.Sleep(100 * time.Millisecond)
	if got := cachedSeq(other, todo("cold")); got != 0 {
		t.Errorf("a record only another engine wrote got cached (seq %d)", got)
	}
}

// cachedSeq returns the seq of the engine's cached copy of key, 0 if none.
func cachedSeq(e *Engine, key store.Key) uint64 {
	e.mu.Lock()
	r := e.records[key]
	e.mu.Unlock()
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seq
}

func TestWatchRemoteChanges(t *testing.T) {
	// Changes fed straight into the watch: repeats, stale seqs, gaps and
	// garbage must not reach subscribers.
	b := newBus()
	e := openWatchEngine(t, &watchStore{Store: newBolt(t), bus: b})
	events, cancel := e.Subscribe(nil)
	defer func() { cancel() }()
	h1 := "1111111111111111111111111111111111111111111111111111111111111111"
	h2 := "2222222222222222222222222222222222222222222222222222222222222222"
	k := todo("r")
	for _, tc := range []struct {
		name string
		c    store.Change
		want bool
	}{
		{"first", store.Change{Key: k, Seq: 2, Heads: []string{h1}}, true},
		{"repeat", store.Change{Key: k, Seq: 2, Heads: []string{h1}}, false},
		{"older", store.Change{Key: k, Seq: 1, Heads: []string{h2}}, false},
		{"gap", store.Change{Gap: true}, false},
		{"bad heads", store.Change{Key: k, Seq: 3, Heads: []string{"zz"}}, false},
		{"bad key", store.Change{Key: store.Key{Collection: "A/B", ID: "x"}, Seq: 1}, false},
		{"newer", store.Change{Key: k, Seq: 3, Heads: []string{h1, h2}}, true},
		{"other record", store.Change{Key: todo("s"), Seq: 1, Heads: []string{h2}}, true},
	} {
		b.send(tc.c)
		if tc.c.Gap {
			// Subscribers cannot be told what they missed: their
			// subscriptions end, and they resubscribe.
			for range events {
			}
			cancel()
			events, cancel = e.Subscribe(nil)
			continue
		}
		ev, ok := nextEvent(events, 300*time.Millisecond)
		if ok != tc.want {
			t.Errorf("%s: event %v (%s %v), want %v", tc.name, ok, ev.Key, crdt.HashStrings(ev.Heads), tc.want)
			continue
		}
		if ok {
			if got := crdt.HashStrings(ev.Heads); ev.Key != tc.c.Key || !slices.Equal(got, tc.c.Heads) {
				t.Errorf("%s: event %s %v, want %s %v", tc.name, ev.Key, got, tc.c.Key, tc.c.Heads)
			}
		}
	}
	if got := e.WatchStats(); got.Gaps != 1 || got.Published != 3 {
		t.Errorf("WatchStats() = %+v, want 1 gap, 3 published", got)
	}
}

func TestWatchRestarts(t *testing.T) {
	b := newBus()
	st := &watchStore{Store: newBolt(t), bus: b}
	st.failWatch.Store(2)
	e := openWatchEngine(t, st)
	events, cancel := e.Subscribe(nil)
	defer func() { cancel() }()
	h := "3333333333333333333333333333333333333333333333333333333333333333"
	waitWatches := func(n int32) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for st.watches.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d watches started after 5s, want %d", st.watches.Load(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Two failed attempts, then the watch runs.
	waitWatches(1)
	b.send(store.Change{Key: todo("x"), Seq: 1, Heads: []string{h}})
	if _, ok := nextEvent(events, 2*time.Second); !ok {
		t.Fatal("no event after the watch started")
	}
	// The stream ends: the engine starts a new watch, counts a gap, and
	// closes the subscription (events may have been missed meanwhile).
	b.end()
	waitWatches(2)
	for range events {
	}
	cancel()
	events, cancel = e.Subscribe(nil)
	b.send(store.Change{Key: todo("x"), Seq: 2, Heads: []string{h}})
	if _, ok := nextEvent(events, 2*time.Second); !ok {
		t.Fatal("no event after the watch restarted")
	}
	if got := e.WatchStats().Gaps; got != 1 {
		t.Errorf("WatchStats().Gaps = %d, want 1", got)
	}
	ctx, cc := context.WithTimeout(context.Background(), 5*time.Second)
	defer cc()
	if err := e.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := st.live.Load(); n != 0 {
		t.Errorf("%d watches still live after Close", n)
	}
	if _, ok := <-events; ok {
		t.Error("subscription still open after Close")
	}
}

func TestWatchOpenDoesNotHangOnStore(t *testing.T) {
	// A store whose Watch never returns must not keep Open from returning
	// past StoreTimeout, nor Close from finishing.
	st := &blockingWatcher{Store: newBolt(t)}
	start := time.Now()
	e, err := Open(Options{Store: st, Logger: quietLogger(), StoreTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Open took %v with a hanging Watch, want about StoreTimeout", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// blockingWatcher's Watch blocks until its context ends.
type blockingWatcher struct{ store.Store }

func (s *blockingWatcher) Watch(ctx context.Context) (<-chan store.Change, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestSeenSeqsBounded(t *testing.T) {
	var s seenSeqs
	k := func(i int) store.Key { return todo(fmt.Sprintf("k%d", i)) }
	for i := range 2*seenGeneration + 10 {
		if !s.advance(k(i), 1) {
			t.Fatalf("advance(%d, 1) = false for a new key", i)
		}
	}
	if n := len(s.cur) + len(s.old); n > 2*seenGeneration {
		t.Errorf("seenSeqs holds %d keys, bound %d", n, 2*seenGeneration)
	}
	last := k(2*seenGeneration + 9)
	if s.advance(last, 1) {
		t.Error("a recent key's seq was forgotten")
	}
	if !s.advance(last, 2) {
		t.Error("a newer seq was refused")
	}
}
