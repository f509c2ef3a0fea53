package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
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

	// Security (issue 6): tokens, limits against abuse. See authFlags.
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

func durationOpt(name, usage string, field func(*Config) *time.Duration) option {
	return option{flag: name, env: envName(name), usage: usage, bind: func(fs *flag.FlagSet, c *Config, n, u string) {
		fs.DurationVar(field(c), n, *field(c), u)
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
	stringOpt("addr", "address to listen on (host:port); a non-loopback address needs --auth-hs256-secret or --auth-jwks (or --listen-any-insecure)",
		func(c *Config) *string { return &c.Addr }),
	{flag: "listen-any-insecure", env: envName("listen-any-insecure"),
		usage: "allow a non-loopback --addr although no authentication is configured (anyone reaching it may read and write everything)",
		bind: func(fs *flag.FlagSet, c *Config, n, u string) {
			fs.BoolVar(&c.ListenAnyInsecure, n, c.ListenAnyInsecure, u)
		}},
	stringOpt("store", "where records live: bolt:<path> (one process) or dynamodb:<table> (any number of processes)",
		func(c *Config) *string { return &c.Store }),
	stringOpt("dynamodb-endpoint", "DynamoDB endpoint URL, for DynamoDB Local (e.g. http://127.0.0.1:8000); empty means AWS (region and credentials from the standard AWS chain)",
		func(c *Config) *string { return &c.DynamoDBEndpoint }),
	{flag: "create-table", env: envName("create-table"),
		usage: "development: create the --store dynamodb:<table> table if it does not exist (production: schema/cloudformation.yaml)",
		bind: func(fs *flag.FlagSet, c *Config, n, u string) {
			fs.BoolVar(&c.CreateTable, n, c.CreateTable, u)
		}},
	sizeOpt("max-body-bytes", "largest accepted HTTP request body (e.g. 16MiB)",
		func(c *Config) *int64 { return &c.MaxBodyBytes }),
	sizeOpt("max-change-bytes", "largest accepted Automerge change chunk",
		func(c *Config) *int64 { return &c.MaxChangeBytes }),
	sizeOpt("max-record-bytes", "largest record (sum of its change bytes)",
		func(c *Config) *int64 { return &c.MaxRecordBytes }),
	sizeOpt("cache-bytes", "memory bound for hot records: their indexes, the changes and snapshots they hold, and their materialized documents",
		func(c *Config) *int64 { return &c.CacheBytes }),
	intOpt("workers", "deprecated, no effect: dynamerge no longer starts worker processes",
		func(c *Config) *int { return &c.Workers }),
	intOpt("compact-every", "changes in a record's log before a new snapshot is written",
		func(c *Config) *int { return &c.CompactEvery }),
	{flag: "no-group-commit", env: envName("no-group-commit"),
		usage: "benchmarking only: write every push separately instead of batching concurrent pushes of a record",
		bind: func(fs *flag.FlagSet, c *Config, n, u string) {
			fs.BoolVar(&c.NoGroupCommit, n, c.NoGroupCommit, u)
		}},
	stringOpt("log-level", "debug, info, warn or error",
		func(c *Config) *string { return &c.LogLevel }),
	stringOpt("log-format", "text or json",
		func(c *Config) *string { return &c.LogFormat }),
	durationOpt("shutdown-timeout", "how long a graceful shutdown may take (e.g. 30s)",
		func(c *Config) *time.Duration { return &c.ShutdownTimeout }),
	durationOpt("purge-deleted-after", "how long a deleted record keeps its history before it is purged, leaving a tombstone (0: never)",
		func(c *Config) *time.Duration { return &c.PurgeDeletedAfter }),
}

// authOptions are the security settings (README "Security").
var authOptions = []option{
	stringOpt("auth-hs256-secret", "shared secret (32 bytes or more) verifying HS256 tokens; prefer the environment variable, flags show in ps",
		func(c *Config) *string { return &c.AuthHS256Secret }),
	stringOpt("auth-jwks", "JWKS verifying RS256/ES256 tokens: an https URL (refreshed hourly and on unknown kid) or a file path",
		func(c *Config) *string { return &c.AuthJWKS }),
	stringOpt("auth-issuer", "required token issuer (iss), e.g. https://cognito-idp.<region>.amazonaws.com/<pool id>",
		func(c *Config) *string { return &c.AuthIssuer }),
	stringOpt("auth-audience", "accepted audiences, comma-separated: the token's aud or client_id (Cognito access tokens) must be one",
		func(c *Config) *string { return &c.AuthAudience }),
	stringOpt("auth-claim", "claim holding the collections map; a dotted path reaches nested claims",
		func(c *Config) *string { return &c.AuthClaim }),
	durationOpt("auth-leeway", "clock skew tolerated on exp/nbf/iat (0 to 5m)",
		func(c *Config) *time.Duration { return &c.AuthLeeway }),
	floatOpt("rate-limit", "requests per second per token subject (0: no limit)",
		func(c *Config) *float64 { return &c.RateLimit }),
	intOpt("rate-burst", "requests a subject may send at once above --rate-limit",
		func(c *Config) *int { return &c.RateBurst }),
	floatOpt("ip-rate-limit", "requests per second per client address, for requests without a valid token (every request when auth is off and --addr is not loopback; 0: no limit)",
		func(c *Config) *float64 { return &c.IPRateLimit }),
	intOpt("ip-rate-burst", "requests an address may send at once above --ip-rate-limit",
		func(c *Config) *int { return &c.IPRateBurst }),
	stringOpt("trusted-proxy-header", "header carrying the client address set by your reverse proxy (e.g. X-Forwarded-For, whose last entry is used); empty: the TCP peer, and such headers are ignored",
		func(c *Config) *string { return &c.TrustedProxyHeader }),
	intOpt("max-sse-per-subject", "open /v1/events streams per subject (per address without auth; 0: no limit)",
		func(c *Config) *int { return &c.MaxSSEPerSubject }),
	intOpt("max-sse", "open /v1/events streams of the whole process (0: no limit)",
		func(c *Config) *int { return &c.MaxSSE }),
	intOpt("max-requests-per-subject", "/v1 requests in flight at once per subject (per address without auth), event streams apart (0: no limit)",
		func(c *Config) *int { return &c.MaxRequestsPerSubject }),
	intOpt("max-connections", "open HTTP connections; more wait to be accepted. Keep it below the open-file limit (ulimit -n) (0: no limit)",
		func(c *Config) *int { return &c.MaxConnections }),
	durationOpt("body-timeout", "time a request's headers and the start of its body may take; then the body must keep --min-body-rate",
		func(c *Config) *time.Duration { return &c.BodyTimeout }),
	sizeOpt("min-body-rate", "bytes per second a request body must average after --body-timeout; slower ones are cut (408)",
		func(c *Config) *int64 { return &c.MinBodyRate }),
	stringOpt("metrics-token", "when set, GET /metrics needs Authorization: Bearer <token> (16 bytes or more; prefer the environment variable); empty: /metrics is public",
		func(c *Config) *string { return &c.MetricsToken }),
	stringOpt("cors-origins", "origins allowed to call the API from a browser, comma-separated (* for any); empty: CORS off",
		func(c *Config) *string { return &c.CORSOrigins }),
	intOpt("max-ops-per-change", "most operations in one change, deletions included (the allocation budget bounds the others by the change's bytes)",
		func(c *Config) *int { return &c.MaxOpsPerChange }),
	{flag: "max-ops-per-record", env: envName("max-ops-per-record"),
		usage: "most operations in one record's history, beyond its allocation budget (0: no cap but the budget)",
		bind: func(fs *flag.FlagSet, c *Config, n, u string) {
			fs.Int64Var(&c.MaxOpsPerRecord, n, c.MaxOpsPerRecord, u)
		}},
}

func init() { options = append(options, authOptions...) }

func floatOpt(name, usage string, field func(*Config) *float64) option {
	return option{flag: name, env: envName(name), usage: usage, bind: func(fs *flag.FlagSet, c *Config, n, u string) {
		fs.Float64Var(field(c), n, *field(c), u)
	}}
}

// AuthConfigured reports whether tokens are required.
func (c Config) AuthConfigured() bool { return c.AuthHS256Secret != "" || c.AuthJWKS != "" }

// validateSecurity checks the security settings; bad reports a problem.
func (c Config) validateSecurity(bad func(flagName, format string, args ...any)) {
	if c.AuthHS256Secret != "" && len(c.AuthHS256Secret) < server.MinHS256SecretBytes {
		bad("auth-hs256-secret", "%d bytes, want at least %d (e.g. openssl rand -base64 32)", len(c.AuthHS256Secret), server.MinHS256SecretBytes)
	}
	if j := c.AuthJWKS; j != "" {
		if u, err := url.Parse(j); err == nil && u.Scheme != "" && len(u.Scheme) > 1 {
			if u.Scheme != "https" || u.Host == "" {
				bad("auth-jwks", "%q: a URL must be https://host/...; a file is a plain path", j)
			}
		}
	}
	if !c.AuthConfigured() {
		for _, f := range []struct{ flag, v string }{{"auth-issuer", c.AuthIssuer}, {"auth-audience", c.AuthAudience}} {
			if f.v != "" {
				bad(f.flag, "set, but neither --auth-hs256-secret nor --auth-jwks is: no token would be checked")
			}
		}
	}
	if c.AuthClaim == "" {
		bad("auth-claim", "must not be empty")
	}
	if c.AuthLeeway < 0 || c.AuthLeeway > 5*time.Minute {
		bad("auth-leeway", "must be between 0 and 5m, got %s", c.AuthLeeway)
	}
	for _, r := range []struct {
		flag  string
		rate  float64
		burst int
	}{{"rate-limit", c.RateLimit, c.RateBurst}, {"ip-rate-limit", c.IPRateLimit, c.IPRateBurst}} {
		if r.rate < 0 || r.rate != r.rate {
			bad(r.flag, "must be 0 or positive, got %v", r.rate)
		}
		if r.rate > 0 && r.burst < 1 {
			bad(strings.Replace(r.flag, "limit", "burst", 1), "must be at least 1, got %d", r.burst)
		}
	}
	if h := c.TrustedProxyHeader; h != "" && strings.ContainsAny(h, " :\t\r\n") {
		bad("trusted-proxy-header", "%q is not a header name", h)
	}
	for _, n := range []struct {
		flag string
		v    int
	}{{"max-sse-per-subject", c.MaxSSEPerSubject}, {"max-sse", c.MaxSSE}, {"max-requests-per-subject", c.MaxRequestsPerSubject}, {"max-connections", c.MaxConnections}} {
		if n.v < 0 {
			bad(n.flag, "must be 0 or positive, got %d", n.v)
		}
	}
	if t := c.MetricsToken; t != "" && len(t) < minMetricsToken {
		bad("metrics-token", "%d bytes, want at least %d (e.g. openssl rand -base64 24)", len(t), minMetricsToken)
	}
	if c.BodyTimeout <= 0 {
		bad("body-timeout", "must be positive, got %s", c.BodyTimeout)
	}
	if c.MinBodyRate <= 0 {
		bad("min-body-rate", "must be positive, got %d", c.MinBodyRate)
	}
	for _, o := range c.CORSOriginList() {
		if o == "*" {
			continue
		}
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			bad("cors-origins", "%q is not an origin like https://app.example.com", o)
		}
	}
	if c.MaxOpsPerChange <= 0 || c.MaxOpsPerChange > maxOpsPerChange {
		bad("max-ops-per-change", "must be between 1 and %d, got %d", maxOpsPerChange, c.MaxOpsPerChange)
	}
	if c.MaxOpsPerRecord < 0 {
		bad("max-ops-per-record", "must be 0 (no cap) or positive, got %d", c.MaxOpsPerRecord)
	}
}

// CORSOriginList splits --cors-origins.
func (c Config) CORSOriginList() []string { return splitList(c.CORSOrigins) }

// AudienceList splits --auth-audience.
func (c Config) AudienceList() []string { return splitList(c.AuthAudience) }

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
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
		return "", "", fmt.Errorf("%q: want bolt:<path> or dynamodb:<table>", s)
	}
	switch StoreKind(kind) {
	case StoreBolt:
		if arg == "" {
			return "", "", fmt.Errorf("%q: bolt needs a file path, as in bolt:./dynamerge-data/dynamerge.db", s)
		}
		return StoreBolt, arg, nil
	case StoreDynamoDB:
		if !validTableName(arg) {
			return "", "", fmt.Errorf("%q: a DynamoDB table name is 3 to 255 letters, digits, '_', '-' or '.', as in dynamodb:dynamerge", s)
		}
		return StoreDynamoDB, arg, nil
	default:
		return "", "", fmt.Errorf("%q: unknown store %q; want bolt:<path> or dynamodb:<table>", s, kind)
	}
}

// validTableName reports whether name follows DynamoDB's rules for table
// names, so that a typo fails at start-up with the rule rather than with an
// error from AWS.
func validTableName(name string) bool {
	if len(name) < 3 || len(name) > 255 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
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
