package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// JWKS settings.
const (
	// DefaultJWKSRefresh is how often a key set is fetched again: providers
	// rotate keys rarely and publish the new one well before using it.
	DefaultJWKSRefresh = time.Hour
	// DefaultJWKSMinRefetch bounds fetches caused by tokens naming an
	// unknown key (a rotation, or an attacker making up kids).
	DefaultJWKSMinRefetch = 30 * time.Second
	// MaxJWKSBytes bounds a key set document.
	MaxJWKSBytes = 1 << 20
	// minRSABits is the smallest RSA key accepted.
	minRSABits       = 2048
	jwksFetchTimeout = 10 * time.Second
)

// JWKSOptions configures a JWKS.
type JWKSOptions struct {
	// Client fetches https key sets; a client with a 10 s timeout if nil.
	Client *http.Client
	// Refresh is the period of background refreshes; DefaultJWKSRefresh if
	// zero.
	Refresh time.Duration
	// MinRefetch is the shortest time between two fetches; a token whose kid
	// is unknown triggers one at most this often. DefaultJWKSMinRefetch if
	// zero.
	MinRefetch time.Duration
	// Logger gets refresh failures; slog.Default() if nil.
	Logger *slog.Logger
}

// JWKS is a JSON Web Key Set (RFC 7517) read from a file or an https URL
// and kept fresh: refreshed every Refresh, and when a token names a key it
// does not hold (at most every MinRefetch). RSA (2048 bits or more) and EC
// P-256 signing keys are used; others are skipped. It implements KeySet.
type JWKS struct {
	src  string
	opts JWKSOptions

	mu   sync.RWMutex
	keys map[string]any // kid → *rsa.PublicKey or *ecdsa.PublicKey

	fetchMu   sync.Mutex // one fetch at a time
	lastFetch time.Time  // guarded by fetchMu

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

var _ KeySet = (*JWKS)(nil)

// NewJWKS loads a key set from src, an https URL or a file path, and
// refreshes it in the background until Close. It fails when the first load
// fails: a server must not start unable to verify any token.
func NewJWKS(ctx context.Context, src string, opts JWKSOptions) (*JWKS, error) {
	if strings.HasPrefix(strings.ToLower(src), "http://") {
		return nil, errors.New("auth: JWKS URL must use https")
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: jwksFetchTimeout}
	}
	if opts.Refresh <= 0 {
		opts.Refresh = DefaultJWKSRefresh
	}
	if opts.MinRefetch <= 0 {
		opts.MinRefetch = DefaultJWKSMinRefetch
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	j := &JWKS{src: src, opts: opts, stop: make(chan struct{}), done: make(chan struct{})}
	j.fetchMu.Lock()
	err := j.fetchLocked(ctx)
	j.fetchMu.Unlock()
	if err != nil {
		return nil, err
	}
	go j.refreshLoop()
	return j, nil
}

// Close stops the background refresh.
func (j *JWKS) Close() {
	j.stopOnce.Do(func() { close(j.stop) })
	<-j.done
}

// Key returns the key named kid for alg ("RS256" or "ES256"). An empty kid
// matches the only key of the right type, if there is exactly one. An
// unknown kid triggers a fetch (rate limited) before giving up.
func (j *JWKS) Key(ctx context.Context, kid, alg string) (any, error) {
	if k, err := j.lookup(kid, alg); err == nil {
		return k, nil
	}
	j.fetchMu.Lock()
	if time.Since(j.lastFetch) >= j.opts.MinRefetch {
		if err := j.fetchLocked(ctx); err != nil {
			j.opts.Logger.Warn("JWKS refresh for unknown key failed", slog.String("kid", kid), slog.String("error", err.Error()))
		}
	}
	j.fetchMu.Unlock()
	return j.lookup(kid, alg)
}

func (j *JWKS) lookup(kid, alg string) (any, error) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	if kid == "" {
		var found any
		n := 0
		for _, k := range j.keys {
			if keyFits(k, alg) {
				found = k
				n++
			}
		}
		if n == 1 {
			return found, nil
		}
		return nil, errors.New("token has no kid and the key set has no single key for its algorithm")
	}
	k, ok := j.keys[kid]
	if !ok {
		return nil, fmt.Errorf("unknown key %q", kid)
	}
	if !keyFits(k, alg) {
		return nil, fmt.Errorf("key %q does not fit %s", kid, alg)
	}
	return k, nil
}

