package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Scenario 6, peer comparison: the breadth and hot-record workloads against
// the Automerge project's own sync server (automerge-repo with its
// WebSocket adapter and Node file system storage, benchmarks/peer/
// server.mjs), driven by an equivalent Node client harness
// (benchmarks/peer/harness.mjs) with the same sizes. The dynamerge side is
// the bbolt run of the same workload in this run (made here when its own
// scenario was not selected). Each peer row carries ratio_<metric> =
// dynamerge ÷ peer.

const (
	sysPeer   = "automerge-repo"
	storePeer = "nodefs"
)

// comparedMetrics are the unified metrics of the comparison, and the
// dynamerge metric each comes from per workload.
var comparedMetrics = []string{"changes_per_s", "p50_ms", "p99_ms", "server_cpu_ms_per_change", "peak_rss_mb", "store_writes_per_change"}

func unify(workload string, m map[string]float64) map[string]float64 {
	lat := "sync_"
	if workload != "breadth" {
		lat = "remote_"
	}
	out := map[string]float64{}
	for k, v := range map[string]string{
		"changes_per_s": "changes_per_s", "p50_ms": lat + "p50_ms", "p99_ms": lat + "p99_ms",
		"server_cpu_ms_per_change": "server_cpu_ms_per_change", "peak_rss_mb": "peak_rss_mb",
		"store_writes_per_change": "store_writes_per_change", "changes": "changes",
	} {
		if x, ok := m[v]; ok {
			out[k] = x
		}
	}
	return out
}

// peerDir returns the folder of the peer's server and harness, or "" with
// a note when node or its packages are missing.
func peerDir(e *env, scenario string) string {
	dir := filepath.Join(e.o.repo, "benchmarks", "peer")
	if _, err := exec.LookPath("node"); err != nil {
		e.note(scenario + ": automerge-repo skipped: node is not installed")
		return ""
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@automerge", "automerge-repo")); err != nil {
		e.note(scenario + ": automerge-repo skipped: benchmarks/peer has no node_modules (run scripts/npm-install.sh benchmarks/peer, which make bench does)")
		return ""
	}
	return dir
}

// addRatios sets ratio_<metric> = dynamerge ÷ peer on the peer's row for
// each metric both rows have.
func addRatios(dm, pr *Result, metrics []string) {
	for _, k := range metrics {
		d, ok1 := dm.Metrics[k]
		p, ok2 := pr.Metrics[k]
		if ok1 && ok2 && p != 0 {
			pr.Metrics["ratio_"+k] = d / p
		}
	}
}

