package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Stores and systems, as they appear in results.json.
const (
	storeBolt   = "bolt"
	storeDynamo = "dynamodb"

	sysDynamerge = "dynamerge"
	sysLWW       = "lww-baseline"
)

// env is what every scenario shares: the built binaries, DynamoDB Local,
// the results so far and the terminal.
type env struct {
	o      options
	p      profile
	logger *slog.Logger
	term   io.Writer
	run    *Run
	notes  []string

	dynamergeBin string
	selfBin      string
	work         string // servers' data and logs
	ddbURL       string // "" when DynamoDB is not available
	ddbStarted   string // the folder dynamodb-local.sh started, to stop it
	dynamergeDDB bool   // the dynamerge binary has --store dynamodb:
	// dynamergeIPLimit: the binary has --ip-rate-limit (turned off here).
	dynamergeIPLimit bool
	seq              atomic.Int64
}

func newEnv(ctx context.Context, o options, p profile, logger *slog.Logger, term io.Writer) (*env, error) {
	e := &env{o: o, p: p, logger: logger, term: term}
	// A folder of this run's own: the servers' data of an earlier failed
	// run in the same -out folder is kept as evidence, and a server of
	// this run opening that data (the same file and record names, for the
	// same seed) would measure a record with the earlier run's history.
	work, err := os.MkdirTemp(o.out, "work-")
	if err != nil {
		return nil, err
	}
	e.work = work
	e.dynamergeBin = filepath.Join(e.work, "dynamerge")
	fmt.Fprintln(term, "dynabench: building ./cmd/dynamerge")
	build := exec.CommandContext(ctx, "go", "build", "-o", e.dynamergeBin, "./cmd/dynamerge")
	build.Dir = o.serverRepo
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/dynamerge: %w\n%s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("own executable: %w", err)
	}
	e.selfBin = self
	e.run = &Run{Profile: o.profile, Seed: o.seed, Started: time.Now().UTC(), Params: p, Machine: machineInfo(ctx)}
	e.run.Command = "go run ./benchmarks/cmd/dynabench " + strings.Join(os.Args[1:], " ")
	if o.seed != 0 && !strings.Contains(e.run.Command, "-seed") {
		e.run.Command += fmt.Sprintf(" -seed %d", o.seed)
	}

	help, _ := exec.CommandContext(ctx, e.dynamergeBin, "--help").CombinedOutput()
	if e.dynamergeIPLimit = bytes.Contains(help, []byte("ip-rate-limit")); e.dynamergeIPLimit {
		e.note("dynamerge runs with --ip-rate-limit 0: all simulated clients share 127.0.0.1, which a per-address limit would throttle as one client")
	}
	if e.wants(storeDynamo) {
		e.setupDynamo(ctx)
		if e.ddbURL != "" {
			e.note("on DynamoDB, server CPU and memory are dynamerge's own: DynamoDB Local (Java, on the same cores) is not counted, and its latencies are not those of the AWS service")
		}
	}
	e.run.Notes = e.notes
	return e, nil
}

func (e *env) wants(store string) bool {
	for _, s := range e.o.stores {
		if s == store {
			return true
		}
	}
	return false
}

// stores returns the stores a scenario runs on for a system; a store that
// is not available is left out (with a note made once, in setupDynamo).
func (e *env) stores(system string) []string {
	var out []string
	for _, s := range e.o.stores {
		if s == storeDynamo && (e.ddbURL == "" || (system == sysDynamerge && !e.dynamergeDDB)) {
			continue
		}
		out = append(out, s)
	}
	return out
}

