package server

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/protocol"
	"github.com/dynamerge/dynamerge/store"
)

// MaxEventCollections bounds the collections of one SSE subscription.
const MaxEventCollections = 100

// maxEventsPerWrite bounds the queued events one stream writes before it
// flushes, so that a stream that fell behind still delivers steadily.
const maxEventsPerWrite = 64

// sseRetryAfter is what a client over its SSE stream quota is told to wait:
// streams end when tabs close, which takes a while.
const sseRetryAfter = 10 * time.Second

// handleEvents is GET /v1/events?collections=a,b: Server-Sent Events, one
// "change" event per changed record, ": ping" comments while idle. The stream
// ends when the client leaves, the engine closes, Shutdown starts, or the
// token expires (Principal.Expires).
func (s *Server) handleEvents(c echo.Context) error {
	collections, err := parseCollections(c.QueryParam("collections"))
	if err != nil {
		return err
	}
	for _, col := range collections {
		if err := s.authorize(c, col, false); err != nil {
			return err
		}
	}

	release, ok := s.sse.acquire(clientKey(c))
	if !ok {
		// Refused up front, like a forbidden collection: a client must not
		// believe it is subscribed when it is not.
		return &RateLimitError{RetryAfter: sseRetryAfter}
	}
	defer release()

	events, cancel := s.eng.Subscribe(collections)
	defer cancel()

	rc := http.NewResponseController(c.Response())
	// Lift any write deadline: this answer lives for hours. (The read
	// deadline is already cleared by net/http's background read, which
	// TestEventsOutliveReadTimeout checks.)
	_ = rc.SetWriteDeadline(time.Time{})

	h := c.Response().Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	c.Response().WriteHeader(http.StatusOK)
	// A first comment gets the headers out now, so EventSource fires "open"
	// and the client knows it is subscribed before any event.
	if err := writeAndFlush(c, rc, ": subscribed\n\n"); err != nil {
		return nil // the client is gone
	}

	s.metrics.sseConnections.Inc()
	defer s.metrics.sseConnections.Dec()

	ping := time.NewTicker(s.opts.PingInterval)
	defer ping.Stop()
	ctx := c.Request().Context()
	// A stream ends when its token does: it must not keep delivering to a
	// caller whose credentials (and perhaps permissions) have lapsed. The
	// client reconnects with a fresh token.
	var expired <-chan time.Time
	if p := PrincipalFrom(ctx); p != nil && !p.Expires.IsZero() {
		t := time.NewTimer(time.Until(p.Expires))
		defer t.Stop()
		expired = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.closing:
			return nil
		case <-expired:
			_ = writeAndFlush(c, rc, ": token expired\n\n")
			return nil
		case <-ping.C:
			if err := writeAndFlush(c, rc, ": ping\n\n"); err != nil {
				return nil
			}
		case ev, ok := <-events:
			if !ok {
				return nil // the engine closed
			}
			// Events already queued go out with this one, in one write:
			// under fan-out the write is most of what an event costs, and
			// waiting for none adds no latency.
			n := 0
			for {
				frame, err := ev.Encoded(encodeEvent)
				if err != nil {
					return fmt.Errorf("events: encode: %w", err)
				}
				if _, err := c.Response().Write(frame); err != nil {
					return nil
				}
				n++
				if n == maxEventsPerWrite || len(events) == 0 {
					break
				}
				if ev, ok = <-events; !ok {
					break // the engine closed: flush what was written
				}
			}
			if err := rc.Flush(); err != nil || !ok {
				return nil
			}
			s.metrics.sseEvents.Add(float64(n))
		}
	}
}

// encodeEvent renders an engine event as a whole SSE frame. The engine calls
// it once per published event, and every stream the event goes to writes
// the same bytes (engine.Event.Encoded): the base64 of inlined changes is
// made once per change, not once per subscriber.
func encodeEvent(ev engine.Event) ([]byte, error) {
	pe := protocol.Event{
		Collection: ev.Key.Collection,
		ID:         ev.Key.ID,
		Heads:      hashStrings(ev.Heads),
		Deleted:    ev.Deleted,
	}
	if len(ev.Changes) > 0 {
		pe.Changes = base64.StdEncoding.EncodeToString(ev.Changes)
	}
	data, err := json.Marshal(pe)
	if err != nil {
		return nil, err
	}
	frame := make([]byte, 0, len(data)+len("event: change\ndata: \n\n"))
	frame = append(frame, "event: change\ndata: "...)
	frame = append(frame, data...)
	return append(frame, "\n\n"...), nil
}

func writeAndFlush(c echo.Context, rc *http.ResponseController, s string) error {
	if _, err := c.Response().Write([]byte(s)); err != nil {
		return err
	}
	return rc.Flush()
}

// parseCollections reads the comma-separated collections of a subscription.
func parseCollections(q string) ([]string, error) {
	if q == "" {
		return nil, badRequest("collections: want a comma-separated list of collections")
	}
	parts := strings.Split(q, ",")
	if len(parts) > MaxEventCollections {
		return nil, badRequest("collections: at most %d", MaxEventCollections)
	}
	seen := make(map[string]bool, len(parts))
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		if !store.ValidCollection(p) {
			return nil, invalidID(fmt.Errorf("%w: collection %q must match %s", store.ErrInvalidKey, p, protocol.CollectionPattern))
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}
