package benchmarks

import (
	"context"
	"flag"
	"fmt"
	"testing"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/engine"
)

// flagHotMerge makes the hot-record clients apply every answer (Sync, not
// Push): the realistic client, but in this one process its merging of
// 63 other clients' changes per sync competes with the server for the cores.
var flagHotMerge = flag.Bool("hotmerge", false, "hot-record clients merge every answer instead of only at the end")

// benchmarkHotRecord: 64 clients, one record, each operation one edit and a
// sync that pushes it (and is answered with what the others pushed since
// the client's last sync). With group commit, pushes that arrive while the
// record's write is in flight go out together in its next store append;
// without, every push is its own append and fsync.
func benchmarkHotRecord(b *testing.B, noGroupCommit bool) {
	s := newStack(b, engine.Options{NoGroupCommit: noGroupCommit})
	ctx := context.Background()
	const collection, id = "bench", "hot"

	seed := client.NewReplica(s.client, collection, id)
	if err := Set(seed, "created", int64(1)); err != nil {
		b.Fatal(err)
	}
	if err := seed.Sync(ctx); err != nil {
		b.Fatalf("seed: %v", err)
	}
	peers := make([]*client.Replica, clients)
	for i := range peers {
		peers[i] = client.NewReplica(s.newClient(), collection, id)
		if _, err := Sync(ctx, peers[i], true); err != nil {
			b.Fatalf("first pull: %v", err)
		}
	}

	var lat Latencies
	before, boltBefore := s.counts.Counts(), s.bolt.Stats()
	ops, elapsed := drive(b, func(ci, n int) error {
		p := peers[ci]
		if err := Set(p, fmt.Sprint("client", ci), int64(n)); err != nil {
			return err
		}
		st, err := Sync(ctx, p, *flagHotMerge)
		if err != nil {
			return err
		}
		lat.Add(st.RTT)
		return nil
	})
	s.reportStore(b, ops, before, boltBefore)
	s.reportRSS(b)

	states := []replicaState{}
	for _, p := range append(peers, seed) {
		if err := p.Sync(ctx); err != nil {
			b.Fatalf("final sync: %v", err)
		}
		states = append(states, stateOf(p))
	}
	checkConverged(b, s.client, states)
	reportLoad(b, ops, elapsed, &lat)
}

func BenchmarkHotRecord_64Clients_GroupCommit(b *testing.B)   { benchmarkHotRecord(b, false) }
func BenchmarkHotRecord_64Clients_NoGroupCommit(b *testing.B) { benchmarkHotRecord(b, true) }
