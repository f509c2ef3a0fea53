package engine

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dynamerge/dynamerge/store"
)

// ReadyAfterWriteFailure is how long Ready reports the engine not ready
// after a store write failed, unless a later write succeeds first. A store
// that answers pings while every write fails (a full disk, a revoked write
// permission) would otherwise be reported ready, and a load balancer would
// keep sending it clients whose pushes all get 503. After the window Ready
// says ready again, so that traffic can show whether writes recovered.
const ReadyAfterWriteFailure = 30 * time.Second

// writeHealth remembers whether the store's last write failed.
type writeHealth struct {
	mu       sync.Mutex
	failedAt time.Time // zero once a later write succeeded
	err      error
}

// note records the outcome of a store write. A lost race for a seq
// (store.ErrConflict) or an entry over the backend's size (store.ErrTooLarge)
// says nothing of the store's health and is not recorded.
func (h *writeHealth) note(err error) {
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrTooLarge) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		h.failedAt, h.err = time.Time{}, nil
		return
	}
	h.failedAt, h.err = time.Now(), err
}

// check returns an error wrapping ErrUnavailable while the last write
// failed less than ReadyAfterWriteFailure ago.
func (h *writeHealth) check() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failedAt.IsZero() {
		return nil
	}
	if ago := time.Since(h.failedAt); ago < ReadyAfterWriteFailure {
		return fmt.Errorf("%w: the last store write failed %s ago: %w", ErrUnavailable, ago.Round(time.Millisecond), h.err)
	}
	return nil
}
