package engine

import (
	"bytes"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/crdt"
)

// mustEvent waits for one event of ch.
func mustEvent(tb testing.TB, ch <-chan Event) Event {
	tb.Helper()
	ev, ok := nextEvent(ch, 5*time.Second)
	if !ok {
		tb.Fatalf("no event")
	}
	return ev
}

func TestEventsCarryChanges(t *testing.T) {
	const limit = 1 << 10
	e, _ := newEngine(t, newBolt(t), Options{MaxEventChangeBytes: limit})
	events, cancel := e.Subscribe([]string{"todos"})
	defer cancel()

	// A follower at the record's previous heads applies the event's bytes
	// and stands at the event's heads, with no pull.
	w, follower := newReplica(), newReplica()
	first := w.edit(t, "title", "milk")
	if res := w.push(t, e, todo("t"), first); res.Err != nil {
		t.Fatalf("push: %v", res.Err)
	}
	ev := mustEvent(t, events)
	if !bytes.Equal(ev.Changes, first) {
		t.Fatalf("event changes=%d bytes, want the pushed change (%d bytes)", len(ev.Changes), len(first))
	}
	follower.apply(t, ev.Changes)
	second := w.edit(t, "done", true)
	w.push(t, e, todo("t"), second)
	ev = mustEvent(t, events)
	follower.apply(t, ev.Changes)
	if got, want := follower.heads(), ev.Heads; !equalHashes(got, want) {
		t.Fatalf("follower heads=%v after applying the events, want %v", got, want)
	}

	// Over the bound: the event announces the change without its bytes.
	big := w.edit(t, "notes", strings.Repeat("x", 2*limit))
	w.push(t, e, todo("t"), big)
	ev = mustEvent(t, events)
	if ev.Changes != nil {
		t.Fatalf("event of a %d-byte change carries %d bytes, limit %d", len(big), len(ev.Changes), limit)
	}
	if got, want := ev.Heads, w.heads(); !equalHashes(got, want) {
		t.Fatalf("event heads=%v, want %v", got, want)
	}

	// Negative: no event carries changes.
	e2, _ := newEngine(t, newBolt(t), Options{MaxEventChangeBytes: -1})
	events2, cancel2 := e2.Subscribe(nil)
	defer cancel2()
	newReplica().push(t, e2, todo("t"), newReplica().edit(t, "x", 1))
	if ev := mustEvent(t, events2); ev.Changes != nil {
		t.Fatalf("MaxEventChangeBytes -1: event carries %d bytes", len(ev.Changes))
	}
}

// TestEventEncodedOnce checks that a change published to many subscribers
// is encoded once, and that every subscriber gets that one encoding.
func TestEventEncodedOnce(t *testing.T) {
	e, _ := newEngine(t, newBolt(t), Options{})
	const subs = 50
	chans := make([]<-chan Event, subs)
	for i := range chans {
		ch, cancel := e.Subscribe(nil)
		defer cancel()
		chans[i] = ch
	}
	newReplica().push(t, e, todo("t"), newReplica().edit(t, "x", 1))

	var calls atomic.Int64
	encode := func(ev Event) ([]byte, error) {
		calls.Add(1)
		return append([]byte(ev.Key.ID+":"), ev.Changes...), nil
	}
	var first []byte
	for i, ch := range chans {
		ev := mustEvent(t, ch)
		b, err := ev.Encoded(encode)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = b
		} else if &b[0] != &first[0] {
			t.Fatalf("subscriber %d got its own encoding, want the shared one", i)
		}
	}
	if got := calls.Load(); got != 1 {
		t.Fatalf("encode ran %d times for %d subscribers, want 1", got, subs)
	}
}

func equalHashes(a, b []crdt.Hash) bool {
	if len(a) != len(b) {
		return false
	}
	set := make(map[crdt.Hash]bool, len(a))
	for _, h := range a {
		set[h] = true
	}
	for _, h := range b {
		if !set[h] {
			return false
		}
	}
	return true
}
