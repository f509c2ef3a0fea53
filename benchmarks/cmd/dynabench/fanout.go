package main

import (
	"context"
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
	"github.com/dynamerge/dynamerge/crdt"
)

// Scenario 8, fan-out: C clients and R records; every client follows every
// record (one event stream each) and writes the records it owns (record r
// belongs to client r mod C) at a fixed rate, so every change goes to the
// C-1 other clients. A receiver applies the changes an event carries when
// it holds their dependencies and otherwise pulls the record, as the
// browser library and client.Replica.ApplyEvents do. Measured: deliveries
// (a change reaching one receiver) per second, per-receiver latency from
// the change being made to the receiver holding it, and the server's CPU
// per delivery and per change. The receivers keep change hashes only (no
// Automerge document), so that the client side, on the same cores, costs
// little next to the server.

const fanoutCollection = "fanout"

func runFanout(ctx context.Context, e *env) {
	for _, st := range e.stores(sysDynamerge) {
		if ctx.Err() != nil {
			return
		}
		start := time.Now()
		r := fanoutResult(e, sysDynamerge, st)
		r.fail(fanout(ctx, e, st, r))
		e.record(r, start)
	}
	if ctx.Err() != nil {
		return
	}
	dir := peerDir(e, "fanout")
	if dir == "" {
		return
	}
	start := time.Now()
	pr := fanoutResult(e, sysPeer, storePeer)
	m, err := peerRun(ctx, e, dir, "fanout automerge-repo", []string{"--workload", "fanout",
		"--clients", fmt.Sprint(e.p.FanoutClients), "--records", fmt.Sprint(e.p.FanoutRecords),
		"--rate", fmt.Sprint(e.p.FanoutRate), "--seconds", fmt.Sprint(e.p.FanoutDuration.Seconds())},
		int(e.p.FanoutDuration.Seconds()*10))
	pr.fail(err)
	for k, v := range m {
		pr.Metrics[k] = v
	}
	if d := pr.Metrics["deliveries"]; d > 0 {
		pr.Metrics["server_cpu_ms_per_delivery"] = pr.Metrics["server_cpu_s"] * 1000 / d
	}
	for _, x := range e.run.Results {
		if x.Scenario == "fanout" && x.System == sysDynamerge && x.Store == storeBolt {
			addRatios(x, pr, []string{"deliveries_per_s", "remote_p50_ms", "remote_p99_ms", "server_cpu_ms_per_delivery", "server_cpu_ms_per_change", "peak_rss_mb"})
		}
	}
	pr.Notes = append(pr.Notes, "ratio_<metric> = dynamerge (bbolt) ÷ automerge-repo, both measured in this run",
		"automerge-repo clients hold every record as an Automerge document and merge every change (the sync server forwards each to every client); its sync messages are throttled by design, which shows in its latencies")
	e.record(pr, start)
}

func fanoutResult(e *env, system, store string) *Result {
	return &Result{Scenario: "fanout", System: system, Store: store, Converged: true, Metrics: map[string]float64{},
		Params: map[string]any{"clients": e.p.FanoutClients, "records": e.p.FanoutRecords,
			"rate_per_client": e.p.FanoutRate, "seconds": e.p.FanoutDuration.Seconds()}}
}

// held is what a receiver holds of one record: its change hashes and heads.
type held struct {
	hashes map[crdt.Hash]bool
	heads  map[crdt.Hash]bool
}

func newHeld() *held { return &held{hashes: map[crdt.Hash]bool{}, heads: map[crdt.Hash]bool{}} }

// has tells whether every hash is held.
func (h *held) has(hs []crdt.Hash) bool {
	for _, x := range hs {
		if !h.hashes[x] {
			return false
		}
	}
	return true
}

// add takes changes in (dependencies first, as the server sends them) and
// returns the hashes that were new.
func (h *held) add(chs []crdt.Change) []crdt.Hash {
	var fresh []crdt.Hash
	for _, c := range chs {
		if h.hashes[c.Hash] {
			continue
		}
		h.hashes[c.Hash] = true
		for _, d := range c.Deps {
			delete(h.heads, d)
		}
		h.heads[c.Hash] = true
		fresh = append(fresh, c.Hash)
	}
	return fresh
}

func (h *held) headList() []string {
	return crdt.HashStrings(slices.SortedFunc(maps.Keys(h.heads), func(a, b crdt.Hash) int { return slices.Compare(a[:], b[:]) }))
}

// fanoutStats are the counters every receiver adds to.
type fanoutStats struct {
	lat        benchmarks.Latencies
	deliveries atomic.Int64
	inline     atomic.Int64 // events applied from their changes
	pulls      atomic.Int64 // events answered with a pull
}

