package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/dynamerge/dynamerge/benchmarks"
	"github.com/dynamerge/dynamerge/client"
)

// Scenario 5, offline storm: many clients, each with a pile of offline
// changes, reconnect within a few seconds. Measured: the time until every
// replica holds every change, the bytes on the wire against the raw change
// bytes the clients made, and the retries the server's back-pressure asked
// for.

const stormCollection = "storm"

func runStorm(ctx context.Context, e *env) {
	for _, st := range e.stores(sysDynamerge) {
		if ctx.Err() != nil {
			return
		}
		start := time.Now()
		r := &Result{Scenario: "offline-storm", System: sysDynamerge, Store: st, Converged: true, Metrics: map[string]float64{},
			Params: map[string]any{"clients": e.p.StormClients, "records": e.p.StormRecords, "min_changes": e.p.StormMinChanges,
				"max_changes": e.p.StormMaxChanges, "window_s": e.p.StormWindow.Seconds()}}
		r.fail(storm(ctx, e, st, r))
		e.record(r, start)
	}
}

// countingTransport counts the HTTP body bytes that cross the wire both
// ways (headers are left out: they depend on the HTTP stack, not the
// protocol).
type countingTransport struct {
	next      http.RoundTripper
	sent, got *atomic.Int64
}

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.ContentLength > 0 {
		t.sent.Add(req.ContentLength)
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &countingBody{ReadCloser: resp.Body, n: t.got}
	return resp, nil
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// syncRetrying syncs rp until it succeeds, waiting as the server asks on
// 429 and 503 and backing off on transport errors; it returns the retries.
func syncRetrying(ctx context.Context, rp *client.Replica) (int, error) {
	backoff := 50 * time.Millisecond
	for retries := 0; ; retries++ {
		err := rp.Sync(ctx)
		if err == nil {
			return retries, nil
		}
		var ce *client.Error
		if errors.As(err, &ce) && !ce.Temporary() {
			return retries, err
		}
		if retries == 30 || ctx.Err() != nil {
			return retries, fmt.Errorf("giving up after %d retries: %w", retries, err)
		}
		wait := backoff
		if ce != nil && ce.RetryAfter > wait {
			wait = ce.RetryAfter
		}
		time.Sleep(wait)
		backoff = min(2*backoff, 2*time.Second)
	}
}

func storm(ctx context.Context, e *env, st string, r *Result) error {
	srv, err := e.startDynamerge(ctx, st)
	if err != nil {
		return err
	}
	defer func() { _ = srv.Stop() }()
	p := e.p
	var sent, got atomic.Int64
	reps := make([]*client.Replica, p.StormClients)
	for i := range reps {
		c := client.New(srv.URL)
		c.Binary = e.o.binary
		c.HTTP = &http.Client{Transport: countingTransport{next: srv.http.Transport, sent: &sent, got: &got}, Timeout: 2 * time.Minute}
		reps[i] = client.NewReplica(c, stormCollection, recordID(i%p.StormRecords))
		if err := reps[i].Sync(ctx); err != nil {
			return fmt.Errorf("client %d first pull: %w", i, err)
		}
	}
	// Offline: every client piles up its changes.
	rng := rand.New(rand.NewPCG(e.o.seed, 5))
	var raw, changes int
	ownRaw := make([]int, len(reps)) // each client's own change bytes
	for i, rp := range reps {
		d := rp.Doc()
		heads := d.Heads()
		n := p.StormMinChanges + rng.IntN(p.StormMaxChanges-p.StormMinChanges+1)
		for k := range n {
			if err := d.Path(fmt.Sprintf("c%d", i)).Set(int64(k)); err != nil {
				return err
			}
			if _, err := d.Commit(""); err != nil {
				return err
			}
		}
		chs, err := d.Changes(heads...)
		if err != nil {
			return err
		}
		ownRaw[i] = len(automerge.SaveChanges(chs))
		raw += ownRaw[i]
		changes += n
	}
	offsets := make([]time.Duration, len(reps))
	for i := range offsets {
		offsets[i] = time.Duration(rng.Int64N(int64(p.StormWindow)))
	}
	sent.Store(0)
	got.Store(0)
	bar := e.bar(2*len(reps), "offline-storm dynamerge/"+st)
	before, err := srv.usage(ctx)
	if err != nil {
		return err
	}
	srv.ResetPeak()
	var (
		wg      sync.WaitGroup
		retries atomic.Int64
		pulled  atomic.Int64 // change bytes the clients received
		mu      sync.Mutex
		lat     benchmarks.Latencies
	)
	errs := make([]error, len(reps))
	t0 := time.Now()
	for i, rp := range reps {
		wg.Go(func() {
			time.Sleep(offsets[i])
			ts := time.Now()
			n, err := syncRetrying(ctx, rp)
			retries.Add(int64(n))
			if err != nil {
				errs[i] = fmt.Errorf("client %d: %w", i, err)
				return
			}
			pulled.Add(int64(len(rp.LastSync().Pulled)))
			mu.Lock()
			lat.Add(time.Since(ts))
			mu.Unlock()
			_ = bar.Add(1)
		})
	}
	wg.Wait()
	allPushed := time.Since(t0)
	if err := errors.Join(errs...); err != nil {
		_ = bar.Finish()
		return err
	}
	// Every client pulls once more: then every replica holds every change
	// of its record.
	for i, rp := range reps {
		wg.Go(func() {
			n, err := syncRetrying(ctx, rp)
			retries.Add(int64(n))
			errs[i] = err
			if err == nil {
				pulled.Add(int64(len(rp.LastSync().Pulled)))
			}
			_ = bar.Add(1)
		})
	}
	wg.Wait()
	converge := time.Since(t0)
	_ = bar.Finish()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	after, err := srv.usage(ctx)
	if err != nil {
		return err
	}
	r.Metrics["changes"] = float64(changes)
	r.Metrics["all_pushed_s"] = allPushed.Seconds()
	r.Metrics["converge_s"] = converge.Seconds()
	r.Metrics["raw_change_bytes"] = float64(raw)
	r.Metrics["wire_bytes"] = float64(sent.Load() + got.Load())
	r.Metrics["wire_ratio"] = float64(sent.Load()+got.Load()) / float64(raw)
	// Where the bytes go: each client must receive the changes the other
	// clients of its record made (needed_pull_bytes, the fan-in: with k
	// clients per record, k-1 times the raw bytes); pulled_change_bytes is
	// what the server sent (more means it resent what a client had); the
	// rest of the wire is JSON, base64 and heads, less what gzip saves.
	group := map[string]int{}
	for i, rp := range reps {
		group[rp.ID()] += ownRaw[i]
	}
	needed := 0
	for i, rp := range reps {
		needed += group[rp.ID()] - ownRaw[i]
	}
	r.Metrics["needed_pull_bytes"] = float64(needed)
	r.Metrics["pulled_change_bytes"] = float64(pulled.Load())
	if e.o.binary {
		r.Variant = "binary"
	}
	r.Metrics["sent_wire_bytes"] = float64(sent.Load())
	r.Metrics["received_wire_bytes"] = float64(got.Load())
	r.Metrics["wire_per_change_byte"] = float64(sent.Load()+got.Load()) / float64(int64(raw)+pulled.Load())
	r.Metrics["retries"] = float64(retries.Load())
	r.Metrics["reconnect_sync_p50_ms"] = pctMs(&lat, 50)
	r.Metrics["reconnect_sync_p99_ms"] = pctMs(&lat, 99)
	r.Metrics["peak_rss_mb"] = float64(srv.PeakRSS()) / (1 << 20)
	storeDiff(r, srv, before, after, changes)
	r.Notes = append(r.Notes, "wire_bytes counts HTTP bodies both ways as sent (JSON with base64 change bytes, gzipped where the client and server use it; each client pulling the other clients' changes of its record); raw_change_bytes is each client's own changes once; needed_pull_bytes what the clients must receive of the others' changes, pulled_change_bytes what the server sent them; wire_per_change_byte = wire_bytes ÷ (raw + pulled change bytes)")

	// Convergence check against the server's view.
	server := map[string][]string{}
	for i, rp := range reps {
		want, ok := server[rp.ID()]
		if !ok {
			g, err := client.New(srv.URL).Get(ctx, stormCollection, rp.ID())
			if err != nil {
				return err
			}
			want = sortedStrings(g.Heads)
			server[rp.ID()] = want
		}
		if h := sortedStrings(rp.Heads()); !slices.Equal(h, want) {
			return fmt.Errorf("not converged: client %d heads %v, server %v", i, h, want)
		}
	}
	return nil
}
