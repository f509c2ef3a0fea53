package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var flagLong = flag.Bool("long", false, "run the long tests (TestSmokeLargeText)")

// TestMain lets the test binary serve as the baseline server, as the
// dynabench binary does: the runner starts os.Executable() lww-serve.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "lww-serve" {
		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		if err := lwwServe(ctx, os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	flag.Parse()
	os.Exit(m.Run())
}

func TestParseMetrics(t *testing.T) {
	page := `# HELP dynamerge_store_writes_total Writes to the store.
# TYPE dynamerge_store_writes_total counter
dynamerge_store_writes_total 42
dynamerge_http_requests_total{method="POST",route="/v1/sync",status="200"} 10
dynamerge_http_requests_total{method="GET",route="/v1/x y}",status="404"} 2 1700000000000
process_resident_memory_bytes 1.5e+07
`
	got, err := parseMetrics(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{
		"dynamerge_store_writes_total":  42,
		"dynamerge_http_requests_total": 12,
		"process_resident_memory_bytes": 1.5e7,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
}

func TestTreeUsageSeesThisProcess(t *testing.T) {
	// Burn a little CPU so that the count is not zero.
	end := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(end); x++ {
		_ = x * x
	}
	cpu, rss, err := treeUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if cpu <= 0 || rss < 1<<20 {
		t.Fatalf("treeUsage(self) = %v s, %d bytes; want both positive", cpu, rss)
	}
	if _, _, err := treeUsage(1 << 30); err == nil {
		t.Fatal("treeUsage of a missing pid: want an error")
	}
}

func TestCountPresent(t *testing.T) {
	plan := [][][]edit{{{
		{kind: 0, record: 0, marker: "a"},
		{kind: 1, record: 0, marker: "b"},
		{kind: 2, record: 1, marker: "c"},
		{kind: 2, record: 1, marker: "d"},
	}}}
	recs := []recordJSON{
		{Fields: map[string]any{"a": true}, Items: []string{"x"}},
		{Text: "[d][c"}, // c's marker was cut: lost
	}
	made, present := countPresent(recs, plan)
	if made != 4 || present != 2 {
		t.Fatalf("countPresent = %d made, %d present; want 4, 2", made, present)
	}
}

func TestTextBoundaryNeverSplitsAMarker(t *testing.T) {
	text := "[m1][m22][m333]"
	for f := 0.0; f < 1; f += 0.05 {
		i := textBoundary(text, f)
		if i != 0 && text[i-1] != ']' {
			t.Fatalf("textBoundary(%q, %v) = %d, inside a marker", text, f, i)
		}
	}
}

// TestSmokeRun runs the suite at its smallest size on bbolt, real servers
// and all, and checks the files it writes. large-text is left out: it
// belongs to make bench, and make test stays as fast as it was
// (TestSmokeLargeText runs it with -long).
func TestSmokeRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts servers; skipped with -short")
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	scen := strings.Join(slices.DeleteFunc(slices.Clone(scenarioNames), func(s string) bool { return s == "large-text" }), ",")
	err := run(context.Background(), []string{"-profile", "smoke", "-stores", "bolt", "-repo", "../../..", "-out", out, "-seed", "7", "-scenarios", scen}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	r := readRun(t, out)
	seen := map[string]bool{}
	for _, x := range r.Results {
		seen[x.Scenario+"/"+x.System] = true
		if !x.Converged {
			t.Errorf("%s/%s/%s %s failed: %s", x.Scenario, x.System, x.Store, x.Variant, x.Failure)
		}
		if len(x.Metrics) == 0 {
			t.Errorf("%s/%s: no metrics", x.Scenario, x.System)
		}
	}
	for _, want := range []string{"lost-updates/dynamerge", "lost-updates/lww-baseline", "breadth/dynamerge", "hot-record/dynamerge", "long-history/dynamerge", "offline-storm/dynamerge", "fanout/dynamerge"} {
		if !seen[want] {
			t.Errorf("results.json lacks %s", want)
		}
	}
	for _, x := range r.Results {
		if x.Scenario == "lost-updates" && x.System == "dynamerge" && x.Metrics["edits_lost"] != 0 {
			t.Errorf("dynamerge lost %v edits", x.Metrics["edits_lost"])
		}
		// Every fan-out change reaches every other client in its event.
		if x.Scenario == "fanout" && x.System == "dynamerge" {
			if got, want := x.Metrics["deliveries"], x.Metrics["expected_deliveries"]; got != want || got == 0 {
				t.Errorf("fanout: %v deliveries, want %v", got, want)
			}
			if got, want := x.Metrics["inline_applied"], x.Metrics["deliveries"]; got != want {
				t.Errorf("fanout: %v events applied from their changes, want all %v", got, want)
			}
		}
	}
	if r.Machine.Cores == 0 || r.Machine.GoVersion == "" {
		t.Errorf("machine not described: %+v", r.Machine)
	}
	html, err := os.ReadFile(filepath.Join(out, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(html), "<svg"); n < 5 {
		t.Errorf("report.html has %d SVG charts, want one or more per scenario", n)
	}
	if !strings.Contains(stdout.String(), "LOST-UPDATES") {
		t.Errorf("no summary table on stdout:\n%s", stdout.String())
	}
}

// TestSmokeLargeText runs the large-text scenario at its smallest size on
// bbolt (and against automerge-repo when benchmarks/peer is installed):
// every row converges and carries the figures.
func TestSmokeLargeText(t *testing.T) {
	if !*flagLong {
		t.Skip("part of make bench, not make test: run with -long")
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-profile", "smoke", "-stores", "bolt", "-repo", "../../..", "-out", out, "-seed", "7", "-scenarios", "large-text"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	r := readRun(t, out)
	rows := 0
	for _, x := range r.Results {
		if x.Scenario != "large-text" {
			continue
		}
		rows++
		if !x.Converged {
			t.Errorf("%s/%s %s failed: %s", x.System, x.Store, x.Variant, x.Failure)
		}
		for _, m := range []string{"push_p50_ms", "push_p99_ms", "peak_rss_mb", "bytes_per_op", "first_pull_ms", "first_pull_bytes"} {
			if _, ok := x.Metrics[m]; !ok {
				t.Errorf("%s/%s %s: no %s", x.System, x.Store, x.Variant, m)
			}
		}
		if x.System == sysPeer {
			if _, ok := x.Metrics["ratio_first_pull_ms"]; !ok {
				t.Errorf("automerge-repo %s: no ratio_first_pull_ms", x.Variant)
			}
		}
	}
	if rows < 2 {
		t.Errorf("%d large-text rows, want paste and typing at least", rows)
	}
}

// readRun reads the results.json a run wrote into dir.
func readRun(tb testing.TB, dir string) Run {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var r Run
	if err := json.Unmarshal(b, &r); err != nil {
		tb.Fatal(err)
	}
	return r
}