func runCompare(ctx context.Context, e *env) {
	peerDir := peerDir(e, "peer-comparison")
	if peerDir == "" {
		return
	}
	type workload struct {
		name    string
		writers int // 0 for breadth
	}
	wls := []workload{{name: "breadth"}}
	for _, w := range e.p.HotWriters {
		wls = append(wls, workload{name: fmt.Sprintf("hot w=%d", w), writers: w})
	}
	for _, wl := range wls {
		if ctx.Err() != nil {
			return
		}
		// The dynamerge side: this run's bbolt result of the same workload.
		var dm *Result
		for _, x := range e.run.Results {
			if x.System == sysDynamerge && x.Store == storeBolt &&
				((wl.writers == 0 && x.Scenario == "breadth") ||
					(x.Scenario == "hot-record" && x.Variant == fmt.Sprintf("w=%d group-commit", wl.writers))) {
				dm = x
			}
		}
		if dm == nil {
			start := time.Now()
			if wl.writers == 0 {
				dm = &Result{Scenario: "breadth", System: sysDynamerge, Store: storeBolt, Converged: true, Metrics: map[string]float64{}}
				dm.fail(breadth(ctx, e, storeBolt, dm))
			} else {
				dm = &Result{Scenario: "hot-record", System: sysDynamerge, Store: storeBolt, Variant: fmt.Sprintf("w=%d group-commit", wl.writers), Converged: true, Metrics: map[string]float64{}}
				dm.fail(hot(ctx, e, storeBolt, wl.writers, true, dm))
			}
			dm.Seconds = time.Since(start).Seconds()
		}
		params := map[string]any{"workload": wl.name}
		if wl.writers == 0 {
			params["clients"], params["records"], params["ops"] = e.p.BreadthClients, e.p.BreadthRecords, e.p.BreadthOps
		} else {
			params["writers"], params["rate_per_writer"], params["seconds"] = wl.writers, e.p.HotRate, e.p.HotDuration.Seconds()
		}
		dmRow := &Result{Scenario: "peer-comparison", System: sysDynamerge, Store: storeBolt, Variant: wl.name, Params: params,
			Metrics: unify(wl.name, dm.Metrics), Converged: dm.Converged, Failure: dm.Failure, Seconds: dm.Seconds,
			Notes: []string{fmt.Sprintf("the %s/%s run of this suite", dm.Scenario, label(dm))}}
		e.run.Results = append(e.run.Results, dmRow)

		start := time.Now()
		pr := &Result{Scenario: "peer-comparison", System: sysPeer, Store: storePeer, Variant: wl.name, Params: params, Converged: true, Metrics: map[string]float64{}}
		var args []string
		total := 0
		if wl.writers == 0 {
			args = []string{"--workload", "breadth", "--clients", strconv.Itoa(e.p.BreadthClients), "--records", strconv.Itoa(e.p.BreadthRecords), "--ops", strconv.Itoa(e.p.BreadthOps), "--open", strconv.Itoa(e.p.BreadthOpen)}
			total = e.p.BreadthOps
		} else {
			args = []string{"--workload", "hot", "--writers", strconv.Itoa(wl.writers), "--rate", fmt.Sprint(e.p.HotRate), "--seconds", fmt.Sprint(e.p.HotDuration.Seconds())}
			total = int(e.p.HotDuration.Seconds() * 10)
		}
		m, err := peerRun(ctx, e, peerDir, "peer-comparison automerge-repo "+wl.name, args, total)
		pr.fail(err)
		pr.Metrics = unify(wl.name, m)
		addRatios(dmRow, pr, comparedMetrics)
		if wl.writers > 0 {
			offered := float64(wl.writers) * e.p.HotRate
			noteRate(dmRow, offered)
			noteRate(pr, offered)
		}
		pr.Notes = append(pr.Notes, "ratio_<metric> = dynamerge ÷ automerge-repo, both measured in this run",
			"automerge-repo clients merge every other client's change as it arrives (the sync server forwards them all); the dynamerge writers only push, as in the hot-record scenario",
			"the peer acknowledges a change when the sync server reports heads equal to the client's (automerge-repo's remote-heads); its sync messages are throttled by design, which shows in its latencies")
		e.record(pr, start)
	}
}

// noteRate notes on row when it made less than 90 % of the changes per
// second offered.
func noteRate(row *Result, offered float64) {
	if got, ok := row.Metrics["changes_per_s"]; ok && got < 0.9*offered {
		row.Notes = append(row.Notes, fmt.Sprintf("%s made %.1f changes/s of the %.0f offered: its client side (on the same shared cores) could not keep up, and its latencies include that backlog", row.System, got, offered))
	}
}

