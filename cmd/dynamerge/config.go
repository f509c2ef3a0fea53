package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/server"
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
	// DefaultPurgeDeletedAfter is how long a deleted record keeps its
	// history before it is purged (PROTOCOL.md, Record lifecycle).
	DefaultPurgeDeletedAfter = 30 * 24 * time.Hour

	// DefaultMaxConnections stays below the usual open-file limits
	// (ulimit -n) once the store's files and sockets are counted.
	DefaultMaxConnections = 4096
	// DefaultMaxSSE bounds the event streams of the process: each costs
	// about 60 KB (a connection, a goroutine, a subscription), so 2048
	// cost about 120 MB.
	DefaultMaxSSE = 2048
	// DefaultMaxRequestsPerSubject is far above what one user's devices
	// send at once (the clients sync records in batches), far below the
	// connection cap.
	DefaultMaxRequestsPerSubject = 32
)

// Limits on configuration values. They exist to turn typos (a missing
// suffix, an extra zero) into start-up errors rather than surprises later.
const (
	maxWorkers      = 256
	maxOpsPerChange = 1 << 30
	minMetricsToken = 16
)

// errUsage marks configuration errors: they map to exit code 2, the
// conventional code for "bad command line".
var errUsage = errors.New("invalid configuration")

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
	// PurgeDeletedAfter is how long a deleted record keeps its history;
	// 0 never purges.
	PurgeDeletedAfter time.Duration
	// NoGroupCommit writes every push to the store on its own instead of
	// batching concurrent pushes of a record; it exists so that the
	// benchmarks can show what group commit saves, not for production.
	NoGroupCommit bool
	// DynamoDBEndpoint overrides DynamoDB's endpoint (DynamoDB Local);
	// empty means AWS's. Region and credentials come from the standard AWS
	// chain (environment, shared config, instance and container roles).
	DynamoDBEndpoint string
	// CreateTable creates the DynamoDB table at start-up when it does not
	// exist (development; production uses schema/cloudformation.yaml).
	CreateTable     bool
	LogLevel        string
	LogFormat       string
	ShutdownTimeout time.Duration

	// Security (issue 6): tokens, limits against abuse. See securityOptions.
	AuthHS256Secret    string
	AuthJWKS           string
	AuthIssuer         string
	AuthAudience       string // comma-separated
	AuthClaim          string
	AuthLeeway         time.Duration
	RateLimit          float64
	RateBurst          int
	IPRateLimit        float64
	IPRateBurst        int
	TrustedProxyHeader string
	MaxSSEPerSubject   int
	MaxSSE             int
	// Slow and greedy clients (issue 18): see connectionOptions.
	MaxRequestsPerSubject int
	MaxConnections        int
	BodyTimeout           time.Duration
	MinBodyRate           int64
	MetricsToken          string
	CORSOrigins           string // comma-separated
	MaxOpsPerChange       int
	MaxOpsPerRecord       int64

	// Large DynamoDB deployments (issue 15): see scaleOptions.
	PeerListen   string
	PeerURL      string
	PeerSecret   string
	StreamLeases int
	FeedShards   int
}

// DefaultConfig returns the configuration used when no flag or environment
// variable is given.
func DefaultConfig() Config {
	return Config{
		Addr:              DefaultAddr,
		Store:             DefaultStore,
		MaxBodyBytes:      DefaultMaxBodyBytes,
		MaxChangeBytes:    engine.DefaultMaxChangeBytes,
		MaxRecordBytes:    engine.DefaultMaxRecordBytes,
		CacheBytes:        engine.DefaultCacheBytes,
		CompactEvery:      engine.DefaultCompactEvery,
		LogLevel:          DefaultLogLevel,
		LogFormat:         DefaultLogFormat,
		ShutdownTimeout:   DefaultShutdownTimeout,
		PurgeDeletedAfter: DefaultPurgeDeletedAfter,

		AuthClaim:        server.DefaultClaim,
		AuthLeeway:       server.DefaultLeeway,
		RateLimit:        server.DefaultRatePerSecond,
		RateBurst:        server.DefaultRateBurst,
		IPRateLimit:      server.DefaultRatePerSecond,
		IPRateBurst:      server.DefaultRateBurst,
		MaxSSEPerSubject: server.DefaultMaxSSEPerSubject,
		MaxSSE:           DefaultMaxSSE,

		MaxRequestsPerSubject: DefaultMaxRequestsPerSubject,
		MaxConnections:        DefaultMaxConnections,
		BodyTimeout:           server.DefaultBodyTimeout,
		MinBodyRate:           server.DefaultMinBodyRate,
		MaxOpsPerChange:       crdt.DefaultMaxOps,
	}
}

