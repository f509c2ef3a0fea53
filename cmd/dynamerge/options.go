package main

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// option describes one setting: its flag, its environment variable and how
// to bind it. The table drives parsing and --help, so they cannot drift
// apart; the README's tables are written by hand from it.
type option struct {
	flag  string
	env   string
	usage string
	bind  func(fs *flag.FlagSet, c *Config, name, usage string)
}

// options lists every setting: the server's, the security ones, then those
// of large DynamoDB deployments.
var options = slices.Concat(serverOptions, securityOptions, scaleOptions)

// serverOptions are the settings of the server, its store and its logs
// (README "Configuration").
var serverOptions = []option{
	stringOpt("addr", "address to listen on (host:port); a non-loopback address needs --auth-hs256-secret or --auth-jwks (or --listen-any-insecure)",
		func(c *Config) *string { return &c.Addr }),
	boolOpt("listen-any-insecure", "allow a non-loopback --addr although no authentication is configured (anyone reaching it may read and write everything)",
		func(c *Config) *bool { return &c.ListenAnyInsecure }),
	stringOpt("store", "where records live: bolt:<path> (one process) or dynamodb:<table> (any number of processes)",
		func(c *Config) *string { return &c.Store }),
	stringOpt("dynamodb-endpoint", "DynamoDB endpoint URL, for DynamoDB Local (e.g. http://127.0.0.1:8000); empty means AWS (region and credentials from the standard AWS chain)",
		func(c *Config) *string { return &c.DynamoDBEndpoint }),
	boolOpt("create-table", "development: create the --store dynamodb:<table> table if it does not exist (production: schema/cloudformation.yaml)",
		func(c *Config) *bool { return &c.CreateTable }),
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
	boolOpt("no-group-commit", "benchmarking only: write every push separately instead of batching concurrent pushes of a record",
		func(c *Config) *bool { return &c.NoGroupCommit }),
	stringOpt("log-level", "debug, info, warn or error",
		func(c *Config) *string { return &c.LogLevel }),
	stringOpt("log-format", "text or json",
		func(c *Config) *string { return &c.LogFormat }),
	durationOpt("shutdown-timeout", "how long a graceful shutdown may take (e.g. 30s)",
		func(c *Config) *time.Duration { return &c.ShutdownTimeout }),
	durationOpt("purge-deleted-after", "how long a deleted record keeps its history before it is purged, leaving a tombstone (0: never)",
		func(c *Config) *time.Duration { return &c.PurgeDeletedAfter }),
}

// envName turns "max-body-bytes" into "DYNAMERGE_MAX_BODY_BYTES".
func envName(flagName string) string {
	return "DYNAMERGE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// newOption builds the option of a flag whose value is v(c); the flag's
// variable is named after it.
func newOption(name, usage string, v func(c *Config) flag.Value) option {
	return option{flag: name, env: envName(name), usage: usage, bind: func(fs *flag.FlagSet, c *Config, n, u string) {
		fs.Var(v(c), n, u)
	}}
}

func stringOpt(name, usage string, field func(*Config) *string) option {
	return newOption(name, usage, func(c *Config) flag.Value { return (*stringValue)(field(c)) })
}

func boolOpt(name, usage string, field func(*Config) *bool) option {
	return newOption(name, usage, func(c *Config) flag.Value { return (*boolValue)(field(c)) })
}

func intOpt(name, usage string, field func(*Config) *int) option {
	return newOption(name, usage, func(c *Config) flag.Value { return (*intValue)(field(c)) })
}

func int64Opt(name, usage string, field func(*Config) *int64) option {
	return newOption(name, usage, func(c *Config) flag.Value { return (*int64Value)(field(c)) })
}

func floatOpt(name, usage string, field func(*Config) *float64) option {
	return newOption(name, usage, func(c *Config) flag.Value { return (*floatValue)(field(c)) })
}

func durationOpt(name, usage string, field func(*Config) *time.Duration) option {
	return newOption(name, usage, func(c *Config) flag.Value { return (*durationValue)(field(c)) })
}

func sizeOpt(name, usage string, field func(*Config) *int64) option {
	return newOption(name, usage, func(c *Config) flag.Value { return (*sizeValue)(field(c)) })
}

// newFlagSet binds every option to c. It prints nothing: ParseConfig
// reports a bad flag as one error, and prints the usage only for --help.
func newFlagSet(c *Config) *flag.FlagSet {
	fs := flag.NewFlagSet("dynamerge", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	for _, o := range options {
		o.bind(fs, c, o.flag, fmt.Sprintf("%s (env %s)", o.usage, o.env))
	}
	return fs
}

// printUsage writes --help: every flag with the kind of value it takes, its
// usage and its default.
func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: dynamerge [flags]\n\nThe dynamerge sync server. Flags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		line := "  --" + f.Name
		if k, ok := f.Value.(interface{ kind() string }); ok && k.kind() != "" {
			line += " " + k.kind()
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, strings.ReplaceAll(f.Usage, "\n", "\n    \t"))
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}