// peerRun starts server.mjs, runs harness.mjs with args (the workload and
// its sizes; total is the progress it counts to) and returns the harness's
// metrics plus the server's CPU, storage writes and memory: idle before the
// workload, peak, and at its end (end_rss_mb, a second after the harness
// finished, its clients gone and the documents still held).
func peerRun(ctx context.Context, e *env, dir, desc string, args []string, total int) (map[string]float64, error) {
	n := e.seq.Add(1)
	data := filepath.Join(e.work, fmt.Sprintf("peer-%d", n))
	s := &server{system: sysPeer, store: storePeer, http: newHTTPClient()}
	p, err := startProc(ctx, fmt.Sprintf("peer-%d", n), "node", []string{filepath.Join(dir, "server.mjs"), "--dir", data}, nil,
		"--addr", "/healthz", filepath.Join(e.work, fmt.Sprintf("peer-%d.log", n)))
	if err != nil {
		return nil, err
	}
	s.proc = p
	defer func() { _ = s.Stop() }()
	statsBefore, err := peerStats(ctx, s)
	if err != nil {
		return nil, err
	}
	args = append([]string{filepath.Join(dir, "harness.mjs"), "--url", "ws" + strings.TrimPrefix(s.URL, "http"), "--seed", strconv.FormatUint(e.o.seed%1_000_000, 10)}, args...)
	workload := args[slices.Index(args, "--workload")+1]
	bar := e.bar(total, desc)
	cpu0, _, err := s.Usage()
	if err != nil {
		return nil, err
	}
	idle := s.ResetPeak()
	// The peer's cost grows faster than ours with the number of documents
	// (the breadth setup alone creates every record through one repo):
	// bound it, so that a run ends and says so instead of hanging.
	hctx, cancel := context.WithTimeout(ctx, e.o.peerTimeout)
	defer cancel()
	cmd := exec.CommandContext(hctx, "node", args...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("node harness: %w", err)
	}
	var errTail []string
	progress := 0
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "progress "); ok {
			if k, err := strconv.Atoi(v); err == nil {
				progress = k
				_ = bar.Set(min(k, total))
			}
			continue
		}
		errTail = append(errTail, line)
		if len(errTail) > 20 {
			errTail = errTail[1:]
		}
	}
	werr := cmd.Wait()
	_ = bar.Finish()
	if hctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
		if progress == 0 {
			return nil, fmt.Errorf("automerge-repo did not finish the %s setup within -peer-timeout %v (stopped before its first timed change)", workload, e.o.peerTimeout)
		}
		return nil, fmt.Errorf("automerge-repo did not finish %s within -peer-timeout %v (stopped after %d of %d changes)", workload, e.o.peerTimeout, progress, total)
	}
	time.Sleep(time.Second)
	cpu1, end, uerr := s.Usage()
	if uerr != nil {
		return nil, uerr
	}
	peak := s.PeakRSS()
	// The result is the last line of stdout: automerge-repo may print
	// warnings of its own before it.
	printed := bytes.TrimSpace(stdout.Bytes())
	last := printed[bytes.LastIndexByte(printed, '\n')+1:]
	var out map[string]any
	if err := json.Unmarshal(last, &out); err != nil {
		return nil, fmt.Errorf("node harness: %v; no result (%v); stdout:\n%s\nstderr:\n%s", werr, err, tailString(string(printed), 2000), strings.Join(errTail, "\n"))
	}
	if f, _ := out["failure"].(string); f != "" {
		return nil, fmt.Errorf("peer: %s", f)
	}
	if werr != nil {
		return nil, fmt.Errorf("node harness: %w", werr)
	}
	m := map[string]float64{}
	for k, v := range out {
		if f, ok := v.(float64); ok {
			m[k] = f
		}
	}
	statsAfter, err := peerStats(ctx, s)
	if err != nil {
		return nil, err
	}
	m["server_cpu_s"] = cpu1 - cpu0
	m["peak_rss_mb"] = float64(peak) / (1 << 20)
	m["idle_rss_mb"] = float64(idle) / (1 << 20)
	m["end_rss_mb"] = float64(end) / (1 << 20)
	if c := m["changes"]; c > 0 {
		m["server_cpu_ms_per_change"] = (cpu1 - cpu0) * 1000 / c
		m["store_writes_per_change"] = (statsAfter["saves"] - statsBefore["saves"]) / c
	}
	return m, nil
}

func peerStats(ctx context.Context, s *server) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/stats", nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("peer stats: %w", err)
	}
	defer resp.Body.Close()
	var st map[string]float64
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("peer stats: %w", err)
	}
	return st, nil
}

// tailString returns the last n bytes of s.
func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
