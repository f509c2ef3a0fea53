package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Test identity provider: an HS256 secret, an RSA and an EC key published
// in a JWKS, the issuer and audience the server expects.
const (
	testIssuer   = "https://issuer.test/pool"
	testAudience = "app-client"
)

var testSecret = []byte("test-secret-0123456789abcdef-0123456789")

type testKeys struct {
	rsa      *rsa.PrivateKey
	rsaOther *rsa.PrivateKey // same kid as rsa in forged tokens, never published
	ec       *ecdsa.PrivateKey
}

var sharedKeys = sync.OnceValue(func() *testKeys {
	r1, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	r2, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return &testKeys{rsa: r1, rsaOther: r2, ec: ec}
})

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// rsaJWK and ecJWK render public keys as JWKs.
func rsaJWK(kid string, k *rsa.PublicKey) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": b64u(k.N.Bytes()), "e": b64u(big.NewInt(int64(k.E)).Bytes())}
}

func ecJWK(kid string, k *ecdsa.PublicKey) map[string]any {
	b, err := k.Bytes()
	if err != nil {
		panic(err)
	}
	return map[string]any{"kty": "EC", "kid": kid, "use": "sig", "crv": "P-256",
		"x": b64u(b[1:33]), "y": b64u(b[33:65])}
}

func jwksJSON(keys ...map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"keys": keys})
	return b
}

// writeJWKSFile publishes the test keys as kids "rsa-1" and "ec-1".
func writeJWKSFile(tb testing.TB) string {
	tb.Helper()
	k := sharedKeys()
	p := filepath.Join(tb.TempDir(), "jwks.json")
	if err := os.WriteFile(p, jwksJSON(rsaJWK("rsa-1", &k.rsa.PublicKey), ecJWK("ec-1", &k.ec.PublicKey)), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// claimsFor is a valid claim set for sub with the given collections claim.
func claimsFor(sub string, cols any) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"sub": sub,
		"iss": testIssuer,
		"aud": testAudience,
		"iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
	}
	if cols != nil {
		c["collections"] = cols
	}
	return c
}