// helpHint ends the errors of a flag that does not parse.
const helpHint = "(dynamerge --help lists the flags)"

// ParseConfig builds the configuration from defaults, then environment
// variables, then flags (the flag wins over its variable). lookupEnv is
// os.LookupEnv in production; an empty variable counts as unset, so that
// `DYNAMERGE_ADDR= dynamerge` behaves like no variable at all. The result is
// validated. Errors wrap errUsage (or are flag.ErrHelp, after the usage was
// written to output) and name the flag, or the variable when the value came
// from the environment.
func ParseConfig(args []string, lookupEnv func(string) (string, bool), output io.Writer) (Config, error) {
	c := DefaultConfig()
	fs := newFlagSet(&c)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(output, fs)
			return c, err
		}
		return c, fmt.Errorf("%w: %v %s", errUsage, err, helpHint)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("%w: unexpected argument %q (all settings are --flags) %s", errUsage, fs.Arg(0), helpHint)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	fromEnv := map[string]string{} // flag name → its variable
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
		fromEnv[o.flag] = o.env
	}
	if err := c.validate(func(flagName string) string {
		if env, ok := fromEnv[flagName]; ok {
			return env
		}
		return "--" + flagName
	}); err != nil {
		return c, fmt.Errorf("%w: %w", errUsage, err)
	}
	return c, nil
}

// Validate checks every field and returns all problems found, each naming
// its flag.
func (c Config) Validate() error {
	return c.validate(func(flagName string) string { return "--" + flagName })
}

// validate is Validate with the culprit of each problem named by name.
func (c Config) validate(name func(flagName string) string) error {
	var errs []error
	bad := func(flagName, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name(flagName), fmt.Sprintf(format, args...)))
	}
	if host, port, err := net.SplitHostPort(c.Addr); err != nil {
		bad("addr", "%q is not host:port: %v", c.Addr, err)
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		bad("addr", "%q has an invalid port %q", c.Addr, port)
	} else if !isLoopback(host) && !c.ListenAnyInsecure && !c.AuthConfigured() {
		bad("addr", "%q is not a loopback address and no authentication is configured: anyone who can reach it could read and write every record; pass --listen-any-insecure to do it anyway", c.Addr)
	}
	kind, _, err := ParseStore(c.Store)
	if err != nil {
		bad("store", "%v", err)
	}
	if c.DynamoDBEndpoint != "" {
		if u, err := url.Parse(c.DynamoDBEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("dynamodb-endpoint", "%q is not an http:// or https:// URL", c.DynamoDBEndpoint)
		}
	}
	if c.CreateTable && err == nil && kind != StoreDynamoDB {
		bad("create-table", "only applies to --store dynamodb:<table>, not %q", c.Store)
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
	if c.Workers < 0 || c.Workers > maxWorkers {
		bad("workers", "must be between 0 and %d, got %d", maxWorkers, c.Workers)
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
	if c.PurgeDeletedAfter < 0 || c.PurgeDeletedAfter > 0 && c.PurgeDeletedAfter < time.Second {
		bad("purge-deleted-after", "must be 0 (never) or at least 1s, got %s", c.PurgeDeletedAfter)
	}
	c.validateSecurity(bad)
	c.validateScale(bad)
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
