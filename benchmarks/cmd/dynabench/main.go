// Command dynabench is the dynamerge benchmark suite: it builds the server,
// starts real servers as subprocesses on 127.0.0.1 (dynamerge on the
// embedded bbolt store and on DynamoDB Local, and the last-writer-wins
// baseline of benchmarks/lww on the same two), drives them over HTTP with
// the Go client, and writes results.json, report.html (SVG charts) and a
// summary table. `make bench` runs the quick profile, `make bench-full` the
// full one. Every scenario checks convergence at the end and records a
// failure loudly instead of a fast wrong number.
//
//	go run ./benchmarks/cmd/dynabench -profile quick -out benchmarks/results/quick
//
// The subcommand `dynabench lww-serve` runs the baseline server; the
// runner starts it on itself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "lww-serve" {
		err = lwwServe(ctx, os.Args[2:])
	} else {
		err = run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dynabench:", err)
		os.Exit(1)
	}
}

// scenarioNames lists the scenarios in the order they run.
var scenarioNames = []string{"lost-updates", "breadth", "hot-record", "long-history", "offline-storm", "peer-comparison", "large-text", "fanout"}

// options are the runner's flags.
type options struct {
	profile   string
	out       string
	stores    []string
	scenarios []string
	seed      uint64
	ddbDir    string
	ddbURL    string
	repo      string
	// serverRepo is where ./cmd/dynamerge is built from (default repo):
	// another version of the server measured by this runner, for a
	// before/after comparison.
	serverRepo string
	keep       bool
	// peerTimeout bounds one automerge-repo workload, its setup included.
	peerTimeout time.Duration
	// largeTextChanges overrides the profile's typing changes (0: keep).
	largeTextChanges int
	// binary makes the offline storm's clients send and take binary
	// /v1/sync bodies (client.Client.Binary).
	binary bool
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dynabench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var stores, scen string
	fs.StringVar(&o.profile, "profile", "quick", "quick (a few minutes on 2 cores) or full")
	fs.StringVar(&o.out, "out", "", "results folder (default benchmarks/results/<profile>-<time>)")
	fs.StringVar(&stores, "stores", "bolt,dynamodb", "stores to run on: bolt, dynamodb")
	fs.StringVar(&scen, "scenarios", strings.Join(scenarioNames, ","), "scenarios to run")
	fs.Uint64Var(&o.seed, "seed", 0, "random seed (0: pick one and print it)")
	fs.StringVar(&o.ddbDir, "dynamodb-local", ".cache/dynamodb-local", "DynamoDB Local folder (scripts/dynamodb-local.sh fetch)")
	fs.StringVar(&o.ddbURL, "dynamodb-endpoint", os.Getenv("DYNAMODB_ENDPOINT"), "a running DynamoDB (Local) endpoint to use instead of starting one")
	fs.StringVar(&o.repo, "repo", ".", "the dynamerge repository (to build ./cmd/dynamerge)")
	fs.StringVar(&o.serverRepo, "server-repo", "", "build the dynamerge server from this checkout instead of -repo (to measure another version, e.g. the main branch, with this runner's scenarios)")
	fs.BoolVar(&o.binary, "binary", false, "the offline storm's clients use binary /v1/sync bodies instead of JSON")
	fs.BoolVar(&o.keep, "keep", false, "keep the servers' data and logs in the results folder")
	fs.DurationVar(&o.peerTimeout, "peer-timeout", 20*time.Minute, "how long one automerge-repo workload (setup included) may take before it is stopped and reported as failed")
	fs.IntVar(&o.largeTextChanges, "large-text-changes", 0, "typing changes of the large-text scenario, both writers together (0: the profile's, 10,000 quick and 100,000 full)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	prof, ok := profiles[o.profile]
	if !ok {
		return fmt.Errorf("-profile: want smoke, quick or full, got %q", o.profile)
	}
	if o.largeTextChanges < 0 {
		return fmt.Errorf("-large-text-changes: want 0 or more, got %d", o.largeTextChanges)
	}
	if o.largeTextChanges > 0 {
		prof.LargeTextChanges = o.largeTextChanges
	}
	if o.serverRepo == "" {
		o.serverRepo = o.repo
	}
	o.stores = splitList(stores)
	for _, s := range o.stores {
		if s != storeBolt && s != storeDynamo {
			return fmt.Errorf("-stores: unknown store %q (want bolt, dynamodb)", s)
		}
	}
	o.scenarios = splitList(scen)
	for _, s := range o.scenarios {
		if !slices.Contains(scenarioNames, s) {
			return fmt.Errorf("-scenarios: unknown scenario %q (want some of %s)", s, strings.Join(scenarioNames, ","))
		}
	}
	if o.seed == 0 {
		o.seed = uint64(time.Now().UnixNano())
	}
	if o.out == "" {
		o.out = filepath.Join(o.repo, "benchmarks", "results", o.profile+"-"+time.Now().UTC().Format("20060102-150405"))
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(o.out, "dynabench.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	logger := slog.New(slog.NewTextHandler(logf, nil))

	e, err := newEnv(ctx, o, prof, logger, stderr)
	if err != nil {
		return err
	}
	defer e.close()
	fmt.Fprintf(stderr, "dynabench: profile %s, seed %d, results in %s\n", o.profile, o.seed, o.out)
	for _, n := range e.notes {
		fmt.Fprintln(stderr, "note:", n)
	}
	start := time.Now()
	for _, name := range o.scenarios {
		if ctx.Err() != nil {
			break
		}
		scenarios[name](ctx, e)
	}
	e.run.Seconds = time.Since(start).Seconds()
	e.run.Machine.LoadAvgEnd = loadAvg()
	if err := writeResults(e.run, o.out); err != nil {
		return err
	}
	if err := writeReport(e.run, filepath.Join(o.out, "report.html")); err != nil {
		return err
	}
	printSummary(stdout, e.run)
	fmt.Fprintf(stdout, "\nresults: %s\nreport:  %s\n", filepath.Join(o.out, "results.json"), filepath.Join(o.out, "report.html"))
	if n := e.run.failures(); n > 0 {
		return fmt.Errorf("%d run(s) FAILED their convergence or loss check; see the table and results.json", n)
	}
	return ctx.Err()
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