func signHS(tb testing.TB, claims jwt.MapClaims) string {
	tb.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(testSecret)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func signRS(tb testing.TB, kid string, key *rsa.PrivateKey, claims jwt.MapClaims) string {
	tb.Helper()
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	if kid != "" {
		t.Header["kid"] = kid
	}
	s, err := t.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func signES(tb testing.TB, kid string, claims jwt.MapClaims) string {
	tb.Helper()
	t := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	t.Header["kid"] = kid
	s, err := t.SignedString(sharedKeys().ec)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// newTestAuth is a TokenAuth accepting HS256 with testSecret and RS256/ES256
// from the JWKS file, with issuer and audience checks.
func newTestAuth(tb testing.TB) *TokenAuth {
	tb.Helper()
	jwks, err := NewJWKS(tb.Context(), writeJWKSFile(tb), JWKSOptions{})
	if err != nil {
		tb.Fatalf("NewJWKS: %v", err)
	}
	tb.Cleanup(jwks.Close)
	a, err := NewTokenAuth(TokenAuthConfig{
		HS256Secret: testSecret,
		Keys:        jwks,
		Issuer:      testIssuer,
		Audience:    []string{testAudience},
	})
	if err != nil {
		tb.Fatalf("NewTokenAuth: %v", err)
	}
	return a
}

// unsigned builds a token with arbitrary header and claims and a given
// signature segment, for forgeries the jwt package refuses to make.
func unsigned(header, claims map[string]any, sig string) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return b64u(h) + "." + b64u(c) + "." + sig
}

// badTokens are tokens every endpoint must answer 401, by name.
func badTokens(tb testing.TB) map[string]string {
	tb.Helper()
	k := sharedKeys()
	cols := map[string]any{"*": "rw"}
	good := claimsFor("mallory", cols)
	with := func(key string, v any) jwt.MapClaims {
		c := claimsFor("mallory", cols)
		if v == nil {
			delete(c, key)
		} else {
			c[key] = v
		}
		return c
	}
	hs384, _ := jwt.NewWithClaims(jwt.SigningMethodHS384, good).SignedString(testSecret)
	wrongSecret, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, good).SignedString([]byte("another-secret-0123456789abcdef-0123"))
	pubDER, _ := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	confusion := func() string {
		t := jwt.NewWithClaims(jwt.SigningMethodHS256, good)
		t.Header["kid"] = "rsa-1"
		s, _ := t.SignedString(pubPEM) // HS256 keyed with the RSA public key
		return s
	}()
	critTok := func() string {
		t := jwt.NewWithClaims(jwt.SigningMethodHS256, good)
		t.Header["crit"] = []string{"exp"}
		s, _ := t.SignedString(testSecret)
		return s
	}()
	valid := signHS(tb, good)
	parts := strings.Split(valid, ".")
	tampered := func() string {
		c := claimsFor("alice", cols)
		b, _ := json.Marshal(c)
		return parts[0] + "." + b64u(b) + "." + parts[2]
	}()
	return map[string]string{
		"garbage":            "not-a-jwt",
		"alg none":           unsigned(map[string]any{"alg": "none", "typ": "JWT"}, good, ""),
		"alg None":           unsigned(map[string]any{"alg": "None", "typ": "JWT"}, good, ""),
		"HS384":              hs384,
		"wrong secret":       wrongSecret,
		"tampered claims":    tampered,
		"key confusion":      confusion,
		"RS256 unknown key":  signRS(tb, "rsa-1", k.rsaOther, good),
		"RS256 unknown kid":  signRS(tb, "rsa-9", k.rsa, good),
		"ES256 with RSA kid": signES(tb, "rsa-1", good),
		"no exp":             signHS(tb, with("exp", nil)),
		"expired":            signHS(tb, with("exp", time.Now().Add(-2*time.Minute).Unix())),
		"exp string":         signHS(tb, with("exp", "tomorrow")),
		"not yet valid":      signHS(tb, with("nbf", time.Now().Add(10*time.Minute).Unix())),
		"issued in future":   signHS(tb, with("iat", time.Now().Add(10*time.Minute).Unix())),
		// Issue 18 item 6: dates that overflow to the distant past.
		"nbf 1e300":           signHS(tb, with("nbf", 1e300)),
		"iat 1e300":           signHS(tb, with("iat", 1e300)),
		"nbf 2^63":            signHS(tb, with("nbf", float64(1<<63))),
		"iat 2^63":            signHS(tb, with("iat", float64(1<<63))),
		"exp 2^63":            signHS(tb, with("exp", float64(1<<63))),
		"exp after 9999":      signHS(tb, with("exp", float64(maxTokenTime+1))),
		"nbf before 1970":     signHS(tb, with("nbf", -1)),
		"iat -1e300":          signHS(tb, with("iat", -1e300)),
		"wrong issuer":        signHS(tb, with("iss", "https://evil.test")),
		"no issuer":           signHS(tb, with("iss", nil)),
		"wrong audience":      signHS(tb, with("aud", "other-app")),
		"no audience":         signHS(tb, with("aud", nil)),
		"no subject":          signHS(tb, with("sub", nil)),
		"bad permission":      signHS(tb, with("collections", map[string]any{"todos": "write"})),
		"bad pattern":         signHS(tb, with("collections", map[string]any{"to*dos": "rw"})),
		"collections list":    signHS(tb, with("collections", []any{"todos"})),
		"crit header":         critTok,
		"oversized":           signHS(tb, with("pad", strings.Repeat("x", MaxTokenBytes))),
		"signature stripped":  parts[0] + "." + parts[1] + ".",
		"two dots only":       "..",
		"empty bearer":        "",
		"unicode":             "ŧøкεи.ŧøкεи.ŧøкεи",
		"sig of other token":  parts[0] + "." + strings.Split(signHS(tb, claimsFor("alice", cols)), ".")[1] + "." + parts[2],
		"padding in segments": parts[0] + "=." + parts[1] + "." + parts[2],
	}
}

func TestTokenAuthParse(t *testing.T) {
	a := newTestAuth(t)
	cols := map[string]any{"todos": "rw", "public": "r", "notes-{sub}": "rw", "team-*": "r"}
	k := sharedKeys()
	for name, tok := range map[string]string{
		"HS256": signHS(t, claimsFor("alice", cols)),
		"RS256": signRS(t, "rsa-1", k.rsa, claimsFor("alice", cols)),
		"ES256": signES(t, "ec-1", claimsFor("alice", cols)),
		"aud list": signHS(t, func() jwt.MapClaims {
			c := claimsFor("alice", cols)
			c["aud"] = []string{"x", testAudience}
			return c
		}()),
		"cognito access token": signRS(t, "rsa-1", k.rsa, func() jwt.MapClaims {
			c := claimsFor("alice", cols)
			delete(c, "aud")
			c["client_id"] = testAudience
			c["token_use"] = "access"
			return c
		}()),
		"expired within leeway": signHS(t, func() jwt.MapClaims {
			c := claimsFor("alice", cols)
			c["exp"] = time.Now().Add(-5 * time.Second).Unix()
			return c
		}()),
	} {
		t.Run(name, func(t *testing.T) {
			p, err := a.Parse(t.Context(), tok)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if p.Subject != "alice" {
				t.Fatalf("subject %q", p.Subject)
			}
			for _, c := range []struct {
				col         string
				read, write bool
			}{
				{"todos", true, true},
				{"public", true, false},
				{"notes-alice", true, true},
				{"notes-bob", false, false},
				{"notes-alice2", false, false},
				{"team-", true, false},
				{"team-x", true, false},
				{"team", false, false},
				{"other", false, false},
			} {
				if got := p.Allows(c.col, false); got != c.read {
					t.Errorf("read %s = %v, want %v", c.col, got, c.read)
				}
				if got := p.Allows(c.col, true); got != c.write {
					t.Errorf("write %s = %v, want %v", c.col, got, c.write)
				}
			}
		})
	}
	for name, tok := range badTokens(t) {
		t.Run("bad/"+name, func(t *testing.T) {
			if p, err := a.Parse(t.Context(), tok); err == nil {
				t.Fatalf("accepted, principal %+v", p)
			} else if !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("error %v does not wrap ErrUnauthorized", err)
			}
		})
	}
}

