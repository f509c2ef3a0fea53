package main

import (
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const testSecret = "cmd-test-secret-0123456789abcdef-0123"

func TestSecurityConfig(t *testing.T) {
	ok := []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"auth allows a public address", []string{"--addr", "0.0.0.0:8080", "--auth-hs256-secret", testSecret}, nil},
		{"secret from the environment", []string{"--addr", "0.0.0.0:8080"}, map[string]string{"DYNAMERGE_AUTH_HS256_SECRET": testSecret}},
		{"jwks url", []string{"--auth-jwks", "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc/.well-known/jwks.json", "--auth-issuer", "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc", "--auth-audience", "a, b"}, nil},
		{"cors", []string{"--cors-origins", "https://app.example, http://localhost:5173"}, nil},
		{"limits off", []string{"--rate-limit", "0", "--ip-rate-limit", "0", "--max-sse-per-subject", "0", "--max-sse", "0", "--max-requests-per-subject", "0", "--max-connections", "0"}, nil},
		{"slow clients", []string{"--body-timeout", "5s", "--min-body-rate", "1KiB"}, map[string]string{"DYNAMERGE_MAX_CONNECTIONS": "100"}},
		{"metrics token", nil, map[string]string{"DYNAMERGE_METRICS_TOKEN": "metrics-secret-0123456789"}},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig(tt.args, envMap(tt.env), io.Discard)
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			if tt.name == "jwks url" && strings.Join(c.AudienceList(), "|") != "a|b" {
				t.Errorf("audiences %q", c.AudienceList())
			}
		})
	}
	bad := []struct {
		name string
		args []string
		flag string
	}{
		{"public address without auth", []string{"--addr", "0.0.0.0:8080"}, "--addr"},
		{"short secret", []string{"--auth-hs256-secret", "short"}, "--auth-hs256-secret"},
		{"http jwks", []string{"--auth-jwks", "http://idp.example/jwks.json"}, "--auth-jwks"},
		{"issuer without keys", []string{"--auth-issuer", "https://idp.example"}, "--auth-issuer"},
		{"leeway too long", []string{"--auth-hs256-secret", testSecret, "--auth-leeway", "1h"}, "--auth-leeway"},
		{"negative rate", []string{"--rate-limit", "-1"}, "--rate-limit"},
		{"zero burst", []string{"--rate-burst", "0"}, "--rate-burst"},
		{"bad origin", []string{"--cors-origins", "app.example"}, "--cors-origins"},
		{"origin with path", []string{"--cors-origins", "https://app.example/x"}, "--cors-origins"},
		{"bad header", []string{"--trusted-proxy-header", "X Forwarded"}, "--trusted-proxy-header"},
		{"ops per change", []string{"--max-ops-per-change", "0"}, "--max-ops-per-change"},
		{"ops per record", []string{"--max-ops-per-record", "-5"}, "--max-ops-per-record"},
		{"negative connections", []string{"--max-connections", "-1"}, "--max-connections"},
		{"negative requests", []string{"--max-requests-per-subject", "-1"}, "--max-requests-per-subject"},
		{"negative sse", []string{"--max-sse", "-1"}, "--max-sse"},
		{"no body timeout", []string{"--body-timeout", "0s"}, "--body-timeout"},
		{"no body rate", []string{"--min-body-rate", "0"}, "--min-body-rate"},
		{"short metrics token", []string{"--metrics-token", "short"}, "--metrics-token"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig(tt.args, envMap(nil), io.Discard)
			if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.flag) {
				t.Fatalf("error %v, want a usage error naming %s", err, tt.flag)
			}
		})
	}
}

// TestRunWithAuth runs the program with an HS256 secret: requests without a
// token get 401, a token's collections are enforced, and the start-up log
// says authentication is on instead of warning.
func TestRunWithAuth(t *testing.T) {
	p := startRun(t, []string{"--store", "bolt:" + filepath.Join(t.TempDir(), "db"),
		"--auth-issuer", "https://idp.test", "--rate-limit", "1", "--rate-burst", "5"},
		map[string]string{"DYNAMERGE_AUTH_HS256_SECRET": testSecret, "DYNAMERGE_METRICS_TOKEN": "metrics-secret-0123456789"})
	addr, logs := p.addr, p.logs
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "alice", "iss": "https://idp.test", "exp": time.Now().Add(time.Hour).Unix(),
		"collections": map[string]any{"notes-{sub}": "rw"},
	}).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	get := func(path, token string) int {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, c := range []struct {
		path, token string
		want        int
	}{
		{"/v1/collections/notes-alice/feed", "", 401},
		{"/v1/collections/notes-alice/feed", tok, 200},
		{"/v1/collections/notes-bob/feed", tok, 403},
		{"/v1/collections/notes-alice/docs/x", tok, 404},
		{"/healthz", "", 200},
		{"/metrics", "", 401},
		{"/metrics", tok, 401},
		{"/metrics", "metrics-secret-0123456789", 200},
	} {
		if got := get(c.path, c.token); got != c.want {
			t.Errorf("GET %s (token %v): %d, want %d", c.path, c.token != "", got, c.want)
		}
	}
	// Five more requests exceed the burst of 5 at 1/s.
	codes := map[int]int{}
	for i := 0; i < 5; i++ {
		codes[get("/v1/collections/notes-alice/feed", tok)]++
	}
	if codes[429] == 0 {
		t.Errorf("no 429 over the rate limit: %v", codes)
	}
	if strings.Contains(logs.String(), "NO AUTHENTICATION") || !strings.Contains(logs.String(), "authentication required") {
		t.Errorf("start-up log does not say auth is on:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), testSecret) {
		t.Error("the secret was logged")
	}
	if err := p.stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
}
