package main

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"os"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// scenarioText describes each scenario in the report.
var scenarioText = map[string]string{
	"lost-updates":    "Clients go offline, edit the same records (fields, list items, text), come back; the same plan of edits through dynamerge and through a timestamp last-writer-wins baseline storing whole JSON records. Every edit carries a unique marker: edits lost = edits made − markers present at the end.",
	"breadth":         "Many clients on many records: each operation edits a random record and syncs it. Sync latency is the HTTP round trip including the client's Automerge work; server CPU and RSS are the server process and its Automerge workers.",
	"hot-record":      "Writers typing into one record at a fixed rate each, with and without group commit. Remote latency: from a change being made at one writer to an observer (following Server-Sent Events, then pulling) holding it.",
	"long-history":    "A one-change sync (push one, pull one) on a hot record with a long history, and the cold-load time of the record (its first sync after a server restart). Flat sync latency means the cost follows the delta, not the history.",
	"peer-comparison": "The breadth and hot-record workloads against the Automerge project's own sync server (@automerge/automerge-repo with its WebSocket adapter and Node file system storage, run with Node on this machine), driven by an equivalent Node client harness (benchmarks/peer/). p50/p99 are sync latency for breadth and remote latency for hot; ratio_<metric> on the peer's rows is dynamerge ÷ automerge-repo, both measured in this run (a ratio above 1 for throughput, below 1 for latency, CPU and memory, favours dynamerge).",
	"large-text":      "Records of a realistic size, side by side with automerge-repo doing the same work. paste: one change pasting 1,000,000 characters into a note's text. typing: two writers typing one character (or a backspace) per change into one text, merging each other's work, while an observer follows. Then a new client's first pull of the record (on dynamerge also after a restart: cold). Push latency is a push's HTTP round trip on dynamerge and, on automerge-repo, the time from a change to the sync server's heads covering it. bytes_per_op is the server's RSS growth over the workload per op of history; first_pull_bytes the bytes the new client received on the wire. ratio_<metric> on automerge-repo's rows is dynamerge (bbolt) ÷ automerge-repo.",
	"fanout":          "Every client follows every record and writes the records it owns at a fixed rate, so each change goes to every other client (64 clients × 100 records in quick and full). Deliveries are changes reaching one receiver; remote latency runs from a change being made to a receiver holding it. dynamerge receivers apply the changes an event carries when they hold their dependencies, and pull otherwise; automerge-repo's sync server forwards every change to every client. Server CPU is the server process's, per delivery and per change; ratio_<metric> on automerge-repo's row is dynamerge (bbolt) ÷ automerge-repo.",
	"offline-storm":   "Clients each with many offline changes reconnect within a short window: time until every replica holds every change, bytes on the wire (HTTP bodies both ways) against the raw change bytes made, and retries.",
}

type reportSection struct {
	Name    string
	Text    string
	Charts  []template.HTML
	Columns []string
	Rows    []reportRow
}

type reportRow struct {
	System, Store, Variant, Status string
	Failed                         bool
	Cells                          []string
	Notes                          []string
}

