package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dynamerge/dynamerge/benchmarks"
)

// profile holds the sizes of one suite run.
type profile struct {
	// lost-updates
	LostClients, LostRecords, LostRounds, LostEditsPerRound int
	// breadth
	BreadthClients, BreadthRecords, BreadthOps int
	// BreadthOpen bounds the replicas a client keeps open (least recently
	// used closed first), as an app bounds its loaded documents; a record
	// picked again after its replica was closed is opened with a new pull.
	BreadthOpen int
	// hot-record
	HotWriters  []int
	HotRate     float64 // changes per second per writer
	HotDuration time.Duration
	// long-history
	HistorySizes []int
	HistorySyncs int
	// offline-storm
	StormClients, StormRecords, StormMinChanges, StormMaxChanges int
	StormWindow                                                  time.Duration
	// large-text: the paste's characters; the typing changes (of 2
	// writers together) and each writer's rate in changes per second
	LargeTextChars, LargeTextChanges int
	LargeTextRate                    float64
	// fanout: clients, records, each client's changes per second, and
	// how long they write
	FanoutClients, FanoutRecords int
	FanoutRate                   float64
	FanoutDuration               time.Duration
}

// profiles are the sizes of the suite. quick fits in a few minutes on 2
// shared cores; full follows the sizes; smoke is for the runner's
// own test, seconds long.
var profiles = map[string]profile{
	"smoke": {
		LostClients: 3, LostRecords: 2, LostRounds: 2, LostEditsPerRound: 3,
		BreadthClients: 4, BreadthRecords: 10, BreadthOps: 40, BreadthOpen: 3,
		HotWriters: []int{2}, HotRate: 6, HotDuration: time.Second,
		HistorySizes: []int{100}, HistorySyncs: 6,
		StormClients: 5, StormRecords: 2, StormMinChanges: 5, StormMaxChanges: 10, StormWindow: 500 * time.Millisecond,
		LargeTextChars: 20_000, LargeTextChanges: 200, LargeTextRate: 100,
		FanoutClients: 4, FanoutRecords: 8, FanoutRate: 2, FanoutDuration: time.Second,
	},
	"quick": {
		LostClients: 8, LostRecords: 10, LostRounds: 4, LostEditsPerRound: 5,
		BreadthClients: 64, BreadthRecords: 1000, BreadthOps: 2000, BreadthOpen: 16,
		HotWriters: []int{4, 16}, HotRate: 6, HotDuration: 4 * time.Second,
		HistorySizes: []int{100, 10_000}, HistorySyncs: 40,
		StormClients: 50, StormRecords: 10, StormMinChanges: 20, StormMaxChanges: 100, StormWindow: 5 * time.Second,
		LargeTextChars: 1_000_000, LargeTextChanges: 10_000, LargeTextRate: 100,
		FanoutClients: 64, FanoutRecords: 100, FanoutRate: 1, FanoutDuration: 10 * time.Second,
	},
	"full": {
		LostClients: 32, LostRecords: 100, LostRounds: 10, LostEditsPerRound: 10,
		BreadthClients: 1000, BreadthRecords: 50_000, BreadthOps: 100_000, BreadthOpen: 16,
		HotWriters: []int{4, 16, 64}, HotRate: 6, HotDuration: 30 * time.Second,
		HistorySizes: []int{100, 10_000, 100_000}, HistorySyncs: 200,
		StormClients: 200, StormRecords: 50, StormMinChanges: 100, StormMaxChanges: 1000, StormWindow: 10 * time.Second,
		LargeTextChars: 1_000_000, LargeTextChanges: 100_000, LargeTextRate: 100,
		FanoutClients: 64, FanoutRecords: 100, FanoutRate: 1, FanoutDuration: 30 * time.Second,
	},
}

// Run is results.json.
type Run struct {
	Profile string    `json:"profile"`
	Command string    `json:"command"`
	Seed    uint64    `json:"seed"`
	Started time.Time `json:"started"`
	Seconds float64   `json:"seconds"`
	Machine Machine   `json:"machine"`
	Params  profile   `json:"params"`
	Notes   []string  `json:"notes,omitempty"`
	Results []*Result `json:"results"`
}

// Machine describes the machine of a run.
type Machine struct {
	Cores        int    `json:"cores"`
	MemoryBytes  int64  `json:"memory_bytes"`
	CPU          string `json:"cpu"`
	OS           string `json:"os"`
	Kernel       string `json:"kernel"`
	GoVersion    string `json:"go_version"`
	NodeVersion  string `json:"node_version"`
	JavaVersion  string `json:"java_version"`
	LoadAvgStart string `json:"loadavg_start"`
	LoadAvgEnd   string `json:"loadavg_end"`
}