// madeClock is when each change was made.
type madeClock struct {
	mu sync.Mutex
	at map[crdt.Hash]time.Time
}

func (m *madeClock) set(h crdt.Hash, t time.Time) {
	m.mu.Lock()
	m.at[h] = t
	m.mu.Unlock()
}

func (m *madeClock) get(h crdt.Hash) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.at[h]
	return t, ok
}

// receiver follows every record for one client.
type receiver struct {
	c    *client.Client
	own  map[string]bool
	recs map[string]*held
}

// pull syncs ids from the server and takes in what it sends.
func (rc *receiver) pull(ctx context.Context, ids []string, made *madeClock, st *fanoutStats) error {
	res, err := rc.c.Sync(ctx, docsOf(ids, rc))
	if err != nil {
		return err
	}
	now := time.Now()
	for i, r := range res {
		if r.Err != nil {
			return r.Err
		}
		if len(r.Changes) == 0 {
			continue
		}
		chs, err := crdt.Split(r.Changes)
		if err != nil {
			return fmt.Errorf("pull %s: %w", ids[i], err)
		}
		rc.deliver(rc.recs[ids[i]].add(chs), now, made, st)
	}
	return nil
}

func (rc *receiver) deliver(fresh []crdt.Hash, now time.Time, made *madeClock, st *fanoutStats) {
	if st == nil {
		return
	}
	for _, h := range fresh {
		if t, ok := made.get(h); ok {
			st.lat.Add(now.Sub(t))
			st.deliveries.Add(1)
		}
	}
}

// follow handles events until ctx ends.
func (rc *receiver) follow(ctx context.Context, events <-chan client.Event, made *madeClock, st *fanoutStats) error {
	for {
		var ev client.Event
		var ok bool
		select {
		case <-ctx.Done():
			return nil
		case ev, ok = <-events:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("event stream ended early")
			}
		}
		h := rc.recs[ev.ID]
		if h == nil || rc.own[ev.ID] {
			continue
		}
		heads, err := crdt.ParseHashes(ev.Heads)
		if err != nil {
			return err
		}
		if h.has(heads) {
			continue
		}
		if in, ok, err := client.EventChanges(ev); err == nil && ok {
			chs, err := crdt.Split(in.Changes)
			if err != nil {
				return err
			}
			var deps []crdt.Hash
			for _, d := range in.Deps {
				deps = append(deps, crdt.Hash(d))
			}
			if h.has(deps) {
				st.inline.Add(1)
				rc.deliver(h.add(chs), time.Now(), made, st)
				if h.has(heads) {
					continue
				}
			}
		}
		st.pulls.Add(1)
		if err := rc.pull(ctx, []string{ev.ID}, made, st); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("pull %s: %w", ev.ID, err)
		}
	}
}

