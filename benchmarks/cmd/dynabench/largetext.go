package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/dynamerge/dynamerge/benchmarks"
	"github.com/dynamerge/dynamerge/client"
)

// Scenario 7, large text: records of a realistic size, side by side with
// automerge-repo (benchmarks/peer) doing the same work.
//
//   - paste: one change that pastes LargeTextChars characters (1,000,000)
//     into a note's empty text, then a new client's first pull of it.
//   - typing: two writers type LargeTextChanges changes (one character, or
//     one backspace, each; -large-text-changes) into one text at
//     LargeTextRate changes per second each, merging each other's work,
//     while an observer follows the record; then a new client's first pull
//     of it, and on dynamerge the same pull after a restart (cold).
//
// Push latency is the HTTP round trip of a push on dynamerge (each change
// is pushed at once); on automerge-repo, the time from a change to the
// sync server's heads covering it. Memory per op is the server's RSS growth
// from before the workload to its end, over the ops of history. The
// dynamerge side uses automerge-go as its client's editor, never inside
// the server; the peer's clients are Automerge JS 3.5.

const largeTextCollection = "texts"

// largeTextCompared are the metrics the peer's rows carry a ratio of
// (dynamerge ÷ automerge-repo).
var largeTextCompared = []string{"push_p50_ms", "push_p99_ms", "remote_p50_ms", "remote_p99_ms", "changes_per_s",
	"server_cpu_ms_per_change", "peak_rss_mb", "rss_growth_mb", "bytes_per_op", "first_pull_ms", "first_pull_bytes"}

func runLargeText(ctx context.Context, e *env) {
	dir := peerDir(e, "large-text")
	for _, variant := range []string{"paste", "typing"} {
		params := map[string]any{"chars": e.p.LargeTextChars}
		if variant == "typing" {
			params = map[string]any{"changes": e.p.LargeTextChanges, "writers": 2, "rate_per_writer": e.p.LargeTextRate}
		}
		var dm *Result
		for _, st := range e.stores(sysDynamerge) {
			if ctx.Err() != nil {
				return
			}
			start := time.Now()
			r := &Result{Scenario: "large-text", System: sysDynamerge, Store: st, Variant: variant, Params: params, Converged: true, Metrics: map[string]float64{}}
			if variant == "paste" {
				r.fail(largePaste(ctx, e, st, r))
			} else {
				r.fail(largeTyping(ctx, e, st, r))
			}
			perOp(r.Metrics)
			noteRate(r, r.Metrics["offered_per_s"])
			e.record(r, start)
			if st == storeBolt {
				dm = r
			}
		}
		if dir == "" || ctx.Err() != nil {
			continue
		}
		start := time.Now()
		pr := &Result{Scenario: "large-text", System: sysPeer, Store: storePeer, Variant: variant, Params: params, Converged: true, Metrics: map[string]float64{}}
		args := []string{"--workload", "paste", "--chars", strconv.Itoa(e.p.LargeTextChars)}
		total := 1
		if variant == "typing" {
			args = []string{"--workload", "typing", "--changes", strconv.Itoa(e.p.LargeTextChanges), "--rate", fmt.Sprint(e.p.LargeTextRate)}
			total = e.p.LargeTextChanges
		}
		m, err := peerRun(ctx, e, dir, "large-text automerge-repo "+variant, args, total)
		pr.fail(err)
		if m != nil {
			pr.Metrics = m
			perOp(pr.Metrics)
			noteRate(pr, pr.Metrics["offered_per_s"])
		}
		if dm != nil {
			addRatios(dm, pr, largeTextCompared)
			pr.Notes = append(pr.Notes, "ratio_<metric> = dynamerge (bbolt) ÷ automerge-repo, both measured in this run")
		}
		pr.Notes = append(pr.Notes,
			"push latency: from the change to the sync server's heads covering it (automerge-repo throttles its sync messages, 100 ms by design); first pull: a new Repo's find until it stands at the server's heads, and the WebSocket bytes it received",
			"save_bytes: Automerge.save of the record (Automerge JS 3.5)")
		e.record(pr, start)
	}
}

// perOp derives the server's memory per op of history from its RSS before
// and at the end of the workload.
func perOp(m map[string]float64) {
	idle, ok1 := m["idle_rss_mb"]
	end, ok2 := m["end_rss_mb"]
	if !ok1 || !ok2 || m["ops"] == 0 {
		return
	}
	m["rss_growth_mb"] = end - idle
	m["bytes_per_op"] = (end - idle) * (1 << 20) / m["ops"]
}

// clientOf returns a client of srv on the runner's shared connection pool.
func clientOf(srv *server) *client.Client {
	c := client.New(srv.URL)
	c.HTTP = srv.http
	return c
}

