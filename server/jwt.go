package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token settings.
const (
	// DefaultClaim is the claim that lists a token's collections.
	DefaultClaim = "collections"
	// DefaultLeeway is the clock skew tolerated on exp, nbf and iat: enough
	// for servers whose clocks drift a little from the identity provider's,
	// short enough that an expired token is not honoured for long.
	DefaultLeeway = 30 * time.Second
	// MaxTokenBytes bounds a token; identity providers issue a few KB.
	MaxTokenBytes = 16 << 10
	// MaxGrants bounds the entries of a token's collections claim.
	MaxGrants = 256
	// MinHS256SecretBytes is the shortest HS256 secret accepted: RFC 7518
	// section 3.2 asks for a key at least as long as the hash.
	MinHS256SecretBytes = 32
)

// Principal is an authenticated caller: the token's subject and the
// collections it may read or write.
type Principal struct {
	// Subject is the token's "sub" claim.
	Subject string
	// Expires is when the token stops being accepted: its "exp" plus the
	// leeway. Event streams opened with it end then. Zero: never.
	Expires time.Time
	grants  []grant
}

// grant is one entry of the collections claim, with {sub} substituted.
type grant struct {
	name   string // the collection, or the prefix when prefix is set
	prefix bool   // the pattern ended in "*"
	write  bool   // "rw" rather than "r"
}

// Allows tells whether p may read (write false) or write a collection.
// Several matching entries add up: any "rw" entry allows writing.
func (p *Principal) Allows(collection string, write bool) bool {
	if p == nil {
		return false
	}
	for _, g := range p.grants {
		match := collection == g.name
		if g.prefix {
			match = strings.HasPrefix(collection, g.name)
		}
		if match && (g.write || !write) {
			return true
		}
	}
	return false
}

// Authenticator is an Authorizer that can also tell who a request comes
// from. The server calls Authenticate once per /v1 request, before reading
// the body: a bad token is answered 401 whatever the request holds (even an
// empty sync), and rate limits and SSE quotas apply per subject. Authorize
// then finds the Principal in the request's context (PrincipalFrom).
type Authenticator interface {
	Authorizer
	// Authenticate returns the caller, or an error wrapping ErrUnauthorized.
	Authenticate(r *http.Request) (*Principal, error)
}

type principalKey struct{}

// withPrincipal returns ctx carrying p.
func withPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the Principal the server authenticated for the
// request whose context is ctx, or nil.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// KeySet finds the public key that verifies an asymmetric token: a
// *rsa.PublicKey for RS256, an *ecdsa.PublicKey on P-256 for ES256. *JWKS
// implements it.
type KeySet interface {
	Key(ctx context.Context, kid, alg string) (any, error)
}

// TokenAuthConfig configures TokenAuth. At least one of HS256Secret and
// Keys must be set.
type TokenAuthConfig struct {
	// HS256Secret verifies HS256 tokens (a secret shared with the token
	// issuer); at least MinHS256SecretBytes long. Empty refuses HS256.
	HS256Secret []byte
	// Keys verifies RS256 and ES256 tokens (an identity provider's JWKS).
	// Nil refuses them.
	Keys KeySet
	// Issuer, when set, must equal the token's "iss".
	Issuer string
	// Audience, when not empty, must contain the token's "aud" (any of its
	// values) or its "client_id": Amazon Cognito access tokens carry the app
	// client in "client_id" and have no "aud"; its ID tokens use "aud".
	Audience []string
	// Claim names the claim holding the collections, DefaultClaim if empty.
	// A dotted path ("ext.collections") reaches into nested objects; a claim
	// whose full name contains dots is found first.
	Claim string
	// Leeway is the clock skew tolerated; DefaultLeeway if zero, none if
	// negative.
	Leeway time.Duration
	// Now is the clock (tests); time.Now if nil.
	Now func() time.Time
}

// TokenAuth authenticates JWT bearer tokens and authorizes collections from
// their claims (PROTOCOL.md "Authentication"). It is safe for concurrent
// use.
type TokenAuth struct {
	cfg    TokenAuthConfig
	parser *jwt.Parser
	algs   []string
}

var _ Authenticator = (*TokenAuth)(nil)