func keyFits(k any, alg string) bool {
	switch k.(type) {
	case *rsa.PublicKey:
		return alg == "RS256"
	case *ecdsa.PublicKey:
		return alg == "ES256"
	}
	return false
}

func (j *JWKS) refreshLoop() {
	defer close(j.done)
	t := time.NewTicker(j.opts.Refresh)
	defer t.Stop()
	for {
		select {
		case <-j.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), jwksFetchTimeout)
			j.fetchMu.Lock()
			err := j.fetchLocked(ctx)
			j.fetchMu.Unlock()
			cancel()
			if err != nil {
				// Keep the keys we have: a provider's outage must not lock
				// every user out.
				j.opts.Logger.Warn("JWKS refresh failed; keeping the previous keys", slog.String("error", err.Error()))
			}
		}
	}
}

// fetchLocked reads and installs the key set; fetchMu is held. A failed
// fetch leaves the previous keys in place.
func (j *JWKS) fetchLocked(ctx context.Context) error {
	j.lastFetch = time.Now()
	b, err := j.read(ctx)
	if err != nil {
		return fmt.Errorf("auth: JWKS %s: %w", j.src, err)
	}
	keys, err := ParseJWKS(b)
	if err != nil {
		return fmt.Errorf("auth: JWKS %s: %w", j.src, err)
	}
	j.mu.Lock()
	j.keys = keys
	j.mu.Unlock()
	return nil
}

func (j *JWKS) read(ctx context.Context) ([]byte, error) {
	if !strings.HasPrefix(strings.ToLower(j.src), "https://") {
		f, err := os.Open(j.src)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return readCapped(f)
	}
	ctx, cancel := context.WithTimeout(ctx, jwksFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.src, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	res, err := j.opts.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP status %d", res.StatusCode)
	}
	return readCapped(res.Body)
}

func readCapped(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxJWKSBytes {
		return nil, fmt.Errorf("key set over %d bytes", MaxJWKSBytes)
	}
	return b, nil
}

// jwk holds the members of a JSON Web Key that matter here.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// ParseJWKS parses a JWK Set document into its signing keys by kid. Keys
// for encryption, of other types or curves, or with an "alg" that is
// neither RS256 nor ES256 are skipped; a malformed RSA or EC key, a
// duplicate kid, or a set with no usable key is an error.
func ParseJWKS(b []byte) (map[string]any, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("not a JWK set: %w", err)
	}
	keys := make(map[string]any)
	for i, raw := range set.Keys {
		var k jwk
		if err := json.Unmarshal(raw, &k); err != nil {
			return nil, fmt.Errorf("keys[%d]: %w", i, err)
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		var (
			pub any
			err error
		)
		switch {
		case k.Kty == "RSA" && (k.Alg == "" || k.Alg == "RS256"):
			pub, err = rsaKey(k)
		case k.Kty == "EC" && k.Crv == "P-256" && (k.Alg == "" || k.Alg == "ES256"):
			pub, err = ecKey(k)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("keys[%d] (kid %q): %w", i, k.Kid, err)
		}
		if _, dup := keys[k.Kid]; dup {
			return nil, fmt.Errorf("keys[%d]: duplicate kid %q", i, k.Kid)
		}
		keys[k.Kid] = pub
	}
	if len(keys) == 0 {
		return nil, errors.New("no RS256 or ES256 signing key")
	}
	return keys, nil
}

func b64url(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

func rsaKey(k jwk) (*rsa.PublicKey, error) {
	n, err := b64url(k.N)
	if err != nil || len(n) == 0 {
		return nil, errors.New("bad modulus")
	}
	e, err := b64url(k.E)
	if err != nil || len(e) == 0 || len(e) > 4 {
		return nil, errors.New("bad exponent")
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	if pub.N.BitLen() < minRSABits {
		return nil, fmt.Errorf("RSA key of %d bits, want at least %d", pub.N.BitLen(), minRSABits)
	}
	if pub.E < 3 || pub.E%2 == 0 {
		return nil, errors.New("bad exponent")
	}
	return pub, nil
}

func ecKey(k jwk) (*ecdsa.PublicKey, error) {
	x, err := b64url(k.X)
	if err != nil || len(x) != 32 {
		return nil, errors.New("bad x coordinate")
	}
	y, err := b64url(k.Y)
	if err != nil || len(y) != 32 {
		return nil, errors.New("bad y coordinate")
	}
	point := append(append([]byte{4}, x...), y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		return nil, fmt.Errorf("not a P-256 point: %w", err)
	}
	return pub, nil
}
