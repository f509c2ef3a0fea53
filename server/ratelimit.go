package server

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rate limit defaults (used by cmd/dynamerge; a zero Options.RateLimit
// means no limit, for embedders and tests).
const (
	// DefaultRatePerSecond and DefaultRateBurst: an app syncing on every
	// keystroke with a batch per second stays far below; a burst covers a
	// device coming back online with many records (SyncAll batches them).
	DefaultRatePerSecond = 20
	DefaultRateBurst     = 100
	// DefaultMaxSSEPerSubject bounds the SSE streams of one subject (or one
	// IP without auth): a few tabs on a few devices.
	DefaultMaxSSEPerSubject = 16
	// DefaultLimiterEntries bounds the memory of the limiter map: about 200
	// bytes an entry, so 100k subjects or addresses cost ~20 MB.
	DefaultLimiterEntries = 100_000
)

// RateLimit is a token bucket: PerSecond requests a second on average,
// Burst at once. A zero PerSecond means no limit.
type RateLimit struct {
	PerSecond float64
	Burst     int
}

// limiters holds one token bucket per key ("sub:…" or "ip:…"), evicting
// idle entries so that a stream of new keys (spoofed subjects cannot exist,
// but addresses are cheap with IPv6) cannot grow it without bound.
type limiters struct {
	limit RateLimit
	max   int

	mu    sync.Mutex
	m     map[string]*limiterEntry
	sweep time.Time
	now   func() time.Time
}

type limiterEntry struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLimiters(l RateLimit, max int) *limiters {
	if max <= 0 {
		max = DefaultLimiterEntries
	}
	if l.Burst <= 0 {
		l.Burst = max1(int(l.PerSecond))
	}
	return &limiters{limit: l, max: max, m: make(map[string]*limiterEntry), now: time.Now}
}

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

// idleAfter is how long an entry may sit unused before its bucket is full
// again; dropping it then forgets nothing.
func (l *limiters) idleAfter() time.Duration {
	return time.Duration(float64(l.limit.Burst)/l.limit.PerSecond*float64(time.Second)) + time.Second
}

// allow takes one token for key, or says how long to wait for one.
func (l *limiters) allow(key string) (ok bool, retryAfter time.Duration) {
	if l == nil || l.limit.PerSecond <= 0 {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	idle := l.idleAfter()
	// A full map sweeps at most once a second, so that a flood of new
	// keys costs an O(1) eviction each rather than a scan.
	if now.Sub(l.sweep) > idle || (len(l.m) >= l.max && now.Sub(l.sweep) > time.Second) {
		for k, e := range l.m {
			if now.Sub(e.seen) > idle {
				delete(l.m, k)
			}
		}
		l.sweep = now
	}
	e, found := l.m[key]
	if !found {
		if len(l.m) >= l.max {
			// Every entry is active: drop an arbitrary one (map order is
			// random). Its owner gets a fresh bucket, which is the price of
			// bounded memory under a flood of distinct keys.
			for k := range l.m {
				delete(l.m, k)
				break
			}
		}
		e = &limiterEntry{lim: rate.NewLimiter(rate.Limit(l.limit.PerSecond), l.limit.Burst)}
		l.m[key] = e
	}
	e.seen = now
	r := e.lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// size is the number of keys held (tests).
func (l *limiters) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// quota counts things held at once (open SSE streams, requests in flight)
// per key and in total. A zero bound is no bound.
type quota struct {
	perKey int
	total  int

	mu  sync.Mutex
	n   map[string]int
	sum int
}

func newQuota(perKey, total int) *quota {
	return &quota{perKey: perKey, total: total, n: map[string]int{}}
}

// acquire takes a slot for key; release gives it back (once, however often
// it is called). ok is false when key holds perKey slots already, or all
// keys together hold total.
func (q *quota) acquire(key string) (release func(), ok bool) {
	if q.perKey <= 0 && q.total <= 0 {
		return func() {}, true
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.perKey > 0 && q.n[key] >= q.perKey || q.total > 0 && q.sum >= q.total {
		return nil, false
	}
	q.n[key]++
	q.sum++
	var once sync.Once
	return func() {
		once.Do(func() {
			q.mu.Lock()
			defer q.mu.Unlock()
			q.sum--
			if q.n[key]--; q.n[key] <= 0 {
				delete(q.n, key)
			}
		})
	}, true
}

// clientIP is the address a request comes from: the TCP peer, or, when a
// trusted proxy header is configured, the address that header names. For
// X-Forwarded-For the last entry is taken, the one the nearest proxy
// appended; earlier ones come from the client and can be forged. Without
// the setting the header is ignored, so a client cannot pick its own rate
// limit bucket. IPv6 addresses are grouped by /64, which one host usually
// owns entirely.
func clientIP(r *http.Request, trustedHeader string) string {
	ip := ""
	if trustedHeader != "" {
		v := r.Header.Values(trustedHeader)
		if len(v) > 0 {
			last := v[len(v)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			ip = strings.TrimSpace(last)
		}
	}
	if ip == "" {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		ip = host
	}
	parsed := net.ParseIP(strings.Trim(ip, "[]"))
	if parsed == nil {
		// Some proxies append the port ("1.2.3.4:5678", "[::1]:5678").
		if host, _, err := net.SplitHostPort(ip); err == nil {
			parsed = net.ParseIP(host)
		}
	}
	if parsed == nil {
		// A proxy sent something else than an address: still a key, but a
		// bounded one.
		if len(ip) > 64 {
			ip = ip[:64]
		}
		return ip
	}
	if parsed.To4() == nil {
		return parsed.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return parsed.String()
}