func TestTokenAuthClaimShapes(t *testing.T) {
	jwks, err := NewJWKS(t.Context(), writeJWKSFile(t), JWKSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer jwks.Close()
	k := sharedKeys()
	for _, tc := range []struct {
		name, claim string
		claims      jwt.MapClaims
		sub         string
		allowed     []string // readable and writable
		denied      []string
	}{
		{name: "nested path", claim: "ext.collections",
			claims: jwt.MapClaims{"ext": map[string]any{"collections": map[string]any{"notes-{sub}": "rw"}}},
			sub:    "u1", allowed: []string{"notes-u1"}, denied: []string{"notes-u2", "notes-"}},
		{name: "dotted name wins", claim: "https://dynamerge.dev/collections",
			claims: jwt.MapClaims{"https://dynamerge.dev/collections": map[string]any{"a": "rw"}},
			sub:    "u1", allowed: []string{"a"}, denied: []string{"b"}},
		{name: "cognito string attribute", claim: "custom:collections",
			claims: jwt.MapClaims{"custom:collections": `{"todos-{sub}":"rw","x*":"rw"}`},
			sub:    "0b9f2c7e-1111-2222-3333-444455556666", allowed: []string{"todos-0b9f2c7e-1111-2222-3333-444455556666", "xy"}, denied: []string{"todos-other"}},
		{name: "subject with wildcard is literal", claim: "collections",
			claims: jwt.MapClaims{"collections": map[string]any{"n-{sub}": "rw"}},
			sub:    "a*", denied: []string{"n-a", "n-ab", "n-a*"}},
		{name: "subject with uppercase never matches", claim: "collections",
			claims: jwt.MapClaims{"collections": map[string]any{"n-{sub}*": "rw"}},
			sub:    "Bob", denied: []string{"n-bob", "n-", "n-x"}},
		{name: "missing claim grants nothing", claim: "collections",
			claims: jwt.MapClaims{}, sub: "u1", denied: []string{"a", "todos"}},
		{name: "star grants all", claim: "collections",
			claims: jwt.MapClaims{"collections": map[string]any{"*": "rw"}}, sub: "admin", allowed: []string{"a", "zz-9"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewTokenAuth(TokenAuthConfig{Keys: jwks, Claim: tc.claim})
			if err != nil {
				t.Fatal(err)
			}
			c := jwt.MapClaims{"sub": tc.sub, "exp": time.Now().Add(time.Hour).Unix()}
			for k, v := range tc.claims {
				c[k] = v
			}
			p, err := a.Parse(t.Context(), signRS(t, "rsa-1", k.rsa, c))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			for _, col := range tc.allowed {
				if !p.Allows(col, true) {
					t.Errorf("%s not writable", col)
				}
			}
			for _, col := range tc.denied {
				if p.Allows(col, false) {
					t.Errorf("%s readable", col)
				}
			}
			// HS256 is not configured: the same claims with HS256 fail.
			if _, err := a.Parse(t.Context(), signHS(t, c)); err == nil {
				t.Error("HS256 accepted without a secret configured")
			}
		})
	}
}

func TestNewTokenAuthRefuses(t *testing.T) {
	if _, err := NewTokenAuth(TokenAuthConfig{}); err == nil {
		t.Error("no keys accepted")
	}
	if _, err := NewTokenAuth(TokenAuthConfig{HS256Secret: []byte("short")}); err == nil {
		t.Error("short secret accepted")
	}
}

// BenchmarkTokenParse measures what authentication adds to every request.
func BenchmarkTokenParse(b *testing.B) {
	a := newTestAuth(b)
	k := sharedKeys()
	cols := map[string]any{"notes-{sub}": "rw", "public": "r", "team-*": "r"}
	for _, tc := range []struct{ name, tok string }{
		{"HS256", signHS(b, claimsFor("alice", cols))},
		{"RS256", signRS(b, "rsa-1", k.rsa, claimsFor("alice", cols))},
		{"ES256", signES(b, "ec-1", claimsFor("alice", cols))},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := a.Parse(b.Context(), tc.tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