func fanout(ctx context.Context, e *env, st string, r *Result) error {
	srv, err := e.startDynamerge(ctx, st)
	if err != nil {
		return err
	}
	defer func() { _ = srv.Stop() }()
	p := e.p
	ids := make([]string, p.FanoutRecords)
	for i := range ids {
		ids[i] = fmt.Sprintf("f-%d-%d", e.seq.Add(1), i)
	}
	newClient := func() *client.Client {
		c := client.New(srv.URL)
		c.HTTP = srv.http
		return c
	}
	// Each record is made by its owner, the only one who writes it.
	writers := make([][]*client.Replica, p.FanoutClients)
	for i, id := range ids {
		owner := i % p.FanoutClients
		w := client.NewReplica(newClient(), fanoutCollection, id)
		if err := benchmarks.Set(w, "n", int64(0)); err != nil {
			return err
		}
		if err := w.Push(ctx); err != nil {
			return err
		}
		writers[owner] = append(writers[owner], w)
	}
	made := &madeClock{at: map[crdt.Hash]time.Time{}}
	var stats fanoutStats
	rcs := make([]*receiver, p.FanoutClients)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	var follows sync.WaitGroup
	ferrs := make([]error, len(rcs))
	for i := range rcs {
		rc := &receiver{c: newClient(), own: map[string]bool{}, recs: map[string]*held{}}
		for _, w := range writers[i] {
			rc.own[w.ID()] = true
		}
		for _, id := range ids {
			rc.recs[id] = newHeld()
		}
		if err := rc.pull(ctx, ids, made, nil); err != nil {
			return fmt.Errorf("client %d first pull: %w", i, err)
		}
		// The stream lasts the run: no whole-request timeout.
		ec := *rc.c
		hc := *srv.http
		hc.Timeout = 0
		ec.HTTP = &hc
		events, err := ec.Events(sctx, fanoutCollection)
		if err != nil {
			return fmt.Errorf("client %d subscribe: %w", i, err)
		}
		rcs[i] = rc
		follows.Go(func() { ferrs[i] = rc.follow(sctx, events, made, &stats) })
	}

	bar := e.bar(int(p.FanoutDuration.Seconds()*10), fmt.Sprintf("fanout %s c=%d r=%d", st, p.FanoutClients, p.FanoutRecords))
	before, err := srv.usage(ctx)
	if err != nil {
		return err
	}
	startAt := time.Now()
	deadline := startAt.Add(p.FanoutDuration)
	period := time.Duration(float64(time.Second) / p.FanoutRate)
	var changes atomic.Int64
	var wg sync.WaitGroup
	werrs := make([]error, p.FanoutClients)
	for i := range writers {
		if len(writers[i]) == 0 {
			continue
		}
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(e.o.seed, uint64(2000+i)))
			time.Sleep(time.Duration(rng.Int64N(int64(period))))
			t := time.NewTicker(period)
			defer t.Stop()
			for n := int64(1); time.Now().Before(deadline) && ctx.Err() == nil; n++ {
				w := writers[i][rng.IntN(len(writers[i]))]
				if err := w.Doc().Path("n").Set(n); err != nil {
					werrs[i] = err
					return
				}
				c, err := w.Commit("")
				if err != nil {
					werrs[i] = err
					return
				}
				made.set(crdt.Hash(c.Hash()), time.Now())
				if err := w.Push(ctx); err != nil {
					werrs[i] = err
					return
				}
				changes.Add(1)
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
	if err := errors.Join(werrs...); err != nil {
		return err
	}
	// Let the last events arrive: every change reaches C-1 receivers.
	want := changes.Load() * int64(p.FanoutClients-1)
	for wait := time.Now().Add(10 * time.Second); stats.deliveries.Load() < want && time.Now().Before(wait); {
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(startAt)
	after, err := srv.usage(ctx)
	if err != nil {
		return err
	}
	stop()
	follows.Wait()
	if err := errors.Join(ferrs...); err != nil {
		return err
	}

	n := float64(changes.Load())
	d := float64(stats.deliveries.Load())
	r.Metrics["changes"] = n
	r.Metrics["changes_per_s"] = n / p.FanoutDuration.Seconds()
	r.Metrics["deliveries"] = d
	r.Metrics["deliveries_per_s"] = d / elapsed.Seconds()
	r.Metrics["expected_deliveries"] = float64(want)
	r.Metrics["inline_applied"] = float64(stats.inline.Load())
	r.Metrics["pulls"] = float64(stats.pulls.Load())
	r.Metrics["remote_p50_ms"] = pctMs(&stats.lat, 50)
	r.Metrics["remote_p99_ms"] = pctMs(&stats.lat, 99)
	storeDiff(r, srv, before, after, int(n))
	if d > 0 {
		r.Metrics["server_cpu_ms_per_delivery"] = r.Metrics["server_cpu_s"] * 1000 / d
	}
	r.Metrics["peak_rss_mb"] = float64(srv.PeakRSS()) / (1 << 20)
	if d < float64(want) {
		r.Notes = append(r.Notes, fmt.Sprintf("%.0f of %d deliveries within the run and 10 s after; the final pull brought the rest", d, want))
	}
	r.Notes = append(r.Notes, "the receivers run in the benchmark process, on the same cores as the server; server CPU is the server process alone")

	// Convergence: every receiver pulls every record and must then stand at
	// the server's heads, holding every change made.
	for i, rc := range rcs {
		if err := rc.pull(ctx, ids, made, nil); err != nil {
			return fmt.Errorf("client %d final pull: %w", i, err)
		}
		res, err := rc.c.Sync(ctx, docsOf(ids, rc))
		if err != nil {
			return err
		}
		for j, x := range res {
			if got, want := rc.recs[ids[j]].headList(), slices.Sorted(slices.Values(x.Heads)); !slices.Equal(got, want) {
				return fmt.Errorf("client %d record %s: heads %v, server %v", i, ids[j], got, want)
			}
		}
	}
	made.mu.Lock()
	defer made.mu.Unlock()
	for h := range made.at {
		for i, rc := range rcs {
			found := false
			for _, x := range rc.recs {
				if x.hashes[h] {
					found = true
					break
				}
			}
			if !found {
				return fmt.Errorf("client %d lacks change %s", i, h)
			}
		}
	}
	return nil
}

// docsOf is a pure pull of ids at rc's heads.
func docsOf(ids []string, rc *receiver) []client.Doc {
	docs := make([]client.Doc, len(ids))
	for i, id := range ids {
		docs[i] = client.Doc{Collection: fanoutCollection, ID: id, Have: rc.recs[id].headList()}
	}
	return docs
}
