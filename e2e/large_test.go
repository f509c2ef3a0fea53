package e2e

import (
	"testing"

	"github.com/dynamerge/dynamerge/internal/amjs"
	"github.com/dynamerge/dynamerge/internal/largetest"
)

// TestLargePaste: a change that pastes a million characters is accepted
// with the default limits, and a fresh client (Automerge JS) sees what the
// server's JSON view shows. store/dynamo/integration runs the same on
// DynamoDB Local.
func TestLargePaste(t *testing.T) {
	s, js := newStack(t), amjs.Start(t)
	largetest.Paste(t, s.client, js, "notes", "article", 1_000_000)
	// After a restart the record loads cold from its log and snapshot.
	s.restart()
	rec, err := s.client.Get(t.Context(), "notes", "article")
	if err != nil {
		t.Fatalf("Get after restart: %v", err)
	}
	largetest.FreshClient(t, s.client, js, "notes", "article", rec)
}

// TestLargeTyping: two writers type 100,000 changes into one text record
// concurrently (20,000 with -short) and converge; after a restart, a new
// client's first pull (the record loaded cold) sees the same.
func TestLargeTyping(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 20_000
	}
	s, js := newStack(t), amjs.Start(t)
	largetest.Typing(t, s.client, js, "notes", "typed", largetest.TypingOptions{Changes: n})
	// Cold: the first pull after a restart loads the record from its
	// snapshot and log.
	s.restart()
	rec, err := s.client.Get(t.Context(), "notes", "typed")
	if err != nil {
		t.Fatalf("Get after restart: %v", err)
	}
	s.restart()
	largetest.FreshClient(t, s.client, js, "notes", "typed", rec)
}