// Result is one scenario × system × store (× variant) run.
type Result struct {
	Scenario string             `json:"scenario"`
	System   string             `json:"system"`
	Store    string             `json:"store"`
	Variant  string             `json:"variant,omitempty"`
	Params   map[string]any     `json:"params"`
	Metrics  map[string]float64 `json:"metrics"`
	// Converged is the end-of-run check: every replica identical to the
	// server, nothing lost that the system promises to keep.
	Converged bool     `json:"converged"`
	Failure   string   `json:"failure,omitempty"`
	Notes     []string `json:"notes,omitempty"`
	Seconds   float64  `json:"seconds"`
}

func (r *Run) failures() int {
	n := 0
	for _, x := range r.Results {
		if !x.Converged {
			n++
		}
	}
	return n
}

// record adds a result, printing a failure loudly at once.
func (e *env) record(r *Result, start time.Time) {
	r.Seconds = time.Since(start).Seconds()
	for k, v := range r.Metrics {
		// JSON has no NaN or infinity: a metric that could not be measured
		// is left out, and says so in the notes.
		if math.IsNaN(v) || math.IsInf(v, 0) {
			delete(r.Metrics, k)
		}
	}
	e.run.Results = append(e.run.Results, r)
	e.logger.Info("result", "scenario", r.Scenario, "system", r.System, "store", r.Store, "variant", r.Variant, "metrics", r.Metrics, "converged", r.Converged, "failure", r.Failure)
	if !r.Converged {
		fmt.Fprintf(e.term, "\n!!! FAILED %s / %s / %s %s: %s\n\n", r.Scenario, r.System, r.Store, r.Variant, r.Failure)
	}
}

// fail marks r failed with err (the first failure wins).
func (r *Result) fail(err error) {
	if err == nil {
		return
	}
	r.Converged = false
	if r.Failure == "" {
		r.Failure = err.Error()
	}
}

func writeResults(r *Run, dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644)
}

// summaryMetrics are the columns of the summary table per scenario.
var summaryMetrics = map[string][]string{
	"lost-updates":    {"edits_made", "edits_present", "edits_lost", "lost_pct"},
	"breadth":         {"changes_per_s", "sync_p50_ms", "sync_p99_ms", "server_cpu_s", "peak_rss_mb", "rss_per_record_kb"},
	"hot-record":      {"changes", "remote_p50_ms", "remote_p99_ms", "store_writes_per_change", "ddb_wcu_per_change", "server_cpu_s"},
	"long-history":    {"history", "sync_p50_ms", "sync_p99_ms", "cold_load_ms"},
	"offline-storm":   {"converge_s", "wire_ratio", "wire_per_change_byte", "retries", "changes", "peak_rss_mb"},
	"peer-comparison": {"changes_per_s", "p50_ms", "p99_ms", "server_cpu_ms_per_change", "peak_rss_mb", "ratio_changes_per_s", "ratio_p50_ms", "ratio_p99_ms", "ratio_server_cpu_ms_per_change", "ratio_peak_rss_mb"},
	"fanout":          {"changes_per_s", "deliveries_per_s", "remote_p50_ms", "remote_p99_ms", "server_cpu_ms_per_delivery", "server_cpu_ms_per_change", "pulls", "ratio_deliveries_per_s", "ratio_remote_p50_ms", "ratio_server_cpu_ms_per_delivery"},
	"large-text":      {"ops", "push_p50_ms", "push_p99_ms", "peak_rss_mb", "bytes_per_op", "first_pull_ms", "first_pull_bytes", "ratio_push_p50_ms", "ratio_push_p99_ms", "ratio_bytes_per_op", "ratio_first_pull_ms", "ratio_first_pull_bytes"},
}