// setupDynamo finds or starts DynamoDB Local and checks that the dynamerge
// binary can use it. Whatever is missing becomes a note, and the DynamoDB
// column is skipped rather than the run failing.
func (e *env) setupDynamo(ctx context.Context) {
	help, _ := exec.CommandContext(ctx, e.dynamergeBin, "--help").CombinedOutput()
	e.dynamergeDDB = bytes.Contains(help, []byte("dynamodb-endpoint"))
	if !e.dynamergeDDB {
		e.note("dynamerge on DynamoDB skipped: this build of cmd/dynamerge has no --dynamodb-endpoint flag (the DynamoDB store is not wired into the binary yet)")
	}
	if e.o.ddbURL != "" {
		e.ddbURL = e.o.ddbURL
		return
	}
	jar := filepath.Join(e.o.repo, e.o.ddbDir, "DynamoDBLocal.jar")
	if _, err := os.Stat(jar); err != nil {
		e.note(fmt.Sprintf("DynamoDB column skipped: DynamoDB Local is not at %s (run `make deps-dynamodb` or pass -dynamodb-endpoint)", jar))
		return
	}
	if _, err := exec.LookPath("java"); err != nil {
		e.note("DynamoDB column skipped: java is not installed (DynamoDB Local needs it)")
		return
	}
	// A private folder of links to the shared install: dynamodb-local.sh
	// keeps its pid file and log in the folder it starts, and the tests of
	// other people may be running DynamoDB Local from the shared one.
	dir := filepath.Join(e.work, "dynamodb-local")
	src, _ := filepath.Abs(filepath.Join(e.o.repo, e.o.ddbDir))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.note("DynamoDB column skipped: " + err.Error())
		return
	}
	for _, n := range []string{"DynamoDBLocal.jar", "DynamoDBLocal_lib"} {
		_ = os.Symlink(filepath.Join(src, n), filepath.Join(dir, n))
	}
	script := filepath.Join(e.o.repo, "scripts", "dynamodb-local.sh")
	out, err := exec.CommandContext(ctx, script, "start", dir).Output()
	if err != nil {
		e.note(fmt.Sprintf("DynamoDB column skipped: %s start failed: %v", script, err))
		return
	}
	e.ddbURL = strings.TrimSpace(string(out))
	e.ddbStarted = dir
	fmt.Fprintf(e.term, "dynabench: started DynamoDB Local at %s\n", e.ddbURL)
}

func (e *env) note(s string) {
	e.notes = append(e.notes, s)
	e.logger.Info("note", "note", s)
}

func (e *env) close() {
	if e.ddbStarted != "" {
		script := filepath.Join(e.o.repo, "scripts", "dynamodb-local.sh")
		if out, err := exec.Command(script, "stop", e.ddbStarted).CombinedOutput(); err != nil {
			fmt.Fprintf(e.term, "dynabench: stopping DynamoDB Local: %v %s\n", err, out)
		}
	}
	switch {
	case e.o.keep:
	case e.run != nil && e.run.failures() > 0:
		// The servers' logs are the evidence of a failure: keep them.
		fmt.Fprintf(e.term, "dynabench: kept the servers' data and logs of the failed run in %s\n", e.work)
	default:
		_ = os.RemoveAll(e.work)
	}
}

