package benchmarks

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/engine"
)

// throughputRecords is the number of records the throughput clients share.
const throughputRecords = 1000

// BenchmarkThroughput_64Clients1000Records: 64 clients, each with its own
// client.Client and client.Replica set over 1,000 records, each operation
// one edit of a random record and a sync of it (push 1 change, pull what
// other clients wrote meanwhile). A client makes its replica of a record the
// first time it picks it, with an untimed pull. Every record exists before
// the run (one seeding request). p50/p99 are the latencies of the edit
// syncs, client-side merge included: this is the Go client's whole cost.
func BenchmarkThroughput_64Clients1000Records(b *testing.B) {
	s := newStack(b, engine.Options{})
	ctx := context.Background()
	const collection = "bench"
	recordID := func(i int) string { return fmt.Sprintf("rec-%04d", i) }

	seeds := make([]*client.Replica, throughputRecords)
	for i := range seeds {
		r := client.NewReplica(s.client, collection, recordID(i))
		if err := r.Doc().Path("title").Set(recordID(i)); err != nil {
			b.Fatalf("seed %s: %v", recordID(i), err)
		}
		if _, err := r.Doc().Commit("create"); err != nil {
			b.Fatalf("seed %s: commit: %v", recordID(i), err)
		}
		seeds[i] = r
	}
	if err := client.SyncAll(ctx, s.client, seeds); err != nil {
		b.Fatalf("seed %d records: %v", len(seeds), err)
	}

	rng := newRand(b)
	type benchClient struct {
		c        *client.Client
		rng      *rand.Rand
		replicas map[int]*client.Replica
		field    string
	}
	cls := make([]*benchClient, clients)
	for i := range cls {
		cls[i] = &benchClient{
			c:        s.newClient(),
			rng:      rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())),
			replicas: map[int]*client.Replica{},
			field:    fmt.Sprint("client", i),
		}
	}

	var lat Latencies
	before, boltBefore := s.counts.Counts(), s.bolt.Stats()
	ops, elapsed := drive(b, func(ci, n int) error {
		cl := cls[ci]
		i := cl.rng.IntN(throughputRecords)
		r := cl.replicas[i]
		if r == nil {
			r = client.NewReplica(cl.c, collection, recordID(i))
			if err := r.Sync(ctx); err != nil {
				return fmt.Errorf("first pull of %s: %w", recordID(i), err)
			}
			cl.replicas[i] = r
		}
		if err := r.Doc().Path(cl.field).Set(int64(n)); err != nil {
			return fmt.Errorf("edit %s: %w", recordID(i), err)
		}
		if _, err := r.Doc().Commit(""); err != nil {
			return fmt.Errorf("commit %s: %w", recordID(i), err)
		}
		start := time.Now()
		if err := r.Sync(ctx); err != nil {
			return fmt.Errorf("sync %s: %w", recordID(i), err)
		}
		lat.Add(time.Since(start))
		return nil
	})
	s.reportStore(b, ops, before, boltBefore)
	s.reportRSS(b)

	// Every replica pulls what it lacks, one request per client, then each
	// must stand where the server does.
	var states []replicaState
	all := [][]*client.Replica{seeds}
	for _, cl := range cls {
		rs := make([]*client.Replica, 0, len(cl.replicas))
		for _, r := range cl.replicas {
			rs = append(rs, r)
		}
		all = append(all, rs)
	}
	replicas := 0
	for _, rs := range all {
		if err := client.SyncAll(ctx, s.client, rs); err != nil {
			b.Fatalf("final sync: %v", err)
		}
		for _, r := range rs {
			states = append(states, replicaState{collection: r.Collection(), id: r.ID(), heads: r.Heads()})
		}
		replicas += len(rs)
	}
	checkConverged(b, s.client, states)

	reportLoad(b, ops, elapsed, &lat)
	b.ReportMetric(float64(replicas-len(seeds)), "replicas")
}
