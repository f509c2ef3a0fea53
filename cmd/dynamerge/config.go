package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/dynamerge/dynamerge/crdt/worker"
	"github.com/dynamerge/dynamerge/engine"
)

// Default server settings; the engine's own defaults are reused so that the
// binary and the library never disagree.
const (
	DefaultAddr            = "127.0.0.1:8080"
	DefaultStore           = "bolt:./dynamerge-data/dynamerge.db"
	DefaultMaxBodyBytes    = 16 << 20
	DefaultLogLevel        = "info"
	DefaultLogFormat       = "text"
	DefaultShutdownTimeout = 30 * time.Second
)

// Limits on configuration values. They exist to turn typos (a missing
// suffix, an extra zero) into start-up errors rather than surprises later.
const (
	maxWorkers = 256
)

// errUsage marks configuration errors: they map to exit code 2, the
// conventional code for "bad command line".
var errUsage = errors.New("invalid configuration")

// StoreKind names a store backend.
type StoreKind string

// Store backends understood by --store.
const (
	StoreBolt     StoreKind = "bolt"
	StoreDynamoDB StoreKind = "dynamodb"
)

// Config is the whole configuration of the binary. Every field has a flag
// and an environment variable; the flag wins when both are given.
type Config struct {
	Addr              string
	ListenAnyInsecure bool
	Store             string
	MaxBodyBytes      int64
	MaxChangeBytes    int64
	MaxRecordBytes    int64
	CacheBytes        int64
	Workers           int
	CompactEvery      int
	LogLevel          string
	LogFormat         string
	ShutdownTimeout   time.Duration
}

// DefaultConfig returns the configuration used when no flag or environment
// variable is given.
func DefaultConfig() Config {
	return Config{
		Addr:            DefaultAddr,
		Store:           DefaultStore,
		MaxBodyBytes:    DefaultMaxBodyBytes,
		MaxChangeBytes:  engine.DefaultMaxChangeBytes,
		MaxRecordBytes:  engine.DefaultMaxRecordBytes,
		CacheBytes:      engine.DefaultCacheBytes,
		Workers:         worker.DefaultProcs,
		CompactEvery:    engine.DefaultCompactEvery,
		LogLevel:        DefaultLogLevel,
		LogFormat:       DefaultLogFormat,
		ShutdownTimeout: DefaultShutdownTimeout,
	}
}

// option describes one setting: its flag, its environment variable and how
// to bind it. The table drives parsing, --help and the README's table, so
// they cannot drift apart.
type option struct {
	flag  string
	env   string
	usage string
	bind  func(fs *flag.FlagSet, c *Config, name, usage string)
}

func sizeOpt(name, usage string, field func(*Config) *int64) option {
	return option{flag: name, env: envName(name), usage: usage, bind: func(fs *flag.FlagSet, c *Config, n, u string) {
		fs.Var((*sizeValue)(field(c)), n, u)
	}}
}

func intOpt(name, usage string, field func(*Config) *int) option {
	return option{flag: name, env: envName(name), usage: usage, bind: func(fs *flag.FlagSet, c *Config, n, u string) {
		fs.IntVar(field(c), n, *field(c), u)
	}}
}

func stringOpt(name, usage string, field func(*Config) *string) option {
	return option{flag: name, env: envName(name), usage: usage, bind: func(fs *flag.FlagSet, c *Config, n, u string) {
		fs.StringVar(field(c), n, *field(c), u)
	}}
}

