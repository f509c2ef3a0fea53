package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynamerge/dynamerge/benchmarks"
	"github.com/dynamerge/dynamerge/client"
)

// Scenario 2, breadth: N clients on M records. Each operation is one edit
// of a random record by a random client and its sync. A client makes its
// replica of a record the first time it picks it, with an untimed pull, as
// an app opening a record would.

const breadthCollection = "items"

func runBreadth(ctx context.Context, e *env) {
	for _, st := range e.stores(sysDynamerge) {
		if ctx.Err() != nil {
			return
		}
		start := time.Now()
		r := &Result{Scenario: "breadth", System: sysDynamerge, Store: st, Converged: true, Metrics: map[string]float64{},
			Params: map[string]any{"clients": e.p.BreadthClients, "records": e.p.BreadthRecords, "ops": e.p.BreadthOps, "open_replicas_per_client": e.p.BreadthOpen}}
		r.fail(breadth(ctx, e, st, r))
		e.record(r, start)
	}
}

func breadth(ctx context.Context, e *env, st string, r *Result) error {
	srv, err := e.startDynamerge(ctx, st)
	if err != nil {
		return err
	}
	defer func() { _ = srv.Stop() }()
	p := e.p
	idle := srv.ResetPeak()
	r.Metrics["idle_rss_mb"] = float64(idle) / (1 << 20)
	clients := make([]*client.Client, p.BreadthClients)
	reps := make([]map[int]*client.Replica, p.BreadthClients)
	for c := range clients {
		clients[c] = client.New(srv.URL)
		clients[c].HTTP = srv.http
		reps[c] = map[int]*client.Replica{}
	}
	rng := rand.New(rand.NewPCG(e.o.seed, 2))
	type op struct{ client, record int }
	ops := make([]op, p.BreadthOps)
	for i := range ops {
		ops[i] = op{rng.IntN(p.BreadthClients), rng.IntN(p.BreadthRecords)}
	}
	// One goroutine per client, each doing its own operations in order.
	perClient := make([][]int, p.BreadthClients)
	for i, o := range ops {
		perClient[o.client] = append(perClient[o.client], i)
	}
	bar := e.bar(len(ops), "breadth dynamerge/"+st)
	before, err := srv.usage(ctx)
	if err != nil {
		return err
	}
	var (
		mu   sync.Mutex
		lat  benchmarks.Latencies
		done atomic.Int64
		wg   sync.WaitGroup
	)
	errs := make([]error, p.BreadthClients)
	lru := make([][]int, p.BreadthClients) // open replicas per client, least recent first
	lastWrite := map[[2]int]int{}          // (client, record) → the op that client last wrote there
	var untimed atomic.Int64               // nanoseconds spent on first pulls, taken out of the wall time
	t0 := time.Now()
	for c := range p.BreadthClients {
		wg.Go(func() {
			for _, i := range perClient[c] {
				if ctx.Err() != nil {
					errs[c] = ctx.Err()
					return
				}
				rec := ops[i].record
				rp, ok := reps[c][rec]
				if ok {
					lru[c] = slices.DeleteFunc(lru[c], func(x int) bool { return x == rec })
				} else {
					// Close the least recently used replica past the bound,
					// as an app bounds the documents it keeps loaded. Every
					// replica is synced after each edit, so nothing is
					// pending in it.
					if len(lru[c]) >= p.BreadthOpen {
						delete(reps[c], lru[c][0])
						lru[c] = lru[c][1:]
					}
					ts := time.Now()
					rp = client.NewReplica(clients[c], breadthCollection, recordID(rec))
					if err := rp.Sync(ctx); err != nil {
						errs[c] = fmt.Errorf("client %d first pull of %d: %w", c, rec, err)
						return
					}
					untimed.Add(int64(time.Since(ts)))
					reps[c][rec] = rp
				}
				lru[c] = append(lru[c], rec)
				if err := rp.Doc().Path(fmt.Sprintf("c%d", c)).Set(int64(i)); err != nil {
					errs[c] = err
					return
				}
				if _, err := rp.Doc().Commit(""); err != nil {
					errs[c] = err
					return
				}
				ts := time.Now()
				if err := rp.Sync(ctx); err != nil {
					errs[c] = fmt.Errorf("client %d op %d: %w", c, i, err)
					return
				}
				d := time.Since(ts)
				mu.Lock()
				lastWrite[[2]int{c, rec}] = i
				lat.Add(d)
				mu.Unlock()
				done.Add(1)
				_ = bar.Add(1)
			}
		})
	}
	wg.Wait()
	_ = bar.Finish()
	wall := time.Since(t0)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	after, err := srv.usage(ctx)
	if err != nil {
		return err
	}
	n := int(done.Load())
	// The clients ran concurrently, so the first pulls overlapped the timed
	// syncs: the rate is over the whole wall time, first pulls included,
	// and says so rather than guess at the overlap.
	r.Metrics["changes"] = float64(n)
	r.Metrics["changes_per_s"] = float64(n) / wall.Seconds()
	r.Metrics["first_pull_s_total"] = time.Duration(untimed.Load()).Seconds()
	r.Metrics["sync_p50_ms"] = pctMs(&lat, 50)
	r.Metrics["sync_p99_ms"] = pctMs(&lat, 99)
	storeDiff(r, srv, before, after, n)
	peak := srv.PeakRSS()
	r.Metrics["peak_rss_mb"] = float64(peak) / (1 << 20)
	_, rss, _ := srv.Usage()
	if loaded := after.metrics["dynamerge_cache_records"]; loaded > 0 {
		r.Metrics["records_loaded"] = loaded
		r.Metrics["rss_per_record_kb"] = float64(rss-idle) / loaded / 1024
	}
	r.Notes = append(r.Notes, "changes_per_s is over the whole run's wall time, which includes each client's untimed first pull of a record it had not opened before")

	// Convergence: every client syncs all its replicas twice (push what is
	// left, then pull what others pushed meanwhile); then every replica of a
	// record must stand at the server's heads.
	for range 2 {
		var wg sync.WaitGroup
		for c := range clients {
			wg.Go(func() {
				var rs []*client.Replica
				for _, k := range slices.Sorted(maps.Keys(reps[c])) {
					rs = append(rs, reps[c][k])
				}
				for i := 0; i < len(rs); i += 200 {
					if err := client.SyncAll(ctx, clients[c], rs[i:min(i+200, len(rs))]); err != nil {
						errs[c] = err
						return
					}
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("final sync: %w", err)
		}
	}
	// Nothing lost: every record holds, for every client that wrote it,
	// that client's last write (closed replicas included).
	server := map[int][]string{}
	views := map[int]map[string]any{}
	for k, i := range lastWrite {
		c, rec := k[0], k[1]
		view, ok := views[rec]
		if !ok {
			got, err := clients[0].Get(ctx, breadthCollection, recordID(rec))
			if err != nil {
				return err
			}
			if err := json.Unmarshal(got.Doc, &view); err != nil {
				return fmt.Errorf("record %d: %w", rec, err)
			}
			views[rec] = view
			server[rec] = slices.Sorted(slices.Values(got.Heads))
		}
		if v, _ := view[fmt.Sprintf("c%d", c)].(float64); int(v) != i {
			return fmt.Errorf("lost write: record %d holds %v for client %d, whose last write was %d", rec, view[fmt.Sprintf("c%d", c)], c, i)
		}
	}
	for c := range clients {
		for rec, rp := range reps[c] {
			want, ok := server[rec]
			if !ok {
				got, err := clients[0].Get(ctx, breadthCollection, recordID(rec))
				if err != nil {
					return err
				}
				want = slices.Sorted(slices.Values(got.Heads))
				server[rec] = want
			}
			if h := slices.Sorted(slices.Values(rp.Heads())); !slices.Equal(h, want) {
				return fmt.Errorf("not converged: client %d record %d heads %v, server %v", c, rec, h, want)
			}
		}
	}
	return nil
}
