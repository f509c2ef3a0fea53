package benchmarks

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/server"
)

// replicaState is one replica's view of a record after its final sync.
type replicaState struct {
	collection, id string
	heads          []string
}

// stateOf is p's state for converged, after its final sync.
func stateOf(p *client.Replica) replicaState {
	return replicaState{collection: p.Collection(), id: p.ID(), heads: p.Heads()}
}

// checkConverged asks the server, independently of the replicas' own syncs,
// whether each replica stands exactly where the server does, and fails the
// benchmark otherwise: a fast wrong number is worse than none.
func checkConverged(tb testing.TB, c *client.Client, states []replicaState) {
	tb.Helper()
	if err := converged(c, states); err != nil {
		tb.Fatal(err)
	}
}

// converged checks each replica with a pull that announces its heads: the
// server must bring back no change and the same heads.
func converged(c *client.Client, states []replicaState) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var bad []string
	for batch := range slices.Chunk(states, server.DefaultMaxDocsPerSync) {
		docs := make([]client.Doc, len(batch))
		for i, s := range batch {
			docs[i] = client.Doc{Collection: s.collection, ID: s.id, Have: s.heads}
		}
		res, err := c.Sync(ctx, docs)
		if err != nil {
			return fmt.Errorf("convergence check: sync %d docs: %w", len(docs), err)
		}
		for i, r := range res {
			s := batch[i]
			heads := slices.Sorted(slices.Values(r.Heads))
			mine := slices.Sorted(slices.Values(s.heads))
			switch {
			case r.Err != nil:
				bad = append(bad, fmt.Sprintf("%s/%s: %v", s.collection, s.id, r.Err))
			case len(r.Changes) > 0 || !slices.Equal(heads, mine):
				bad = append(bad, fmt.Sprintf("%s/%s: replica at %v, server at %v with %d bytes the replica lacks",
					s.collection, s.id, mine, heads, len(r.Changes)))
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("NOT CONVERGED: %d of %d replicas differ from the server, e.g.:\n%s",
			len(bad), len(states), strings.Join(bad[:min(len(bad), 10)], "\n"))
	}
	return nil
}
