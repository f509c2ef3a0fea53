package main

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

// envMap returns a lookupEnv over m.
func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestParseConfig(t *testing.T) {
	def := DefaultConfig()
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want func(c *Config) // edits def into the expected config
	}{
		{name: "defaults", want: func(c *Config) {}},
		{
			name: "flags",
			args: []string{"--addr", "127.0.0.1:9000", "--store", "bolt:/tmp/x.db", "--max-body-bytes", "1MiB",
				"--max-change-bytes", "512KiB", "--max-record-bytes", "2GiB", "--cache-bytes", "100MB",
				"--workers", "4", "--compact-every", "50", "--log-level", "debug", "--log-format", "json",
				"--shutdown-timeout", "5s"},
			want: func(c *Config) {
				c.Addr, c.Store, c.MaxBodyBytes = "127.0.0.1:9000", "bolt:/tmp/x.db", 1<<20
				c.MaxChangeBytes, c.MaxRecordBytes, c.CacheBytes = 512<<10, 2<<30, 100_000_000
				c.Workers, c.CompactEvery, c.LogLevel, c.LogFormat = 4, 50, "debug", "json"
				c.ShutdownTimeout = 5 * time.Second
			},
		},
		{
			name: "env",
			env: map[string]string{"DYNAMERGE_ADDR": "[::1]:7000", "DYNAMERGE_STORE": "bolt:data.db",
				"DYNAMERGE_MAX_BODY_BYTES": "2m", "DYNAMERGE_WORKERS": "3", "DYNAMERGE_LOG_FORMAT": "json",
				"DYNAMERGE_SHUTDOWN_TIMEOUT": "1m", "DYNAMERGE_CACHE_BYTES": "1048576"},
			want: func(c *Config) {
				c.Addr, c.Store, c.MaxBodyBytes, c.Workers = "[::1]:7000", "bolt:data.db", 2<<20, 3
				c.LogFormat, c.ShutdownTimeout, c.CacheBytes = "json", time.Minute, 1<<20
			},
		},
		{
			name: "flag wins over env",
			args: []string{"--addr=localhost:1234", "--workers=1"},
			env:  map[string]string{"DYNAMERGE_ADDR": "127.0.0.1:1", "DYNAMERGE_WORKERS": "8", "DYNAMERGE_COMPACT_EVERY": "7"},
			want: func(c *Config) { c.Addr, c.Workers, c.CompactEvery = "localhost:1234", 1, 7 },
		},
		{
			name: "empty env counts as unset",
			env:  map[string]string{"DYNAMERGE_ADDR": "", "DYNAMERGE_WORKERS": ""},
			want: func(c *Config) {},
		},
		{
			name: "non-loopback allowed when insecure is asked for",
			args: []string{"--addr", "0.0.0.0:8080", "--listen-any-insecure"},
			want: func(c *Config) { c.Addr, c.ListenAnyInsecure = "0.0.0.0:8080", true },
		},
		{
			name: "insecure from env",
			env:  map[string]string{"DYNAMERGE_ADDR": ":8080", "DYNAMERGE_LISTEN_ANY_INSECURE": "true"},
			want: func(c *Config) { c.Addr, c.ListenAnyInsecure = ":8080", true },
		},
		{
			name: "dynamodb from flags",
			args: []string{"--store", "dynamodb:dynamerge.prod_1", "--dynamodb-endpoint", "http://127.0.0.1:8000", "--create-table"},
			want: func(c *Config) {
				c.Store, c.DynamoDBEndpoint, c.CreateTable = "dynamodb:dynamerge.prod_1", "http://127.0.0.1:8000", true
			},
		},
		{
			name: "dynamodb from env",
			env: map[string]string{"DYNAMERGE_STORE": "dynamodb:records", "DYNAMERGE_DYNAMODB_ENDPOINT": "https://dynamodb.eu-west-1.amazonaws.com",
				"DYNAMERGE_CREATE_TABLE": "true"},
			want: func(c *Config) {
				c.Store, c.DynamoDBEndpoint, c.CreateTable = "dynamodb:records", "https://dynamodb.eu-west-1.amazonaws.com", true
			},
		},
		{
			// make test exports DYNAMERGE_DYNAMODB_ENDPOINT for the store's
			// tests; a bolt server started under it must not mind.
			name: "dynamodb endpoint ignored by bolt",
			env:  map[string]string{"DYNAMERGE_DYNAMODB_ENDPOINT": "http://127.0.0.1:8000"},
			want: func(c *Config) { c.DynamoDBEndpoint = "http://127.0.0.1:8000" },
		},
		{
			name: "port zero picks a free port",
			args: []string{"--addr", "127.0.0.1:0"},
			want: func(c *Config) { c.Addr = "127.0.0.1:0" },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConfig(tt.args, envMap(tt.env), io.Discard)
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			want := def
			tt.want(&want)
			if got != want {
				t.Fatalf("ParseConfig()=\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string // substrings of the error, the first naming the culprit
	}{
		{name: "non-loopback without auth", args: []string{"--addr", "0.0.0.0:8080"}, want: []string{"--addr", "--listen-any-insecure"}},
		{name: "all interfaces without auth", args: []string{"--addr", ":8080"}, want: []string{"--addr", "loopback"}},
		{name: "addr without port", args: []string{"--addr", "127.0.0.1"}, want: []string{"--addr", "host:port"}},
		{name: "addr bad port", args: []string{"--addr", "127.0.0.1:99999"}, want: []string{"--addr", "port"}},
		{name: "dynamodb without table", args: []string{"--store", "dynamodb:"}, want: []string{"--store", "table name"}},
		{name: "dynamodb bad table name", args: []string{"--store", "dynamodb:my/table"}, want: []string{"--store", "table name"}},
		{name: "dynamodb table name too short", args: []string{"--store", "dynamodb:ab"}, want: []string{"--store", "3 to 255"}},
		{name: "dynamodb endpoint not a URL", args: []string{"--store", "dynamodb:records", "--dynamodb-endpoint", "127.0.0.1:8000"}, want: []string{"--dynamodb-endpoint", "http://"}},
		{name: "create-table with bolt", args: []string{"--create-table"}, want: []string{"--create-table", "dynamodb:<table>"}},
		{name: "bad env create-table", env: map[string]string{"DYNAMERGE_CREATE_TABLE": "sure"}, want: []string{"DYNAMERGE_CREATE_TABLE"}},
		{name: "unknown store", args: []string{"--store", "s3:bucket"}, want: []string{"--store", "unknown store"}},
		{name: "store without kind", args: []string{"--store", "./data.db"}, want: []string{"--store", "bolt:<path>"}},
		{name: "bolt without path", args: []string{"--store", "bolt:"}, want: []string{"--store", "file path"}},
		{name: "bad size unit", args: []string{"--max-body-bytes", "16XB"}, want: []string{"max-body-bytes", "unknown unit"}},
		{name: "size not a number", args: []string{"--cache-bytes", "lots"}, want: []string{"cache-bytes", "whole number"}},
		{name: "size overflow", args: []string{"--cache-bytes", "99999999999TiB"}, want: []string{"cache-bytes", "too large"}},
		{name: "zero body", args: []string{"--max-body-bytes", "0"}, want: []string{"--max-body-bytes", "positive"}},
		{name: "change over record", args: []string{"--max-change-bytes", "2MiB", "--max-record-bytes", "1MiB"}, want: []string{"--max-change-bytes", "--max-record-bytes"}},
		{name: "too many workers", args: []string{"--workers", "100000"}, want: []string{"--workers"}},
		{name: "negative compact", args: []string{"--compact-every", "-1"}, want: []string{"--compact-every", "positive"}},
		{name: "bad log level", args: []string{"--log-level", "loud"}, want: []string{"--log-level", "debug, info, warn or error"}},
		{name: "bad log format", args: []string{"--log-format", "xml"}, want: []string{"--log-format", "text or json"}},
		{name: "zero shutdown timeout", args: []string{"--shutdown-timeout", "0s"}, want: []string{"--shutdown-timeout", "positive"}},
		{name: "bad duration", args: []string{"--shutdown-timeout", "soon"}, want: []string{"shutdown-timeout"}},
		{name: "unknown flag", args: []string{"--port", "80"}, want: []string{"-port", "--help"}},
		{name: "positional argument", args: []string{"serve"}, want: []string{`"serve"`}},
		{name: "bad env names the variable", env: map[string]string{"DYNAMERGE_WORKERS": "many"}, want: []string{"DYNAMERGE_WORKERS"}},
		{name: "bad env size", env: map[string]string{"DYNAMERGE_MAX_BODY_BYTES": "1 parsec"}, want: []string{"DYNAMERGE_MAX_BODY_BYTES", "unknown unit"}},
		{name: "invalid env value validated", env: map[string]string{"DYNAMERGE_LOG_FORMAT": "yaml"}, want: []string{"DYNAMERGE_LOG_FORMAT", "text or json"}},
		{name: "invalid env level names the variable", env: map[string]string{"DYNAMERGE_LOG_LEVEL": "loud"}, want: []string{"DYNAMERGE_LOG_LEVEL", "debug, info, warn or error"}},
		{name: "duration without a unit", args: []string{"--shutdown-timeout", "30"}, want: []string{"shutdown-timeout", "such as 30s", "--help"}},
		{name: "env duration without a unit", env: map[string]string{"DYNAMERGE_BODY_TIMEOUT": "10"}, want: []string{"DYNAMERGE_BODY_TIMEOUT", "such as 30s"}},
		{name: "int not a number", args: []string{"--workers", "some"}, want: []string{"workers", "whole number", "--help"}},
		{name: "int out of range", args: []string{"--max-ops-per-record", "99999999999999999999"}, want: []string{"max-ops-per-record", "out of range"}},
		{name: "float not a number", args: []string{"--rate-limit", "fast"}, want: []string{"rate-limit", "a number"}},
		{name: "several problems at once", args: []string{"--workers", "-1", "--log-format", "xml"}, want: []string{"--workers", "--log-format"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig(tt.args, envMap(tt.env), io.Discard)
			if err == nil {
				t.Fatal("ParseConfig succeeded, want an error")
			}
			if !errors.Is(err, errUsage) {
				t.Errorf("errors.Is(%v, errUsage) = false", err)
			}
			if got, want := exitCode(err, io.Discard), exitUsage; got != want {
				t.Errorf("exitCode()=%d, want %d", got, want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestParseConfigHelp(t *testing.T) {
	var out strings.Builder
	_, err := ParseConfig([]string{"--help"}, envMap(nil), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("ParseConfig(--help) err=%v, want flag.ErrHelp", err)
	}
	if got, want := exitCode(err, io.Discard), exitOK; got != want {
		t.Errorf("exitCode()=%d, want %d", got, want)
	}
	// Every option shows up with its environment variable.
	for _, o := range options {
		if !strings.Contains(out.String(), "-"+o.flag) || !strings.Contains(out.String(), o.env) {
			t.Errorf("usage does not list --%s with %s:\n%s", o.flag, o.env, out.String())
		}
	}
}

// TestParseConfigBadFlagQuiet: a flag that does not parse is one error with
// a hint, not the whole usage; --help still prints the usage.
func TestParseConfigBadFlagQuiet(t *testing.T) {
	for _, args := range [][]string{{"--shutdown-timeout", "30"}, {"--port", "80"}, {"serve"}} {
		var out strings.Builder
		_, err := ParseConfig(args, envMap(nil), &out)
		if err == nil {
			t.Fatalf("ParseConfig(%q) succeeded, want an error", args)
		}
		if out.Len() != 0 {
			t.Errorf("ParseConfig(%q) printed %q, want nothing (the caller prints the error)", args, out.String())
		}
		if got := strings.Count(err.Error(), "\n"); got != 0 {
			t.Errorf("ParseConfig(%q) error has %d newlines, want one line: %q", args, got, err)
		}
		if !strings.Contains(err.Error(), "--help") {
			t.Errorf("ParseConfig(%q) error %q has no --help hint", args, err)
		}
	}
}
