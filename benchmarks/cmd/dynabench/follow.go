package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/dynamerge/dynamerge/benchmarks"
	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/crdt"
)

// remoteClock pairs the moment a writer made each change with the moment
// an observer first held it: the remote latency of the hot-record and
// large-text scenarios. It is safe for concurrent use.
type remoteClock struct {
	mu             sync.Mutex
	madeAt, seenAt map[crdt.Hash]time.Time
}

func newRemoteClock() *remoteClock {
	return &remoteClock{madeAt: map[crdt.Hash]time.Time{}, seenAt: map[crdt.Hash]time.Time{}}
}

// made records that a writer made change h now.
func (c *remoteClock) made(h automerge.ChangeHash) {
	hash, _ := crdt.ParseHash(h.String())
	c.mu.Lock()
	c.madeAt[hash] = time.Now()
	c.mu.Unlock()
}

// seenHashes records that the observer received changes at at.
func (c *remoteClock) seenHashes(hs []automerge.ChangeHash, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range hs {
		if _, dup := c.seenAt[crdt.Hash(h)]; !dup {
			c.seenAt[crdt.Hash(h)] = at
		}
	}
}

// seen records that the observer received the change bytes pulled at at.
func (c *remoteClock) seen(pulled []byte, at time.Time) error {
	chs, err := crdt.Split(pulled)
	if err != nil {
		return fmt.Errorf("observer: split answer: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range chs {
		if _, dup := c.seenAt[ch.Hash]; !dup {
			c.seenAt[ch.Hash] = at
		}
	}
	return nil
}

// latencies returns the remote latency of every change both made and seen.
func (c *remoteClock) latencies() *benchmarks.Latencies {
	c.mu.Lock()
	defer c.mu.Unlock()
	var l benchmarks.Latencies
	for h, t := range c.seenAt {
		if m, ok := c.madeAt[h]; ok {
			l.Add(t.Sub(m))
		}
	}
	return &l
}

// follow makes obs follow its record as a browser tab would (Server-Sent
// Events; the change an event carries applied when the observer holds its
// dependencies, a pull that merges otherwise), telling clock when each change
// arrived, until stop is called; stop lets half a second pass for the last
// events, returns what went wrong meanwhile, and may be called again.
func follow(ctx context.Context, obs *client.Replica, clock *remoteClock) (stop func() error, err error) {
	octx, cancel := context.WithCancel(ctx)
	// The stream lasts as long as the run: the same client without the
	// runner's whole-request timeout (2 minutes), which would end it.
	ec := *obs.Client()
	if ec.HTTP != nil {
		hc := *ec.HTTP
		hc.Timeout = 0
		ec.HTTP = &hc
	}
	events, err := ec.Events(octx, obs.Collection())
	if err != nil {
		cancel()
		return nil, fmt.Errorf("observer: subscribe: %w", err)
	}
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			for {
				select {
				case <-octx.Done():
					return nil
				case ev, ok := <-events:
					if !ok {
						if octx.Err() != nil {
							return nil
						}
						return errors.New("observer: event stream ended early")
					}
					if ev.ID != obs.ID() {
						continue
					}
					// Events that carry their changes, whose dependencies
					// the observer holds, need no pull; those queued behind
					// this one are applied with it, in one merge.
					batch := []client.Event{ev}
					for len(events) > 0 {
						if next, ok := <-events; ok && next.ID == obs.ID() {
							batch = append(batch, next)
						}
					}
					if applied, err := obs.ApplyEvents(batch...); err != nil {
						return fmt.Errorf("observer: %w", err)
					} else if applied {
						in, _, _ := client.EventChanges(batch...)
						clock.seenHashes(in.Hashes, time.Now())
						continue
					}
				}
				// Coalesce: one pull brings everything the queued events
				// announce.
				for len(events) > 0 {
					<-events
				}
				s, err := benchmarks.Sync(octx, obs, true)
				if err != nil {
					if octx.Err() != nil {
						return nil
					}
					return fmt.Errorf("observer: %w", err)
				}
				if len(s.Pulled) == 0 {
					continue // the event's change came with an earlier pull
				}
				if err := clock.seen(s.Pulled, time.Now()); err != nil {
					return err
				}
			}
		}()
	}()
	return sync.OnceValue(func() error {
		// Give the observer a moment for the last events, then stop it.
		time.Sleep(500 * time.Millisecond)
		cancel()
		return <-done
	}), nil
}

// converge makes every peer merge everything: all must then stand at the
// server's heads, and every change a writer made must be in obs.
func converge(ctx context.Context, all []*client.Replica, obs *client.Replica, clock *remoteClock) error {
	for _, w := range all {
		if err := w.Sync(ctx); err != nil {
			return fmt.Errorf("final sync: %w", err)
		}
	}
	for _, w := range all {
		if err := w.Sync(ctx); err != nil {
			return fmt.Errorf("final sync: %w", err)
		}
		if !slices.Equal(w.Heads(), all[0].Heads()) {
			return fmt.Errorf("not converged: %v vs %v", w.Heads(), all[0].Heads())
		}
	}
	clock.mu.Lock()
	defer clock.mu.Unlock()
	for h := range clock.madeAt {
		ah, _ := automerge.NewChangeHash(h.String())
		if _, err := obs.Doc().Change(ah); err != nil {
			return fmt.Errorf("change %s made by a writer is not in the record", h)
		}
	}
	return nil
}

// typeAndPush makes one edit of w's text a change, starts its remote
// clock and pushes it (merging the answer when merge is set); it returns
// the push's round trip.
func typeAndPush(ctx context.Context, w *client.Replica, clock *remoteClock, merge bool, edit func(*automerge.Text) error) (time.Duration, error) {
	if err := edit(w.Doc().Path("text").Text()); err != nil {
		return 0, err
	}
	c, err := w.Commit("")
	if err != nil {
		return 0, err
	}
	clock.made(c.Hash())
	s, err := benchmarks.Sync(ctx, w, merge)
	return s.RTT, err
}
