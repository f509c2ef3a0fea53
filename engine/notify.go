package engine

import (
	"slices"
	"sync"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/store"
)

// subscriberBuffer is how many events a subscriber may lag behind before it
// starts losing them.
const subscriberBuffer = 256

type subscriber struct {
	collections map[string]bool // nil: every collection
	ch          chan Event
}

type subscribers struct {
	mu     sync.RWMutex
	set    map[*subscriber]struct{}
	closed bool
}

// Subscribe delivers an Event for every change to a record of the given
// collections (all collections when empty), through this engine or (when the
// store supports it) any other process. Slow subscribers lose events rather
// than block writers; the channel is closed when cancel is called, when the
// engine closes, or when other processes' events may have been missed (see
// watchGap): resubscribe and sync then.
func (e *Engine) Subscribe(collections []string) (events <-chan Event, cancel func()) {
	s := &subscriber{ch: make(chan Event, subscriberBuffer)}
	if len(collections) > 0 {
		s.collections = make(map[string]bool, len(collections))
		for _, c := range collections {
			s.collections[c] = true
		}
	}
	e.subs.mu.Lock()
	if e.subs.closed {
		e.subs.mu.Unlock()
		close(s.ch)
		return s.ch, func() {}
	}
	if e.subs.set == nil {
		e.subs.set = make(map[*subscriber]struct{})
	}
	e.subs.set[s] = struct{}{}
	e.subs.mu.Unlock()
	return s.ch, func() {
		e.subs.mu.Lock()
		defer e.subs.mu.Unlock()
		if _, ok := e.subs.set[s]; ok {
			delete(e.subs.set, s)
			close(s.ch)
		}
	}
}

// publish fans an event out without ever blocking: the writer that calls it
// holds a record's writer slot. changes (nil when none ride along) and the
// event's encoding are shared by every subscriber.
func (s *subscribers) publish(key store.Key, heads []crdt.Hash, deleted bool, changes []byte) {
	ev := Event{Key: key, Heads: slices.Clone(heads), Deleted: deleted, Changes: changes, shared: &sharedEncoding{}}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for sub := range s.set {
		if sub.collections != nil && !sub.collections[key.Collection] {
			continue
		}
		select {
		case sub.ch <- ev:
		default: // slow subscriber: drop
		}
	}
}

func (s *subscribers) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for sub := range s.set {
		close(sub.ch)
	}
	s.set = nil
}
