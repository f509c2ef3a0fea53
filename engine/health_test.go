package engine

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/dynamerge/dynamerge/store"
)

// TestReadyAfterWriteFailure: while the store answers pings but its last
// write failed (a full disk), Ready reports ErrUnavailable; a successful
// write makes the engine ready again (issue 18, item 8: /readyz said ready
// while every write failed).
func TestReadyAfterWriteFailure(t *testing.T) {
	e, fs := newEngine(t, newBolt(t), Options{})
	ctx := context.Background()
	r := newReplica()
	sync1(t, e, DocRequest{Key: todo("full"), Changes: r.edit(t, "x", 1)})
	if err := e.Ready(ctx); err != nil {
		t.Fatalf("Ready before the failure: %v", err)
	}

	diskFull := error(fmt.Errorf("bolt: commit: write /data/dynamerge.db: %w", syscall.ENOSPC))
	fs.failWith.Store(&diskFull)
	fs.failNext.Store(1)
	refused := r.edit(t, "x", 2)
	if res := sync1(t, e, DocRequest{Key: todo("full"), Changes: refused}); !errors.Is(res.Err, ErrUnavailable) {
		t.Fatalf("push on a full disk: %v, want ErrUnavailable", res.Err)
	}
	err := e.Ready(ctx)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Ready after a failed write: %v, want ErrUnavailable with the cause", err)
	}

	// Lost races and oversized entries say nothing of the store's health.
	e.writes.note(nil)
	for _, benign := range []error{fmt.Errorf("x: %w", store.ErrConflict), fmt.Errorf("x: %w", store.ErrTooLarge)} {
		e.writes.note(benign)
		if err := e.Ready(ctx); err != nil {
			t.Fatalf("Ready after %v: %v", benign, err)
		}
	}

	e.writes.note(diskFull)
	// The client retries what was refused.
	if res := sync1(t, e, DocRequest{Key: todo("full"), Changes: refused}); res.Err != nil {
		t.Fatalf("push once the disk has room: %v", res.Err)
	}
	if err := e.Ready(ctx); err != nil {
		t.Fatalf("Ready after a successful write: %v", err)
	}
}
