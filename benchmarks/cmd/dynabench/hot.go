package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/dynamerge/dynamerge/benchmarks"
	"github.com/dynamerge/dynamerge/client"
)

// Scenario 3, hot record: W writers typing into one record's text at a
// fixed rate each, with and without group commit. An observer follows the
// record as a browser tab would (Server-Sent Events, then a pull) and
// measures remote latency: from the moment a writer made a change to the
// moment the observer holds it.

const hotCollection = "docs"

func runHot(ctx context.Context, e *env) {
	for _, st := range e.stores(sysDynamerge) {
		for _, w := range e.p.HotWriters {
			for _, group := range []bool{true, false} {
				if ctx.Err() != nil {
					return
				}
				variant := fmt.Sprintf("w=%d group-commit", w)
				if !group {
					variant = fmt.Sprintf("w=%d no-group-commit", w)
				}
				start := time.Now()
				r := &Result{Scenario: "hot-record", System: sysDynamerge, Store: st, Variant: variant, Converged: true, Metrics: map[string]float64{},
					Params: map[string]any{"writers": w, "rate_per_writer": e.p.HotRate, "seconds": e.p.HotDuration.Seconds(), "group_commit": group}}
				r.fail(hot(ctx, e, st, w, group, r))
				e.record(r, start)
			}
		}
	}
}

func hot(ctx context.Context, e *env, st string, writers int, group bool, r *Result) error {
	var extra []string
	if !group {
		extra = append(extra, "--no-group-commit")
	}
	srv, err := e.startDynamerge(ctx, st, extra...)
	if err != nil {
		return err
	}
	defer func() { _ = srv.Stop() }()
	newClient := func() *client.Client {
		c := client.New(srv.URL)
		c.HTTP = srv.http
		return c
	}
	id := fmt.Sprintf("hot-%d", e.seq.Add(1))
	// The record and its text object are made once, by one replica: two
	// writers creating "text" concurrently would make two objects.
	base := client.NewReplica(newClient(), hotCollection, id)
	if err := base.Doc().RootMap().Set("text", automerge.NewText("")); err != nil {
		return err
	}
	if _, err := base.Commit(""); err != nil {
		return err
	}
	if err := base.Sync(ctx); err != nil {
		return err
	}
	ws := make([]*client.Replica, writers)
	for i := range ws {
		if ws[i], err = base.Fork(newClient()); err != nil {
			return err
		}
	}
	obs, err := base.Fork(newClient())
	if err != nil {
		return err
	}

	var (
		mu      sync.Mutex
		clock   = newRemoteClock()
		push    benchmarks.Latencies
		changes int
	)
	stopObs, err := follow(ctx, obs, clock)
	if err != nil {
		return err
	}
	defer func() { _ = stopObs() }()

	bar := e.bar(int(e.p.HotDuration.Seconds()*10), fmt.Sprintf("hot-record %s w=%d gc=%v", st, writers, group))
	before, err := srv.usage(ctx)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(e.p.HotDuration)
	period := time.Duration(float64(time.Second) / e.p.HotRate)
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i, w := range ws {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(e.o.seed, uint64(1000+i)))
			// A random phase, so that the writers do not type in lockstep.
			time.Sleep(time.Duration(rng.Int64N(int64(period))))
			t := time.NewTicker(period)
			defer t.Stop()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				rtt, err := typeAndPush(ctx, w, clock, false, func(txt *automerge.Text) error {
					return txt.Insert(rng.IntN(txt.Len()+1), string(rune('a'+rng.IntN(26))))
				})
				if err != nil {
					errs[i] = err
					return
				}
				mu.Lock()
				push.Add(rtt)
				changes++
				mu.Unlock()
				<-t.C
			}
		})
	}
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		_ = bar.Add(1)
	}
	wg.Wait()
	_ = bar.Finish()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	after, err := srv.usage(ctx)
	if err != nil {
		return err
	}
	if err := stopObs(); err != nil {
		return err
	}
	remote := clock.latencies()
	mu.Lock()
	r.Metrics["changes"] = float64(changes)
	r.Metrics["changes_per_s"] = float64(changes) / e.p.HotDuration.Seconds()
	offered := float64(writers) * e.p.HotRate
	r.Metrics["offered_per_s"] = offered
	if r.Metrics["changes_per_s"] < 0.9*offered {
		r.Notes = append(r.Notes, fmt.Sprintf("only %.1f of the %.0f changes/s offered were made: each writer waits for its push to be acknowledged before typing again, so a slow server lowers the rate", r.Metrics["changes_per_s"], offered))
	}
	r.Metrics["observed"] = float64(remote.Len())
	mu.Unlock()
	r.Metrics["remote_p50_ms"] = pctMs(remote, 50)
	r.Metrics["remote_p99_ms"] = pctMs(remote, 99)
	r.Metrics["push_p50_ms"] = pctMs(&push, 50)
	r.Metrics["push_p99_ms"] = pctMs(&push, 99)
	storeDiff(r, srv, before, after, changes)
	r.Metrics["peak_rss_mb"] = float64(srv.PeakRSS()) / (1 << 20)

	// Convergence: everyone merges everything; all must stand at the
	// server's heads, and every change made must be in the record.
	return converge(ctx, append(slices.Clone(ws), obs), obs, clock)
}