// awsEnv is the environment of a server talking to DynamoDB Local, which
// accepts any credentials but the SDK insists on having some.
func awsEnv() []string {
	var env []string
	for k, v := range map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"} {
		if os.Getenv(k) == "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// server is one running system under test.
type server struct {
	*proc
	system, store string
	args          []string
	env           []string
	http          *http.Client
	table         string // DynamoDB table, "" on bolt
	dataPath      string // bolt file
}

// startDynamerge starts ./cmd/dynamerge on store; extra flags follow.
func (e *env) startDynamerge(ctx context.Context, store string, extra ...string) (*server, error) {
	n := e.seq.Add(1)
	s := &server{system: sysDynamerge, store: store, http: newHTTPClient()}
	switch store {
	case storeBolt:
		s.dataPath = filepath.Join(e.work, fmt.Sprintf("dynamerge-%d.db", n))
		s.args = []string{"--store", "bolt:" + s.dataPath}
	case storeDynamo:
		s.table = fmt.Sprintf("dynabench-%d-%d", e.o.seed%100000, n)
		s.args = []string{"--store", "dynamodb:" + s.table, "--dynamodb-endpoint", e.ddbURL, "--create-table"}
		s.env = awsEnv()
	}
	s.args = append(s.args, "--log-level", "warn")
	if e.dynamergeIPLimit {
		// Every simulated client comes from 127.0.0.1; a per-address limit
		// meant for the many addresses of real clients would throttle them
		// as one.
		s.args = append(s.args, "--ip-rate-limit", "0")
	}
	s.args = append(s.args, extra...)
	return s, e.startServer(ctx, s, fmt.Sprintf("dynamerge-%d", n))
}

// restart stops s and starts the same server on the same data: nothing is
// hot any more (the cold-load measurements).
func (e *env) restart(ctx context.Context, s *server) error {
	if err := s.Stop(); err != nil {
		return err
	}
	s.args = removeFlag(s.args, "--create-table")
	return e.startServer(ctx, s, fmt.Sprintf("%s-%d-restart", s.system, e.seq.Add(1)))
}

func (e *env) startServer(ctx context.Context, s *server, name string) error {
	bin, args, health := e.dynamergeBin, s.args, "/readyz"
	if s.system == sysLWW {
		bin, args, health = e.selfBin, append([]string{"lww-serve"}, s.args...), "/healthz"
	}
	p, err := startProc(ctx, name, bin, args, s.env, "--addr", health, filepath.Join(e.work, name+".log"))
	if err != nil {
		return err
	}
	s.proc = p
	return nil
}

// startLWW starts the last-writer-wins baseline on store.
func (e *env) startLWW(ctx context.Context, store string) (*server, error) {
	n := e.seq.Add(1)
	s := &server{system: sysLWW, store: store, http: newHTTPClient()}
	switch store {
	case storeBolt:
		s.dataPath = filepath.Join(e.work, fmt.Sprintf("lww-%d.db", n))
		s.args = []string{"--store", "bolt:" + s.dataPath}
	case storeDynamo:
		s.table = fmt.Sprintf("dynabench-lww-%d-%d", e.o.seed%100000, n)
		s.args = []string{"--store", "dynamodb:" + s.table, "--dynamodb-endpoint", e.ddbURL}
		s.env = awsEnv()
	}
	return s, e.startServer(ctx, s, fmt.Sprintf("lww-%d", n))
}

func removeFlag(args []string, flag string) []string {
	var out []string
	for _, a := range args {
		if a != flag {
			out = append(out, a)
		}
	}
	return out
}

// newHTTPClient returns a client with an idle pool as large as the
// benchmarks' concurrency: Go's default of 2 idle connections per host would
// make 64 clients open a connection per request and measure TIME_WAIT.
func newHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute},
		Timeout:   2 * time.Minute,
	}
}

// bar returns a progress bar for one run of a scenario.
func (e *env) bar(total int, desc string) *progressbar.ProgressBar {
	return progressbar.NewOptions(total,
		progressbar.OptionSetWriter(e.term),
		progressbar.OptionSetDescription(fmt.Sprintf("%-44s", desc)),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(e.term) }),
	)
}

// machineInfo describes where the run happened.
func machineInfo(ctx context.Context) Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, LoadAvgStart: loadAvg()}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			var kb int64
			if _, err := fmt.Sscanf(l, "MemTotal: %d kB", &kb); err == nil {
				m.MemoryBytes = kb << 10
			}
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if out, err := exec.CommandContext(ctx, "node", "--version").Output(); err == nil {
		m.NodeVersion = strings.TrimSpace(string(out))
	}
	if out, err := exec.CommandContext(ctx, "java", "-version").CombinedOutput(); err == nil {
		m.JavaVersion = strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
	}
	if out, err := exec.CommandContext(ctx, "uname", "-sr").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