// NewTokenAuth checks cfg and returns a TokenAuth for it.
func NewTokenAuth(cfg TokenAuthConfig) (*TokenAuth, error) {
	var algs []string
	if len(cfg.HS256Secret) > 0 {
		if len(cfg.HS256Secret) < MinHS256SecretBytes {
			return nil, fmt.Errorf("auth: HS256 secret of %d bytes, want at least %d", len(cfg.HS256Secret), MinHS256SecretBytes)
		}
		algs = append(algs, jwt.SigningMethodHS256.Alg())
	}
	if cfg.Keys != nil {
		algs = append(algs, jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg())
	}
	if len(algs) == 0 {
		return nil, errors.New("auth: neither an HS256 secret nor a key set configured")
	}
	if cfg.Claim == "" {
		cfg.Claim = DefaultClaim
	}
	switch {
	case cfg.Leeway == 0:
		cfg.Leeway = DefaultLeeway
	case cfg.Leeway < 0:
		cfg.Leeway = 0
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(algs),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	return &TokenAuth{cfg: cfg, parser: jwt.NewParser(opts...), algs: algs}, nil
}

// Algorithms returns the accepted "alg" values.
func (a *TokenAuth) Algorithms() []string { return append([]string(nil), a.algs...) }

// Authenticate reads the bearer token of r ("Authorization: Bearer", or the
// access_token query parameter on /v1/events, since EventSource cannot set
// headers) and returns its Principal.
func (a *TokenAuth) Authenticate(r *http.Request) (*Principal, error) {
	tok, err := bearerToken(r)
	if err != nil {
		return nil, err
	}
	return a.Parse(r.Context(), tok)
}

// Authorize implements Authorizer: the request's Principal (authenticated by
// the server, or here when the server did not) must allow the access.
func (a *TokenAuth) Authorize(r *http.Request, collection string, write bool) error {
	p := PrincipalFrom(r.Context())
	if p == nil {
		var err error
		if p, err = a.Authenticate(r); err != nil {
			return err
		}
	}
	if !p.Allows(collection, write) {
		return ErrForbidden
	}
	return nil
}

// Parse verifies a compact JWT and returns its Principal. Errors wrap
// ErrUnauthorized and say why, for logs; clients only learn "unauthorized".
func (a *TokenAuth) Parse(ctx context.Context, tok string) (*Principal, error) {
	if len(tok) > MaxTokenBytes {
		return nil, fmt.Errorf("%w: token of %d bytes, limit %d", ErrUnauthorized, len(tok), MaxTokenBytes)
	}
	claims := jwt.MapClaims{}
	t, err := a.parser.ParseWithClaims(tok, claims, func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			// RFC 7515 section 4.1.11: extensions we do not know must fail.
			return nil, errors.New(`unsupported "crit" header`)
		}
		alg, _ := t.Header["alg"].(string)
		switch t.Method.(type) {
		case *jwt.SigningMethodHMAC:
			return a.cfg.HS256Secret, nil
		case *jwt.SigningMethodRSA, *jwt.SigningMethodECDSA:
			kid, _ := t.Header["kid"].(string)
			key, err := a.cfg.Keys.Key(ctx, kid, alg)
			if err != nil {
				return nil, err
			}
			switch key.(type) {
			case *rsa.PublicKey, *ecdsa.PublicKey:
				return key, nil
			}
			return nil, fmt.Errorf("key %q has type %T", kid, key)
		}
		return nil, fmt.Errorf("algorithm %q not accepted", alg)
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	if !t.Valid {
		return nil, fmt.Errorf("%w: token not valid", ErrUnauthorized)
	}
	if err := checkDates(claims); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	sub, _ := claims["sub"].(string)
	if sub == "" {
		return nil, fmt.Errorf("%w: token has no subject", ErrUnauthorized)
	}
	if err := a.checkAudience(claims); err != nil {
		return nil, err
	}
	grants, err := parseGrants(lookupClaim(claims, a.cfg.Claim), sub)
	if err != nil {
		return nil, fmt.Errorf("%w: claim %q: %w", ErrUnauthorized, a.cfg.Claim, err)
	}
	p := &Principal{Subject: sub, grants: grants}
	// The parser required exp and checked it is a date.
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		p.Expires = exp.Add(a.cfg.Leeway)
	}
	return p, nil
}

// maxTokenTime is the last second of year 9999, the latest date a token
// may carry: past it, float seconds lose their precision and, near 2^63,
// overflow to the distant past when converted to a time.
const maxTokenTime = 253402300799

// checkDates refuses exp, nbf and iat that are not numbers of seconds
// between 1970 and the end of year 9999. The JWT library converts them to
// times without range checks, so an nbf or iat of 1e300 wrapped around to
// the past and passed.
func checkDates(claims jwt.MapClaims) error {
	for _, name := range []string{"exp", "nbf", "iat"} {
		v, ok := claims[name]
		if !ok {
			continue
		}
		f, ok := v.(float64)
		if !ok || math.IsNaN(f) || f < 0 || f > maxTokenTime {
			return fmt.Errorf("%s out of range: %v", name, v)
		}
	}
	return nil
}