// envName turns "max-body-bytes" into "DYNAMERGE_MAX_BODY_BYTES".
func envName(flagName string) string {
	return "DYNAMERGE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

var options = []option{
	stringOpt("addr", "address to listen on (host:port); non-loopback needs --listen-any-insecure until auth exists",
		func(c *Config) *string { return &c.Addr }),
	{flag: "listen-any-insecure", env: envName("listen-any-insecure"),
		usage: "allow a non-loopback --addr although no authentication is configured",
		bind: func(fs *flag.FlagSet, c *Config, n, u string) {
			fs.BoolVar(&c.ListenAnyInsecure, n, c.ListenAnyInsecure, u)
		}},
	stringOpt("store", "where records live: bolt:<path> (dynamodb:<table> is not supported yet)",
		func(c *Config) *string { return &c.Store }),
	sizeOpt("max-body-bytes", "largest accepted HTTP request body (e.g. 16MiB)",
		func(c *Config) *int64 { return &c.MaxBodyBytes }),
	sizeOpt("max-change-bytes", "largest accepted Automerge change chunk",
		func(c *Config) *int64 { return &c.MaxChangeBytes }),
	sizeOpt("max-record-bytes", "largest record (sum of its change bytes)",
		func(c *Config) *int64 { return &c.MaxRecordBytes }),
	sizeOpt("cache-bytes", "memory bound for hot records, workers' RSS included",
		func(c *Config) *int64 { return &c.CacheBytes }),
	intOpt("workers", "number of Automerge worker processes",
		func(c *Config) *int { return &c.Workers }),
	intOpt("compact-every", "changes in a record's log before a new snapshot is written",
		func(c *Config) *int { return &c.CompactEvery }),
	stringOpt("log-level", "debug, info, warn or error",
		func(c *Config) *string { return &c.LogLevel }),
	stringOpt("log-format", "text or json",
		func(c *Config) *string { return &c.LogFormat }),
	{flag: "shutdown-timeout", env: envName("shutdown-timeout"),
		usage: "how long a graceful shutdown may take (e.g. 30s)",
		bind: func(fs *flag.FlagSet, c *Config, n, u string) {
			fs.DurationVar(&c.ShutdownTimeout, n, c.ShutdownTimeout, u)
		}},
}

// ParseConfig builds the configuration from defaults, then environment
// variables, then flags (the flag wins over its variable). lookupEnv is
// os.LookupEnv in production; an empty variable counts as unset, so that
// `DYNAMERGE_ADDR= dynamerge` behaves like no variable at all. The result is
// validated. Errors wrap errUsage (or are flag.ErrHelp) and name the flag
// or variable at fault.
func ParseConfig(args []string, lookupEnv func(string) (string, bool), output io.Writer) (Config, error) {
	c := DefaultConfig()
	fs := flag.NewFlagSet("dynamerge", flag.ContinueOnError)
	fs.SetOutput(output)
	for _, o := range options {
		o.bind(fs, &c, o.flag, fmt.Sprintf("%s (env %s)", o.usage, o.env))
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: dynamerge [flags]\n\nThe dynamerge sync server. Flags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		// The flag package already printed the reason and the usage.
		return c, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("%w: unexpected argument %q (all settings are --flags)", errUsage, fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, o := range options {
		if given[o.flag] {
			continue
		}
		v, ok := lookupEnv(o.env)
		if !ok || v == "" {
			continue
		}
		if err := fs.Set(o.flag, v); err != nil {
			return c, fmt.Errorf("%w: %s: invalid value %q: %v", errUsage, o.env, v, err)
		}
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("%w: %w", errUsage, err)
	}
	return c, nil
}

// Validate checks every field and returns all problems found, each naming
// its flag.
func (c Config) Validate() error {
	var errs []error
	bad := func(flagName, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flagName, fmt.Sprintf(format, args...)))
	}
	if host, port, err := net.SplitHostPort(c.Addr); err != nil {
		bad("addr", "%q is not host:port: %v", c.Addr, err)
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		bad("addr", "%q has an invalid port %q", c.Addr, port)
	} else if !isLoopback(host) && !c.ListenAnyInsecure {
		bad("addr", "%q is not a loopback address and no authentication is configured: anyone who can reach it could read and write every record; pass --listen-any-insecure to do it anyway", c.Addr)
	}
	if _, _, err := ParseStore(c.Store); err != nil {
		bad("store", "%v", err)
	}
	positive := []struct {
		flag string
		v    int64
	}{
		{"max-body-bytes", c.MaxBodyBytes},
		{"max-change-bytes", c.MaxChangeBytes},
		{"max-record-bytes", c.MaxRecordBytes},
		{"cache-bytes", c.CacheBytes},
		{"compact-every", int64(c.CompactEvery)},
	}
	for _, p := range positive {
		if p.v <= 0 {
			bad(p.flag, "must be positive, got %d", p.v)
		}
	}
	// The engine takes these as int; refuse what would overflow on 32-bit.
	for _, p := range []struct {
		flag string
		v    int64
	}{{"max-change-bytes", c.MaxChangeBytes}, {"max-record-bytes", c.MaxRecordBytes}} {
		if p.v > int64(^uint(0)>>1) {
			bad(p.flag, "%d is too large for this platform", p.v)
		}
	}
	if c.MaxChangeBytes > 0 && c.MaxRecordBytes > 0 && c.MaxChangeBytes > c.MaxRecordBytes {
		bad("max-change-bytes", "%d exceeds --max-record-bytes %d: no such change could ever be stored", c.MaxChangeBytes, c.MaxRecordBytes)
	}
	if c.Workers < 1 || c.Workers > maxWorkers {
		bad("workers", "must be between 1 and %d, got %d", maxWorkers, c.Workers)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		bad("log-level", "%v", err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log-format", "must be text or json, got %q", c.LogFormat)
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown-timeout", "must be positive, got %s", c.ShutdownTimeout)
	}
	return errors.Join(errs...)
}

// isLoopback reports whether host names only the local machine. An empty
// host means every interface, which is not loopback.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// ParseStore splits a --store value into its backend and its argument.
func ParseStore(s string) (StoreKind, string, error) {
	kind, arg, ok := strings.Cut(s, ":")
	if !ok {
		return "", "", fmt.Errorf("%q: want bolt:<path>", s)
	}
	switch StoreKind(kind) {
	case StoreBolt:
		if arg == "" {
			return "", "", fmt.Errorf("%q: bolt needs a file path, as in bolt:./dynamerge-data/dynamerge.db", s)
		}
		return StoreBolt, arg, nil
	case StoreDynamoDB:
		return "", "", fmt.Errorf("%q: the DynamoDB store is not supported yet; use bolt:<path>", s)
	default:
		return "", "", fmt.Errorf("%q: unknown store %q; want bolt:<path>", s, kind)
	}
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("must be debug, info, warn or error, got %q", s)
}

// sizeValue is a flag.Value for byte sizes with an optional unit.
type sizeValue int64

func (s *sizeValue) String() string { return formatSize(int64(*s)) }

func (s *sizeValue) Set(v string) error {
	n, err := ParseSize(v)
	if err != nil {
		return err
	}
	*s = sizeValue(n)
	return nil
}

// sizeUnits maps unit suffixes to multipliers. KiB/MiB/GiB are binary and
// KB/MB/GB decimal, as their names say; bare K/M/G are binary, the common
// meaning for memory sizes (as in docker --memory).
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "kib": 1 << 10, "kb": 1000,
	"m": 1 << 20, "mib": 1 << 20, "mb": 1000 * 1000,
	"g": 1 << 30, "gib": 1 << 30, "gb": 1000 * 1000 * 1000,
	"t": 1 << 40, "tib": 1 << 40, "tb": 1000 * 1000 * 1000 * 1000,
}

// ParseSize parses "16MiB", "512KB", "4g" or "1048576" into bytes. Units are
// case-insensitive; the number is a non-negative integer.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("size %q: want a whole number with an optional unit (B, KiB, MiB, GiB, KB, MB, GB)", s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	mult, ok := sizeUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q (want B, KiB, MiB, GiB, KB, MB, GB)", s, t[i:])
	}
	if n > 0 && mult > (1<<63-1)/n {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return n * mult, nil
}

// formatSize prints n with the largest binary unit that divides it exactly.
func formatSize(n int64) string {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}
	for _, u := range units {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
