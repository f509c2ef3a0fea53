package benchmarks

import (
	"context"
	"strings"
	"testing"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/engine"
)

// TestConvergenceCheck proves the check every benchmark ends with can fail:
// a replica that missed another's change is reported, and catching up
// clears it. It runs a real stack, in well under a second.
func TestConvergenceCheck(t *testing.T) {
	s := newStack(t, engine.Options{})
	ctx := context.Background()
	a := client.NewReplica(s.client, "bench", "check")
	b := client.NewReplica(s.client, "bench", "check")
	for _, p := range []*client.Replica{a, b} {
		if err := Set(p, "x", int64(1)); err != nil {
			t.Fatal(err)
		}
		if err := p.Sync(ctx); err != nil {
			t.Fatalf("sync: %v", err)
		}
	}
	// a synced before b pushed: it lacks b's change.
	err := converged(s.client, []replicaState{stateOf(a), stateOf(b)})
	if err == nil || !strings.Contains(err.Error(), "1 of 2 replicas differ") {
		t.Fatalf("converged() with a stale replica = %v, want 1 of 2 replicas differ", err)
	}
	if err := a.Sync(ctx); err != nil {
		t.Fatalf("catch-up sync: %v", err)
	}
	if err := converged(s.client, []replicaState{stateOf(a), stateOf(b)}); err != nil {
		t.Fatalf("converged() after catching up: %v", err)
	}
	if got, want := s.counts.Counts().Appends, uint64(2); got != want {
		t.Fatalf("store appends = %d, want %d (one per pushed change)", got, want)
	}
}
