package main

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestScaleConfig(t *testing.T) {
	const secret = "0123456789abcdef"
	dyn := []string{"--store", "dynamodb:records"}
	ok := []struct {
		name string
		args []string
		env  map[string]string
		url  string // the fan-out URL, "" for none
	}{
		{name: "small deployment: nothing", args: dyn},
		{name: "fan-out, URL from the address", args: append([]string{"--peer-listen", "10.0.0.5:7071", "--peer-secret", secret}, dyn...), url: "http://10.0.0.5:7071"},
		{name: "fan-out, secret from the environment", args: append([]string{"--peer-listen", "0.0.0.0:7071", "--peer-url", "http://node-3.internal:7071"}, dyn...), env: map[string]string{"DYNAMERGE_PEER_SECRET": secret}, url: "http://node-3.internal:7071"},
		{name: "feed shards", args: append([]string{"--feed-shards", "32"}, dyn...)},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig(tt.args, envMap(tt.env), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			o := c.dynamoOptions()
			switch {
			case tt.url == "" && o != nil:
				t.Fatalf("dynamoOptions()=%+v, want nil", o)
			case tt.url != "" && (o == nil || o.Fanout == nil || o.Fanout.URL != tt.url || o.Fanout.Secret != secret):
				t.Fatalf("dynamoOptions()=%+v, want fan-out to %s", o, tt.url)
			}
		})
	}
	bad := []struct {
		name string
		args []string
		want []string
	}{
		{"peer-listen with bolt", []string{"--peer-listen", "10.0.0.5:7071", "--peer-secret", secret}, []string{"--peer-listen", "dynamodb"}},
		{"no secret", append([]string{"--peer-listen", "10.0.0.5:7071"}, dyn...), []string{"--peer-secret", "16 bytes"}},
		{"short secret", append([]string{"--peer-listen", "10.0.0.5:7071", "--peer-secret", "short"}, dyn...), []string{"--peer-secret"}},
		{"unreachable address without URL", append([]string{"--peer-listen", ":7071", "--peer-secret", secret}, dyn...), []string{"--peer-url", "required"}},
		{"bad URL", append([]string{"--peer-listen", "10.0.0.5:7071", "--peer-secret", secret, "--peer-url", "node:7071"}, dyn...), []string{"--peer-url", "http://"}},
		{"bad listen address", append([]string{"--peer-listen", "10.0.0.5", "--peer-secret", secret}, dyn...), []string{"--peer-listen", "host:port"}},
		{"secret without fan-out", append([]string{"--peer-secret", secret}, dyn...), []string{"--peer-secret", "--peer-listen"}},
		{"leases without fan-out", append([]string{"--stream-leases", "2"}, dyn...), []string{"--stream-leases", "--peer-listen"}},
		{"too many leases", append([]string{"--peer-listen", "10.0.0.5:7071", "--peer-secret", secret, "--stream-leases", "9"}, dyn...), []string{"--stream-leases", "between 1 and 8"}},
		{"too many feed shards", append([]string{"--feed-shards", "65"}, dyn...), []string{"--feed-shards", "between 0 and 64"}},
		{"feed shards with bolt", []string{"--feed-shards", "4"}, []string{"--feed-shards", "dynamodb"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig(tt.args, envMap(nil), io.Discard)
			if err == nil || !errors.Is(err, errUsage) {
				t.Fatalf("ParseConfig()=%v, want a usage error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
