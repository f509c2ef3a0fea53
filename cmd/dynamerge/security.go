package main

import (
	"net/url"
	"strings"
	"time"

	"github.com/dynamerge/dynamerge/server"
)

// securityOptions are the security settings (README "Security").
var securityOptions = []option{
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
	int64Opt("max-ops-per-record", "most operations in one record's history, beyond its allocation budget (0: no cap but the budget)",
		func(c *Config) *int64 { return &c.MaxOpsPerRecord }),
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
