package main

import (
	"context"
	"fmt"
	"time"

	"github.com/dynamerge/dynamerge/benchmarks"
	"github.com/dynamerge/dynamerge/client"
)

// Scenario 4, long history: a one-change sync (push one, pull the other
// peer's one) on records with 100, 10k (and 100k) changes of history, and
// the cold-load time of each record — its first sync after a server
// restart. Invariant 5 holds when the sync latency stays flat as the
// history grows; only the cold load may follow the history.

const historyCollection = "history"

// historyBatch is how many changes of the built history go in one push: a
// whole history in one request would be a request no client sends.
const historyBatch = 5000

func runHistory(ctx context.Context, e *env) {
	for _, st := range e.stores(sysDynamerge) {
		for _, size := range e.p.HistorySizes {
			if ctx.Err() != nil {
				return
			}
			start := time.Now()
			r := &Result{Scenario: "long-history", System: sysDynamerge, Store: st, Variant: fmt.Sprintf("history=%d", size), Converged: true,
				Metrics: map[string]float64{"history": float64(size)},
				Params:  map[string]any{"history": size, "syncs": e.p.HistorySyncs, "upload_batch": historyBatch}}
			r.fail(history(ctx, e, st, size, r))
			e.record(r, start)
		}
	}
}

func history(ctx context.Context, e *env, st string, size int, r *Result) error {
	srv, err := e.startDynamerge(ctx, st)
	if err != nil {
		return err
	}
	defer func() { _ = srv.Stop() }()
	newClient := func() *client.Client {
		c := client.New(srv.URL)
		c.HTTP = srv.http
		return c
	}
	bar := e.bar(size/100+e.p.HistorySyncs+1, fmt.Sprintf("long-history %s n=%d", st, size))
	defer bar.Finish()
	a := client.NewReplica(newClient(), historyCollection, fmt.Sprintf("h%d-%d", size, e.seq.Add(1)))
	// Build the history: one small change per edit, as a user typing makes
	// them, pushed in batches.
	t0 := time.Now()
	var upload time.Duration
	for i := range size {
		if err := benchmarks.Set(a, fmt.Sprintf("f%d", i%50), int64(i)); err != nil {
			return err
		}
		if a.Pending() == historyBatch || i == size-1 {
			s, err := benchmarks.Sync(ctx, a, false)
			if err != nil {
				return fmt.Errorf("upload history: %w", err)
			}
			upload += s.RTT
		}
		if i%100 == 99 {
			_ = bar.Add(1)
		}
	}
	r.Metrics["build_and_upload_s"] = time.Since(t0).Seconds()
	r.Metrics["upload_changes_per_s"] = float64(size) / upload.Seconds()
	b, err := a.Fork(newClient())
	if err != nil {
		return err
	}
	// Settle both peers at the server's heads (a merge sync each).
	for _, p := range []*client.Replica{a, b} {
		if err := p.Sync(ctx); err != nil {
			return err
		}
	}
	before, err := srv.usage(ctx)
	if err != nil {
		return err
	}
	var lat benchmarks.Latencies
	for i := range e.p.HistorySyncs {
		p := a
		if i%2 == 1 {
			p = b
		}
		if err := benchmarks.Set(p, "typing", int64(i)); err != nil {
			return err
		}
		s, err := benchmarks.Sync(ctx, p, true)
		if err != nil {
			return err
		}
		lat.Add(s.RTT)
		_ = bar.Add(1)
	}
	after, err := srv.usage(ctx)
	if err != nil {
		return err
	}
	r.Metrics["sync_p50_ms"] = pctMs(&lat, 50)
	r.Metrics["sync_p99_ms"] = pctMs(&lat, 99)
	storeDiff(r, srv, before, after, e.p.HistorySyncs)

	// Cold load: restart the server on the same data; the first sync of
	// the record loads it (store reads, snapshot, worker).
	if err := e.restart(ctx, srv); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	a.Client().HTTP.CloseIdleConnections()
	a.Client().BaseURL, b.Client().BaseURL = srv.URL, srv.URL
	if err := benchmarks.Set(a, "typing", int64(-1)); err != nil {
		return err
	}
	s, err := benchmarks.Sync(ctx, a, true)
	if err != nil {
		return fmt.Errorf("cold sync: %w", err)
	}
	r.Metrics["cold_load_ms"] = float64(s.RTT) / float64(time.Millisecond)
	_ = bar.Add(1)
	if err := b.Sync(ctx); err != nil {
		return fmt.Errorf("final sync: %w", err)
	}
	if got, want := b.Heads(), a.Heads(); fmt.Sprint(got) != fmt.Sprint(want) {
		return fmt.Errorf("not converged: peers at %v and %v", got, want)
	}
	got, err := a.Client().Get(ctx, historyCollection, a.ID())
	if err != nil {
		return err
	}
	if fmt.Sprint(sortedStrings(got.Heads)) != fmt.Sprint(a.Heads()) {
		return fmt.Errorf("not converged: server at %v, peers at %v", got.Heads, a.Heads())
	}
	return nil
}