func printSummary(w io.Writer, r *Run) {
	fmt.Fprintf(w, "\n== dynabench %s: %d cores, %.1f GiB, %s, load %s → %s, %.0f s ==\n",
		r.Profile, r.Machine.Cores, float64(r.Machine.MemoryBytes)/(1<<30), r.Machine.GoVersion,
		r.Machine.LoadAvgStart, r.Machine.LoadAvgEnd, r.Seconds)
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	last := ""
	for _, x := range r.Results {
		if x.Scenario != last {
			last = x.Scenario
			fmt.Fprintf(tw, "\n%s\tsystem\tstore\tvariant\t%s\tok\n", strings.ToUpper(x.Scenario), strings.Join(summaryMetrics[x.Scenario], "\t"))
		}
		var cells []string
		for _, m := range summaryMetrics[x.Scenario] {
			cells = append(cells, fmtMetric(x.Metrics, m))
		}
		ok := "ok"
		if !x.Converged {
			ok = "FAILED: " + truncate(x.Failure, 60)
		}
		fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s\t%s\n", x.System, x.Store, dash(x.Variant), strings.Join(cells, "\t"), ok)
	}
	tw.Flush()
}

// markdownSummary is the same table as Markdown, for the README.
func markdownSummary(r *Run) string {
	var b strings.Builder
	last := ""
	for _, x := range r.Results {
		if x.Scenario != last {
			last = x.Scenario
			ms := summaryMetrics[x.Scenario]
			fmt.Fprintf(&b, "\n| %s | system | store | variant | %s | ok |\n|%s\n", x.Scenario, strings.Join(ms, " | "), strings.Repeat(" --- |", len(ms)+5))
		}
		var cells []string
		for _, m := range summaryMetrics[x.Scenario] {
			cells = append(cells, fmtMetric(x.Metrics, m))
		}
		ok := "ok"
		if !x.Converged {
			ok = "FAILED"
		}
		fmt.Fprintf(&b, "| | %s | %s | %s | %s | %s |\n", x.System, x.Store, dash(x.Variant), strings.Join(cells, " | "), ok)
	}
	return b.String()
}

func fmtMetric(m map[string]float64, k string) string {
	v, ok := m[k]
	if !ok {
		return "–"
	}
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e9:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

func dash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// usage is a server's counters at one instant, to take differences of.
type usage struct {
	at      time.Time
	cpu     float64
	metrics map[string]float64
}

func (s *server) usage(ctx context.Context) (usage, error) {
	u := usage{at: time.Now()}
	cpu, _, err := s.Usage()
	if err != nil {
		return u, err
	}
	u.cpu = cpu
	if s.system == sysDynamerge {
		if u.metrics, err = scrape(ctx, s.http, s.URL+"/metrics"); err != nil {
			return u, err
		}
	}
	return u, nil
}

// ddbWriteMetric is the counter of DynamoDB write capacity units the
// server exposes, if it does: the names the DynamoDB store may use.
var ddbWriteMetrics = []string{"dynamerge_dynamodb_write_units_total", "dynamerge_dynamodb_consumed_write_capacity_units_total", "dynamerge_store_write_units_total"}

// storeDiff adds the store-side metrics between two usages, per change.
func storeDiff(r *Result, s *server, a, b usage, changes int) {
	r.Metrics["server_cpu_s"] = b.cpu - a.cpu
	if changes > 0 {
		r.Metrics["server_cpu_ms_per_change"] = (b.cpu - a.cpu) * 1000 / float64(changes)
	}
	if s.system != sysDynamerge || changes == 0 {
		return
	}
	r.Metrics["store_writes_per_change"] = (b.metrics["dynamerge_store_writes_total"] - a.metrics["dynamerge_store_writes_total"]) / float64(changes)
	if s.store != storeDynamo {
		return
	}
	for _, name := range ddbWriteMetrics {
		if _, ok := b.metrics[name]; ok {
			r.Metrics["ddb_wcu_per_change"] = (b.metrics[name] - a.metrics[name]) / float64(changes)
			return
		}
	}
	r.Notes = append(r.Notes, "ddb_wcu_per_change not measured: the server's /metrics has no DynamoDB consumed-capacity counter")
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// scenarioFunc runs one scenario on every system and store it applies to.
type scenarioFunc func(ctx context.Context, e *env)

var scenarios = map[string]scenarioFunc{
	"lost-updates":    runLost,
	"breadth":         runBreadth,
	"hot-record":      runHot,
	"long-history":    runHistory,
	"offline-storm":   runStorm,
	"peer-comparison": runCompare,
	"large-text":      runLargeText,
	"fanout":          runFanout,
}

// pctMs returns l's p-th percentile in milliseconds, or NaN when l is
// empty, which record() leaves out of the metrics (a 0 would pass for a
// measurement).
func pctMs(l *benchmarks.Latencies, p float64) float64 {
	if l.Len() == 0 {
		return math.NaN()
	}
	return benchmarks.Millis(l.Percentile(p))
}

func sortedStrings(s []string) []string { return slices.Sorted(slices.Values(s)) }