func writeReport(r *Run, path string) error {
	var sections []reportSection
	for _, name := range scenarioNames {
		var rs []*Result
		for _, x := range r.Results {
			if x.Scenario == name {
				rs = append(rs, x)
			}
		}
		if len(rs) == 0 {
			continue
		}
		sec := reportSection{Name: name, Text: scenarioText[name]}
		cols := map[string]bool{}
		for _, x := range rs {
			for k := range x.Metrics {
				cols[k] = true
			}
		}
		sec.Columns = sortedKeys(cols)
		for _, x := range rs {
			row := reportRow{System: x.System, Store: x.Store, Variant: dash(x.Variant), Status: "converged", Notes: x.Notes}
			if !x.Converged {
				row.Status, row.Failed = "FAILED: "+x.Failure, true
			}
			for _, c := range sec.Columns {
				row.Cells = append(row.Cells, fmtMetric(x.Metrics, c))
			}
			sec.Rows = append(sec.Rows, row)
		}
		charts, err := chartsFor(name, rs)
		if err != nil {
			return fmt.Errorf("charts of %s: %w", name, err)
		}
		sec.Charts = charts
		sections = append(sections, sec)
	}
	var buf bytes.Buffer
	err := reportTmpl.Execute(&buf, map[string]any{"Run": r, "Sections": sections, "Markdown": markdownSummary(r),
		"MemGiB": fmt.Sprintf("%.1f", float64(r.Machine.MemoryBytes)/(1<<30))})
	if err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

func label(x *Result) string {
	s := x.System + "/" + x.Store
	if x.Variant != "" {
		s += " " + x.Variant
	}
	return s
}

// chartsFor draws the charts of one scenario.
func chartsFor(name string, rs []*Result) ([]template.HTML, error) {
	var out []template.HTML
	add := func(svg template.HTML, err error) error {
		if err != nil {
			return err
		}
		if svg != "" {
			out = append(out, svg)
		}
		return nil
	}
	var err error
	switch name {
	case "lost-updates":
		err = firstErr(add(barChart("Edits lost (of edits made)", "edits", rs, "edits_lost", "edits_made")))
	case "breadth":
		err = firstErr(add(barChart("Throughput", "changes/s", rs, "changes_per_s")),
			add(barChart("Sync latency", "ms", rs, "sync_p50_ms", "sync_p99_ms")),
			add(barChart("Server memory", "MB", rs, "idle_rss_mb", "peak_rss_mb")))
	case "hot-record":
		err = firstErr(add(lineChart("Remote latency p99 by writers", "writers", "ms", rs, "writers", "remote_p99_ms", false)),
			add(lineChart("Remote latency p50 by writers", "writers", "ms", rs, "writers", "remote_p50_ms", false)),
			add(lineChart("Store writes per change", "writers", "writes/change", rs, "writers", "store_writes_per_change", false)))
	case "long-history":
		err = firstErr(add(lineChart("One-change sync latency (p50) by history", "changes of history", "ms", rs, "history", "sync_p50_ms", true)),
			add(lineChart("Cold load by history", "changes of history", "ms", rs, "history", "cold_load_ms", true)))
	case "peer-comparison":
		err = firstErr(add(barChart("Latency p50 / p99", "ms", rs, "p50_ms", "p99_ms")),
			add(barChart("Throughput", "changes/s", rs, "changes_per_s")),
			add(barChart("Server CPU per change", "ms", rs, "server_cpu_ms_per_change")),
			add(barChart("dynamerge ÷ automerge-repo", "ratio", peerRows(rs), "ratio_p50_ms", "ratio_p99_ms", "ratio_server_cpu_ms_per_change", "ratio_peak_rss_mb")))
	case "large-text":
		for _, v := range []string{"paste", "typing"} {
			vs := withVariant(rs, v)
			if len(vs) == 0 {
				continue
			}
			err = firstErr(err, add(barChart(v+": push latency p50 / p99", "ms", vs, "push_p50_ms", "push_p99_ms")),
				add(barChart(v+": server memory per op of history", "bytes/op", vs, "bytes_per_op")),
				add(barChart(v+": a new client's first pull", "ms", vs, "first_pull_ms", "cold_first_pull_ms")),
				add(barChart(v+": first pull on the wire, and Automerge.save", "bytes", vs, "first_pull_bytes", "save_bytes")),
				add(barChart(v+": dynamerge ÷ automerge-repo", "ratio", peerRows(vs), "ratio_push_p50_ms", "ratio_push_p99_ms", "ratio_bytes_per_op", "ratio_first_pull_ms", "ratio_first_pull_bytes")))
		}
	case "fanout":
		err = firstErr(add(barChart("Deliveries per second (a change reaching one receiver)", "deliveries/s", rs, "deliveries_per_s")),
			add(barChart("Per-receiver latency p50 / p99", "ms", rs, "remote_p50_ms", "remote_p99_ms")),
			add(barChart("Server CPU per delivery", "ms", rs, "server_cpu_ms_per_delivery")),
			add(barChart("dynamerge ÷ automerge-repo", "ratio", peerRows(rs), "ratio_deliveries_per_s", "ratio_remote_p50_ms", "ratio_remote_p99_ms", "ratio_server_cpu_ms_per_delivery")))
	case "offline-storm":
		err = firstErr(add(barChart("Time until all converge", "s", rs, "all_pushed_s", "converge_s")),
			add(barChart("Bytes on the wire ÷ raw change bytes", "ratio", rs, "wire_ratio")))
	}
	return out, err
}

// withVariant returns the rows of one variant.
func withVariant(rs []*Result, variant string) []*Result {
	return rowsWhere(rs, func(x *Result) bool { return x.Variant == variant })
}

// peerRows returns the peer's rows, which carry the ratios.
func peerRows(rs []*Result) []*Result {
	return rowsWhere(rs, func(x *Result) bool { return x.System == sysPeer })
}

func rowsWhere(rs []*Result, keep func(*Result) bool) []*Result {
	var out []*Result
	for _, x := range rs {
		if keep(x) {
			out = append(out, x)
		}
	}
	return out
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// barChart draws one group of bars per metric, one bar per result.
// A chart with no result to show (the peer's ratios when the peer did not
// run) is left out, as one whose results lack its metrics is.
func barChart(title, ylabel string, rs []*Result, metrics ...string) (template.HTML, error) {
	if len(rs) == 0 {
		return "", nil
	}
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	var labels []string
	for _, x := range rs {
		labels = append(labels, label(x))
	}
	w := vg.Points(math.Max(8, 60/float64(len(metrics))))
	drawn := false
	top := 0.0
	for i, m := range metrics {
		vals := make(plotter.Values, len(rs))
		for j, x := range rs {
			if v, ok := x.Metrics[m]; ok {
				vals[j] = v
				top = math.Max(top, v)
				drawn = true
			}
		}
		b, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return "", err
		}
		b.Color = plotutil.Color(i)
		b.LineStyle.Width = 0
		b.Offset = w * vg.Length(float64(i)-float64(len(metrics)-1)/2)
		p.Add(b)
		p.Legend.Add(m, b)
	}
	if !drawn {
		return "", nil
	}
	p.Legend.Top = true
	// Head room, so that the legend does not sit on the tallest bar.
	if top <= 0 {
		top = 1
	}
	p.Y.Min, p.Y.Max = 0, top*(1.15+0.12*float64(len(metrics)))
	p.NominalX(labels...)
	p.X.Tick.Label.Rotation = -0.35
	p.X.Tick.Label.XAlign = -0.1
	p.X.Tick.Label.YAlign = -1
	return svg(p, vg.Length(math.Max(5, 1.3*float64(len(rs))))*vg.Inch, 3.6*vg.Inch)
}

// lineChart draws metric y against parameter x, one line per
// system/store/variant family (the variant with the x parameter removed).
func lineChart(title, xlabel, ylabel string, rs []*Result, xparam, ymetric string, logX bool) (template.HTML, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	series := map[string]plotter.XYs{}
	for _, x := range rs {
		xv, ok := paramFloat(x, xparam)
		yv, ok2 := x.Metrics[ymetric]
		if !ok || !ok2 {
			continue
		}
		key := x.System + "/" + x.Store + familyOf(x.Variant)
		series[key] = append(series[key], plotter.XY{X: xv, Y: yv})
	}
	if len(series) == 0 {
		return "", nil
	}
	if logX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	for i, k := range sortedKeys(series) {
		pts := series[k]
		sort.Slice(pts, func(a, b int) bool { return pts[a].X < pts[b].X })
		l, s, err := plotter.NewLinePoints(pts)
		if err != nil {
			return "", err
		}
		l.Color, s.Color = plotutil.Color(i), plotutil.Color(i)
		s.Shape = plotutil.Shape(i)
		p.Add(l, s)
		p.Legend.Add(k, l, s)
	}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Y.Min = 0
	return svg(p, 6*vg.Inch, 3.6*vg.Inch)
}

// familyOf drops the "w=N"/"history=N" part of a variant.
func familyOf(v string) string {
	var keep []string
	for _, f := range strings.Fields(v) {
		if !strings.Contains(f, "=") {
			keep = append(keep, f)
		}
	}
	if len(keep) == 0 {
		return ""
	}
	return " " + strings.Join(keep, " ")
}

func paramFloat(x *Result, k string) (float64, bool) {
	switch v := x.Params[k].(type) {
	case int:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}

func svg(p *plot.Plot, w, h vg.Length) (template.HTML, error) {
	wt, err := p.WriterTo(w, h, "svg")
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return "", err
	}
	s := buf.String()
	// Inline SVG in HTML takes no XML prolog.
	if i := strings.Index(s, "<svg"); i > 0 {
		s = s[i:]
	}
	return template.HTML(s), nil
}

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{"join": strings.Join}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dynabench {{.Run.Profile}} — dynamerge benchmarks</title>
<style>
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}.fail{color:#b00;font-weight:bold}.ok{color:#070}
.charts{display:flex;flex-wrap:wrap;gap:1em}.charts svg{border:1px solid #eee}
.note{color:#555;font-size:13px}.wide{overflow-x:auto}pre{background:#f6f6f6;padding:.5em;overflow:auto}
</style></head><body>
<h1>dynamerge benchmarks — {{.Run.Profile}} run</h1>
<p>{{.Run.Started.Format "2006-01-02 15:04 UTC"}}, {{printf "%.0f" .Run.Seconds}} s. Seed {{.Run.Seed}}.</p>
<pre>{{.Run.Command}}</pre>
<p>Machine: {{.Run.Machine.Cores}} cores ({{.Run.Machine.CPU}}), {{.MemGiB}} GiB, {{.Run.Machine.Kernel}}, {{.Run.Machine.GoVersion}}, Node {{.Run.Machine.NodeVersion}}, {{.Run.Machine.JavaVersion}};
load average {{.Run.Machine.LoadAvgStart}} at start, {{.Run.Machine.LoadAvgEnd}} at the end. Clients and servers share the machine.</p>
{{range .Run.Notes}}<p class="note">Note: {{.}}</p>{{end}}
{{range .Sections}}
<h2>{{.Name}}</h2><p>{{.Text}}</p>
<div class="charts">{{range .Charts}}{{.}}{{end}}</div>
<div class="wide"><table><tr><th class="l">system</th><th class="l">store</th><th class="l">variant</th>{{range .Columns}}<th>{{.}}</th>{{end}}<th class="l">check</th></tr>
{{range .Rows}}<tr><td class="l">{{.System}}</td><td class="l">{{.Store}}</td><td class="l">{{.Variant}}</td>{{range .Cells}}<td>{{.}}</td>{{end}}<td class="l {{if .Failed}}fail{{else}}ok{{end}}">{{.Status}}</td></tr>
{{end}}</table></div>
{{range .Rows}}{{$r := .}}{{range .Notes}}<p class="note">{{$r.System}}/{{$r.Store}}: {{.}}</p>{{end}}{{end}}
{{end}}
<h2>Summary (Markdown)</h2><pre>{{.Markdown}}</pre>
</body></html>
`))