// largeClient returns a client of srv whose HTTP bodies are counted.
func largeClient(srv *server, sent, got *atomic.Int64) *client.Client {
	c := client.New(srv.URL)
	c.HTTP = &http.Client{Transport: countingTransport{next: srv.http.Transport, sent: sent, got: got}, Timeout: 10 * time.Minute}
	return c
}

// largeStart starts dynamerge on st and makes the record with an empty
// text, synced by one peer, as an app makes a note before anyone types.
func largeStart(ctx context.Context, e *env, st, prefix string) (*server, *client.Replica, error) {
	srv, err := e.startDynamerge(ctx, st)
	if err != nil {
		return nil, nil, err
	}
	p := client.NewReplica(clientOf(srv), largeTextCollection, fmt.Sprintf("%s-%d", prefix, e.seq.Add(1)))
	err = p.Doc().RootMap().Set("text", automerge.NewText(""))
	if err == nil {
		_, err = p.Commit("")
	}
	if err == nil {
		err = p.Sync(ctx)
	}
	if err != nil {
		_ = srv.Stop()
		return nil, nil, fmt.Errorf("make the record: %w", err)
	}
	return srv, p, nil
}

// firstPull is a new client's first pull of p's record: its round trip,
// the HTTP body bytes it received, and a check that the answer loads into
// a document standing at p's heads with p's text. prefix names the
// metrics.
func firstPull(ctx context.Context, srv *server, p *client.Replica, prefix string, r *Result) error {
	var sent, got atomic.Int64
	c := largeClient(srv, &sent, &got)
	start := time.Now()
	res, err := c.Sync(ctx, []client.Doc{{Collection: p.Collection(), ID: p.ID()}})
	rtt := time.Since(start)
	if err == nil && res[0].Err != nil {
		err = res[0].Err
	}
	if err != nil {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	r.Metrics[prefix+"_ms"] = benchmarks.Millis(rtt)
	r.Metrics[prefix+"_bytes"] = float64(got.Load())
	r.Metrics[prefix+"_automerge_bytes"] = float64(len(res[0].Changes))
	d := automerge.New()
	if err := d.LoadIncremental(res[0].Changes); err != nil {
		return fmt.Errorf("%s: load the answer: %w", prefix, err)
	}
	fresh := client.NewReplicaOf(c, p.Collection(), p.ID(), d)
	if got, want := fresh.Heads(), p.Heads(); !slices.Equal(got, want) {
		return fmt.Errorf("%s: not converged: new client at %v, writer at %v", prefix, got, want)
	}
	if got, want := textOf(fresh), textOf(p); got != want {
		return fmt.Errorf("%s: the new client's text (%d characters) differs from the writer's (%d)", prefix, len(got), len(want))
	}
	return nil
}

func textOf(p *client.Replica) string {
	s, _ := p.Doc().Path("text").Text().Get()
	return s
}

// endRSS records the server's memory at the end of the workload, a second
// after its last request (as peerRun does for the peer).
func endRSS(srv *server, r *Result) {
	time.Sleep(time.Second)
	if _, rss, err := srv.Usage(); err == nil {
		r.Metrics["end_rss_mb"] = float64(rss) / (1 << 20)
	}
	r.Metrics["peak_rss_mb"] = float64(srv.PeakRSS()) / (1 << 20)
}

func largePaste(ctx context.Context, e *env, st string, r *Result) error {
	srv, w, err := largeStart(ctx, e, st, "paste")
	if err != nil {
		return err
	}
	defer func() { _ = srv.Stop() }()
	bar := e.bar(2, "large-text "+st+" paste")
	defer bar.Finish()
	r.Metrics["idle_rss_mb"] = float64(srv.ResetPeak()) / (1 << 20)
	text := words(rand.New(rand.NewPCG(e.o.seed, 7000)), e.p.LargeTextChars)
	if err := w.Doc().Path("text").Text().Insert(0, text); err != nil {
		return err
	}
	c, err := w.Commit("")
	if err != nil {
		return err
	}
	size := len(c.Save())
	s, err := benchmarks.Sync(ctx, w, true)
	if err != nil {
		return fmt.Errorf("push the paste: %w", err)
	}
	_ = bar.Add(1)
	ms := benchmarks.Millis(s.RTT)
	r.Metrics["push_p50_ms"], r.Metrics["push_p99_ms"] = ms, ms
	r.Metrics["change_bytes"] = float64(size)
	r.Metrics["changes"], r.Metrics["ops"] = 1, float64(len(text))
	if err := firstPull(ctx, srv, w, "first_pull", r); err != nil {
		return err
	}
	_ = bar.Add(1)
	r.Metrics["save_bytes"] = float64(len(w.Doc().Save()))
	endRSS(srv, r)
	return nil
}

func largeTyping(ctx context.Context, e *env, st string, r *Result) error {
	srv, base, err := largeStart(ctx, e, st, "typing")
	if err != nil {
		return err
	}
	defer func() { _ = srv.Stop() }()
	ws := make([]*client.Replica, 2)
	for i := range ws {
		if ws[i], err = base.Fork(clientOf(srv)); err != nil {
			return err
		}
	}
	obs, err := base.Fork(clientOf(srv))
	if err != nil {
		return err
	}
	clock := newRemoteClock()
	stopObs, err := follow(ctx, obs, clock)
	if err != nil {
		return err
	}
	defer func() { _ = stopObs() }()

	n := e.p.LargeTextChanges
	bar := e.bar(n, "large-text "+st+" typing")
	r.Metrics["idle_rss_mb"] = float64(srv.ResetPeak()) / (1 << 20)
	before, err := srv.usage(ctx)
	if err != nil {
		return err
	}
	period := time.Duration(float64(time.Second) / e.p.LargeTextRate)
	var (
		push    benchmarks.Latencies
		changes atomic.Int64
		wg      sync.WaitGroup
	)
	errs := make([]error, len(ws))
	start := time.Now()
	for i, w := range ws {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(e.o.seed, uint64(7100+i)))
			typ := newTypist(rng)
			quota := n/len(ws) + btoi(i < n%len(ws))
			time.Sleep(time.Duration(rng.Int64N(int64(period))))
			t := time.NewTicker(period)
			defer t.Stop()
			for k := 0; k < quota && ctx.Err() == nil; k++ {
				rtt, err := typeAndPush(ctx, w, clock, true, func(txt *automerge.Text) error {
					pos, del, ins := typ(txt.Len())
					if del > 0 {
						return txt.Delete(pos, del)
					}
					return txt.Insert(pos, ins)
				})
				if err != nil {
					errs[i] = err
					return
				}
				push.Add(rtt)
				changes.Add(1)
				_ = bar.Add(1)
				<-t.C
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	_ = bar.Finish()
	if err := firstErr(errs...); err != nil {
		return err
	}
	after, err := srv.usage(ctx)
	if err != nil {
		return err
	}
	if err := stopObs(); err != nil {
		return err
	}
	if err := converge(ctx, append(slices.Clone(ws), obs), obs, clock); err != nil {
		return err
	}
	made := int(changes.Load())
	remote := clock.latencies()
	r.Metrics["changes"], r.Metrics["ops"] = float64(made), float64(made)
	r.Metrics["changes_per_s"] = float64(made) / wall.Seconds()
	r.Metrics["offered_per_s"] = float64(len(ws)) * e.p.LargeTextRate
	r.Metrics["push_p50_ms"] = pctMs(&push, 50)
	r.Metrics["push_p99_ms"] = pctMs(&push, 99)
	r.Metrics["observed"] = float64(remote.Len())
	r.Metrics["remote_p50_ms"] = pctMs(remote, 50)
	r.Metrics["remote_p99_ms"] = pctMs(remote, 99)
	r.Metrics["text_chars"] = float64(len(textOf(obs)))
	storeDiff(r, srv, before, after, made)
	if err := firstPull(ctx, srv, obs, "first_pull", r); err != nil {
		return err
	}
	r.Metrics["save_bytes"] = float64(len(obs.Doc().Save()))
	endRSS(srv, r)
	r.Notes = append(r.Notes, "push latency: the HTTP round trip of a push; each writer pushes every change at once and merges the other writer's changes from the answer",
		"first_pull_bytes: the HTTP body (JSON, changes in base64); first_pull_automerge_bytes: the Automerge bytes in it; save_bytes: automerge-go's Save of the same document")

	// Cold: the same first pull after a restart, nothing in memory.
	if err := e.restart(ctx, srv); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	return firstPull(ctx, srv, obs, "cold_first_pull", r)
}

// words returns n characters of prose: letters and spaces.
func words(rng *rand.Rand, n int) string {
	var b strings.Builder
	b.Grow(n)
	for range n {
		b.WriteByte(letterOrSpace(rng))
	}
	return b.String()
}

func letterOrSpace(rng *rand.Rand) byte {
	if rng.IntN(6) == 0 {
		return ' '
	}
	return byte('a' + rng.IntN(26))
}

// newTypist returns one writer's cursor: mostly a character typed at the
// cursor, sometimes a backspace, now and then a jump to another place in
// the text (the rules of typist in benchmarks/peer/harness.mjs). Given the
// text's length, it returns the edit: delete del characters at pos, or
// insert ins there.
func newTypist(rng *rand.Rand) func(n int) (pos, del int, ins string) {
	cursor := -1
	return func(n int) (int, int, string) {
		if cursor < 0 || cursor > n || rng.Float64() < 0.01 {
			cursor = rng.IntN(n + 1)
		}
		if cursor > 0 && rng.Float64() < 0.05 {
			cursor--
			return cursor, 1, ""
		}
		cursor++
		return cursor - 1, 0, string(letterOrSpace(rng))
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