// checkAudience accepts a token whose "aud" (a string or a list) or
// "client_id" names a configured audience.
func (a *TokenAuth) checkAudience(claims jwt.MapClaims) error {
	if len(a.cfg.Audience) == 0 {
		return nil
	}
	var got []string
	aud, err := claims.GetAudience()
	if err != nil {
		return fmt.Errorf("%w: aud: %w", ErrUnauthorized, err)
	}
	got = append(got, aud...)
	if cid, ok := claims["client_id"].(string); ok {
		got = append(got, cid)
	}
	for _, want := range a.cfg.Audience {
		for _, g := range got {
			if g == want {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: audience %q not accepted", ErrUnauthorized, got)
}

// bearerToken extracts the token of r. A request carrying none is
// unauthorized.
func bearerToken(r *http.Request) (string, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", fmt.Errorf("%w: Authorization is not a Bearer token", ErrUnauthorized)
		}
		tok = strings.TrimSpace(tok)
		if tok == "" {
			return "", fmt.Errorf("%w: empty Bearer token", ErrUnauthorized)
		}
		return tok, nil
	}
	// Only the SSE endpoint takes the token in the URL: elsewhere it would
	// end up in proxies' logs for no reason.
	if r.URL.Path == "/v1/events" {
		if tok := r.URL.Query().Get("access_token"); tok != "" {
			return tok, nil
		}
	}
	return "", fmt.Errorf("%w: no bearer token", ErrUnauthorized)
}

// lookupClaim finds a claim by name, else by dotted path through nested
// objects. Nil when absent.
func lookupClaim(claims map[string]any, name string) any {
	if v, ok := claims[name]; ok {
		return v
	}
	var cur any = claims
	for _, part := range strings.Split(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = m[part]; !ok {
			return nil
		}
	}
	return cur
}

// parseGrants reads a collections claim: an object mapping a collection
// pattern to "r" or "rw", or that object JSON-encoded in a string (identity
// providers such as Cognito only put strings in custom attributes). An
// absent claim grants nothing. A malformed one refuses the token: guessing
// what a broken policy meant could grant too much.
func parseGrants(v any, sub string) ([]grant, error) {
	if v == nil {
		return nil, nil
	}
	if s, ok := v.(string); ok {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			return nil, errors.New("a string that is not a JSON object")
		}
		v = m
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("want an object, got %T", v)
	}
	if len(m) > MaxGrants {
		return nil, fmt.Errorf("%d entries, at most %d", len(m), MaxGrants)
	}
	grants := make([]grant, 0, len(m))
	for pattern, perm := range m {
		var write bool
		switch perm {
		case "r":
		case "rw":
			write = true
		default:
			return nil, fmt.Errorf("entry %q: permission must be \"r\" or \"rw\"", pattern)
		}
		g, ok, err := compilePattern(pattern, sub)
		if err != nil {
			return nil, err
		}
		if ok {
			g.write = write
			grants = append(grants, g)
		}
	}
	return grants, nil
}

// compilePattern turns a pattern into a grant: letters of collection names,
// "{sub}" for the subject, and an optional "*" at the end for a prefix. The
// subject is substituted literally (a "*" in it is no wildcard); ok is false
// when the substituted name can never be a collection (a subject with
// characters collection names do not allow), so the entry grants nothing.
func compilePattern(pattern, sub string) (g grant, ok bool, err error) {
	p := pattern
	if strings.HasSuffix(p, "*") {
		g.prefix = true
		p = p[:len(p)-1]
	}
	if len(p) > 64 {
		return grant{}, false, fmt.Errorf("pattern %q longer than a collection name", pattern)
	}
	var b strings.Builder
	usesSub := false
	for i := 0; i < len(p); {
		if strings.HasPrefix(p[i:], "{sub}") {
			b.WriteString(sub)
			usesSub = true
			i += len("{sub}")
			continue
		}
		if !collectionByte(p[i]) {
			return grant{}, false, fmt.Errorf("pattern %q: only a-z 0-9 _ - {sub} and a final *", pattern)
		}
		b.WriteByte(p[i])
		i++
	}
	g.name = b.String()
	if usesSub {
		for i := 0; i < len(sub); i++ {
			if !collectionByte(sub[i]) {
				return grant{}, false, nil
			}
		}
	}
	if !g.prefix && g.name == "" {
		return grant{}, false, nil
	}
	return g, true, nil
}

func collectionByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}
