package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// jwksServer serves a key set over TLS on loopback and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    []byte
	status  int
	fetches atomic.Int64
}

func newJWKSServer(tb testing.TB, body []byte) *jwksServer {
	s := &jwksServer{body: body, status: http.StatusOK}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(s.status)
		w.Write(s.body)
	}))
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes the tests make fail on purpose
	tb.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(status int, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

func TestJWKSURLRotationAndRefetchLimit(t *testing.T) {
	k := sharedKeys()
	srv := newJWKSServer(t, jwksJSON(rsaJWK("rsa-1", &k.rsa.PublicKey)))
	jwks, err := NewJWKS(t.Context(), srv.URL+"/.well-known/jwks.json", JWKSOptions{
		Client:     srv.Client(),
		MinRefetch: 300 * time.Millisecond,
		Logger:     (&syncLog{}).logger(),
	})
	if err != nil {
		t.Fatalf("NewJWKS: %v", err)
	}
	defer jwks.Close()
	a, err := NewTokenAuth(TokenAuthConfig{Keys: jwks})
	if err != nil {
		t.Fatal(err)
	}
	claims := claimsFor("alice", map[string]any{"a": "rw"})
	if _, err := a.Parse(t.Context(), signRS(t, "rsa-1", k.rsa, claims)); err != nil {
		t.Fatalf("RS256 from URL: %v", err)
	}

	// The provider rotates to a new key: the first token naming it makes
	// the server fetch again (once the minimum interval passed).
	srv.set(http.StatusOK, jwksJSON(rsaJWK("rsa-1", &k.rsa.PublicKey), rsaJWK("rsa-2", &k.rsaOther.PublicKey)))
	time.Sleep(350 * time.Millisecond)
	if _, err := a.Parse(t.Context(), signRS(t, "rsa-2", k.rsaOther, claims)); err != nil {
		t.Fatalf("rotated key: %v", err)
	}

	// A flood of made-up kids fetches at most once per MinRefetch.
	before := srv.fetches.Load()
	start := time.Now()
	for i := 0; i < 50; i++ {
		if _, err := a.Parse(t.Context(), signRS(t, "made-up", k.rsa, claims)); err == nil {
			t.Fatal("unknown kid accepted")
		}
	}
	elapsed := time.Since(start)
	got := srv.fetches.Load() - before
	if max := int64(elapsed/(300*time.Millisecond)) + 1; got > max {
		t.Fatalf("%d fetches in %s for unknown kids, want at most %d", got, elapsed, max)
	}

	// A failing provider keeps the known keys.
	srv.set(http.StatusInternalServerError, []byte("oops"))
	time.Sleep(350 * time.Millisecond)
	if _, err := a.Parse(t.Context(), signRS(t, "made-up-2", k.rsa, claims)); err == nil {
		t.Fatal("unknown kid accepted")
	}
	if _, err := a.Parse(t.Context(), signRS(t, "rsa-1", k.rsa, claims)); err != nil {
		t.Fatalf("known key lost after a failed refresh: %v", err)
	}
}

func TestJWKSBackgroundRefresh(t *testing.T) {
	k := sharedKeys()
	srv := newJWKSServer(t, jwksJSON(rsaJWK("rsa-1", &k.rsa.PublicKey)))
	jwks, err := NewJWKS(t.Context(), srv.URL, JWKSOptions{Client: srv.Client(), Refresh: 50 * time.Millisecond, MinRefetch: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer jwks.Close()
	// The key is replaced (revoked) at the provider: the background refresh
	// drops it without any token asking.
	srv.set(http.StatusOK, jwksJSON(rsaJWK("rsa-2", &k.rsaOther.PublicKey)))
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err1 := jwks.lookup("rsa-1", "RS256")
		_, err2 := jwks.lookup("rsa-2", "RS256")
		if err1 != nil && err2 == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not refreshed: rsa-1 %v, rsa-2 %v", err1, err2)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestJWKSRefuses(t *testing.T) {
	if _, err := NewJWKS(t.Context(), "http://example.com/jwks.json", JWKSOptions{}); err == nil {
		t.Error("http:// accepted")
	}
	if _, err := NewJWKS(t.Context(), "/nonexistent/jwks.json", JWKSOptions{}); err == nil {
		t.Error("missing file accepted")
	}
	srv := newJWKSServer(t, []byte(`{"keys":[]}`))
	if _, err := NewJWKS(t.Context(), srv.URL, JWKSOptions{Client: srv.Client()}); err == nil {
		t.Error("empty key set accepted")
	}
	// The default client does not trust the test CA: TLS is verified.
	srv.set(http.StatusOK, jwksJSON(rsaJWK("rsa-1", &sharedKeys().rsa.PublicKey)))
	if _, err := NewJWKS(t.Context(), srv.URL, JWKSOptions{}); err == nil {
		t.Error("untrusted certificate accepted")
	}

	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := rsaJWK("ok", &sharedKeys().rsa.PublicKey)
	for name, body := range map[string]string{
		"not json":      `{"keys":`,
		"keys not list": `{"keys":{}}`,
		"small rsa":     string(jwksJSON(rsaJWK("s", &small.PublicKey))),
		"bad point":     `{"keys":[{"kty":"EC","crv":"P-256","kid":"e","x":"` + b64u(make([]byte, 32)) + `","y":"` + b64u(make([]byte, 32)) + `"}]}`,
		"bad modulus":   `{"keys":[{"kty":"RSA","kid":"r","n":"!!","e":"AQAB"}]}`,
		"even exponent": `{"keys":[{"kty":"RSA","kid":"r","n":"` + good["n"].(string) + `","e":"Ag"}]}`,
		"duplicate kid": string(jwksJSON(good, good)),
		"only P-384":    `{"keys":[{"kty":"EC","crv":"P-384","kid":"e","x":"` + b64u(p384.X.Bytes()) + `","y":"` + b64u(p384.Y.Bytes()) + `"}]}`,
		"only enc":      strings.Replace(string(jwksJSON(good)), `"use":"sig"`, `"use":"enc"`, 1),
		"only HS256":    `{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}`,
	} {
		if keys, err := ParseJWKS([]byte(body)); err == nil {
			t.Errorf("%s: accepted %v", name, keys)
		}
	}
	huge := `{"keys":[],"pad":"` + strings.Repeat("x", MaxJWKSBytes) + `"}`
	srv.set(http.StatusOK, []byte(huge))
	if _, err := NewJWKS(t.Context(), srv.URL, JWKSOptions{Client: srv.Client()}); err == nil || !strings.Contains(err.Error(), "over") {
		t.Errorf("huge key set: %v", err)
	}
}
