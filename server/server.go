package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/store"
)

// Default server settings.
const (
	// DefaultMaxBodyBytes bounds a request body; larger ones get 413 too_large.
	DefaultMaxBodyBytes = 16 << 20
	// DefaultMaxDocsPerSync bounds the docs of one /v1/sync request; more get
	// 413 too_large (the request is too large, whatever its bytes).
	DefaultMaxDocsPerSync = 1000
	// DefaultPingInterval is how often an idle SSE stream gets a ": ping"
	// comment, below the usual 30–60 s idle timeouts of proxies.
	DefaultPingInterval = 15 * time.Second
	// DefaultReadyTimeout bounds the store check of /readyz.
	DefaultReadyTimeout = 2 * time.Second
	// DefaultBodyTimeout and DefaultMinBodyRate bound how slowly a request
	// may arrive: its headers and the first DefaultBodyTimeout of its body,
	// then one more second per DefaultMinBodyRate bytes. A phone on a poor
	// link sends a 16 MiB push in time; a client trickling a byte a second
	// is cut after 10 s.
	DefaultBodyTimeout = 10 * time.Second
	DefaultMinBodyRate = 4 << 10
	// DefaultMaxHeaderBytes bounds a request's headers (and URL); larger
	// ones get 431.
	DefaultMaxHeaderBytes = 64 << 10
)

// HTTP timeouts of Serve. There is deliberately no WriteTimeout: it would
// cut every Server-Sent Events stream; answers are bounded by the engine's
// own deadlines, streams by Shutdown and token expiry.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
)

// Options configures a Server. Zero values mean defaults.
type Options struct {
	// Engine merges and stores records. Required.
	Engine *engine.Engine
	// Logger gets access logs and internal errors. Defaults to slog.Default().
	Logger *slog.Logger
	// MaxBodyBytes bounds a request body. Defaults to DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxDocsPerSync bounds the docs of one sync request. Defaults to
	// DefaultMaxDocsPerSync.
	MaxDocsPerSync int
	// Authorizer decides who may read and write which collection. Nil allows
	// everything (say so loudly at start-up; see AllowAll).
	Authorizer Authorizer
	// Assets is served at "/" (the demo app, later the browser bundle). Nil
	// serves a small built-in page that says what this server is.
	Assets fs.FS
	// PingInterval is the keep-alive period of SSE streams. Defaults to
	// DefaultPingInterval.
	PingInterval time.Duration

	// RateLimit bounds the /v1 requests of one token subject. Zero: none.
	RateLimit RateLimit
	// IPRateLimit bounds the /v1 requests of one client address that are
	// not authenticated: all of them without an Authenticator, failed ones
	// with it. Zero: none.
	IPRateLimit RateLimit
	// LimiterEntries bounds the subjects and addresses the rate limiters
	// remember. Defaults to DefaultLimiterEntries.
	LimiterEntries int
	// TrustedProxyHeader names the header in which a reverse proxy passes
	// the client's address ("X-Forwarded-For", "X-Real-IP", …). Empty: the
	// TCP peer is the client, and such headers are ignored, since clients
	// can forge them. Set it only behind a proxy that sets the header.
	TrustedProxyHeader string
	// MaxSSEPerSubject bounds the open /v1/events streams of one subject
	// (one address without auth). Zero: no bound.
	MaxSSEPerSubject int
	// MaxSSE bounds the open /v1/events streams of the whole server. Zero:
	// no bound.
	MaxSSE int
	// MaxRequestsPerSubject bounds the /v1 requests of one subject (one
	// address without auth) in flight at once, event streams apart; more
	// get 429 rate_limited. Zero: no bound.
	MaxRequestsPerSubject int
	// MaxConnections bounds the connections Serve holds open at once;
	// further ones wait in the kernel's backlog. Keep it below the
	// process's open-file limit. Zero: no bound.
	MaxConnections int
	// BodyTimeout and MinBodyRate bound how slowly a request body may
	// arrive: within BodyTimeout of the request's start, plus one second
	// per MinBodyRate bytes read. A slower one is cut (408). Defaults to
	// DefaultBodyTimeout and DefaultMinBodyRate.
	BodyTimeout time.Duration
	MinBodyRate int64
	// CORSOrigins lists the origins whose pages may call the API ("*" for
	// any). Empty: no CORS headers at all.
	CORSOrigins []string

	// MetricsToken, when set, must come as "Authorization: Bearer <token>"
	// on GET /metrics (401 otherwise): request rates, cache sizes and store
	// errors are for operators, not for every client. Empty: public.
	MetricsToken string

	// Collectors are added to GET /metrics, e.g. the store's own
	// (dynamo.Store.Collector: DynamoDB capacity units).
	Collectors []prometheus.Collector
}

// backend is what the server needs of the engine. *engine.Engine implements
// it; tests of the HTTP layer alone may give a fake.
type backend interface {
	Sync(ctx context.Context, reqs []engine.DocRequest) ([]engine.DocResult, error)
	View(ctx context.Context, key store.Key, heads []crdt.Hash) (engine.View, error)
	ViewWith(ctx context.Context, key store.Key, opts engine.ViewOptions) (engine.View, error)
	SetDeleted(ctx context.Context, key store.Key, deleted bool, by string) ([]crdt.Hash, error)
	History(ctx context.Context, key store.Key, cursor string, limit int) (engine.HistoryPage, error)
	PutJSON(ctx context.Context, key store.Key, body []byte, ifMatch, by string) (engine.WriteResult, error)
	PatchJSON(ctx context.Context, key store.Key, kind engine.PatchKind, patch []byte, ifMatch, by string) (engine.WriteResult, error)
	Restore(ctx context.Context, key store.Key, heads []crdt.Hash, ifMatch, by string) (engine.WriteResult, error)
	Feed(ctx context.Context, collection, cursor string, limit int) (store.FeedPage, error)
	Subscribe(collections []string) (<-chan engine.Event, func())
	Ready(ctx context.Context) error
	Stats() engine.Stats
}

var _ backend = (*engine.Engine)(nil)

// errShuttingDown answers requests that arrive during Shutdown.
var errShuttingDown = errors.New("server: shutting down")

// Server is the HTTP API of PROTOCOL.md on top of an engine.
type Server struct {
	opts    Options
	eng     backend
	log     *slog.Logger
	echo    *echo.Echo
	metrics *metrics

	// closing is closed by Shutdown: SSE streams end, new requests get 503.
	closing   chan struct{}
	closeOnce sync.Once
	inflight  sync.WaitGroup
	stopped   atomic.Bool

	mu   sync.Mutex
	http *http.Server // set by Serve

	assetTags assetTags // content ETags of Options.Assets (static.go)

	subLimits *limiters      // per token subject (ratelimit.go)
	ipLimits  *limiters      // per client address
	sse       *quota         // open SSE streams per subject or address, and in all
	requests  *quota         // requests in flight per subject or address
	conns     *limitListener // set by Serve when MaxConnections bounds it
}

// New returns a server for opts. It does not listen; use Handler, Start or
// Serve.
func New(opts Options) (*Server, error) {
	if opts.Engine == nil {
		return nil, errors.New("server: Options.Engine is required")
	}
	return newServer(opts, opts.Engine)
}

func newServer(opts Options, eng backend) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxDocsPerSync <= 0 {
		opts.MaxDocsPerSync = DefaultMaxDocsPerSync
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = DefaultPingInterval
	}
	if opts.BodyTimeout <= 0 {
		opts.BodyTimeout = DefaultBodyTimeout
	}
	if opts.MinBodyRate <= 0 {
		opts.MinBodyRate = DefaultMinBodyRate
	}
	s := &Server{
		opts:    opts,
		eng:     eng,
		log:     opts.Logger,
		closing: make(chan struct{}),

		subLimits: newLimiters(opts.RateLimit, opts.LimiterEntries),
		ipLimits:  newLimiters(opts.IPRateLimit, opts.LimiterEntries),
		sse:       newQuota(opts.MaxSSEPerSubject, opts.MaxSSE),
		requests:  newQuota(opts.MaxRequestsPerSubject, 0),
	}
	m, err := newMetrics(eng, opts.Collectors)
	if err != nil {
		return nil, fmt.Errorf("server: metrics: %w", err)
	}
	s.metrics = m
	s.echo = s.routes()
	return s, nil
}

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.handleError
	// Order matters: the request ID first so every later log line has it;
	// recovery inside the access log so a panic is logged with its 500.
	e.Use(s.requestIDMiddleware, s.accessLogMiddleware, s.recoverMiddleware, s.securityHeadersMiddleware, s.corsMiddleware, s.trackMiddleware)

	// HEAD as well as GET where load balancers and uptime checks probe;
	// net/http drops the body of a HEAD answer.
	e.GET("/healthz", s.handleHealthz)
	e.HEAD("/healthz", s.handleHealthz)
	e.GET("/readyz", s.handleReadyz)
	e.HEAD("/readyz", s.handleReadyz)
	e.GET("/metrics", s.handleMetrics)

	// guard (authentication, rate limits) runs before any handler of the
	// API reads the request.
	// requestQuota after guard, which picks the subject; not on the event
	// stream, which has its own quota.
	e.POST("/v1/sync", s.handleSync, s.guardMiddleware, s.requestQuotaMiddleware)
	e.POST("/v1/collections/:collection/docs", s.handleCreate, s.guardMiddleware, s.requestQuotaMiddleware)
	e.GET("/v1/collections/:collection/docs/:id", s.handleDoc, s.guardMiddleware, s.requestQuotaMiddleware)
	e.PUT("/v1/collections/:collection/docs/:id", s.handlePut, s.guardMiddleware, s.requestQuotaMiddleware)
	e.PATCH("/v1/collections/:collection/docs/:id", s.handlePatch, s.guardMiddleware, s.requestQuotaMiddleware)
	e.DELETE("/v1/collections/:collection/docs/:id", s.handleDelete, s.guardMiddleware, s.requestQuotaMiddleware)
	e.POST("/v1/collections/:collection/docs/:id/undelete", s.handleUndelete, s.guardMiddleware, s.requestQuotaMiddleware)
	e.GET("/v1/collections/:collection/docs/:id/changes", s.handleHistory, s.guardMiddleware, s.requestQuotaMiddleware)
	e.POST("/v1/collections/:collection/docs/:id/restore", s.handleRestore, s.guardMiddleware, s.requestQuotaMiddleware)
	e.GET("/v1/collections/:collection/feed", s.handleFeed, s.guardMiddleware, s.requestQuotaMiddleware)
	e.GET("/v1/events", s.handleEvents, s.guardMiddleware)

	e.GET("/", s.handleStatic)
	e.HEAD("/", s.handleStatic)
	e.GET("/*", s.handleStatic)
	e.HEAD("/*", s.handleStatic)
	return e
}

// Handler returns the server's http.Handler, for embedding it in another
// server. Shutdown still ends its SSE streams and waits for its in-flight
// requests, but the limits of Serve (timeouts, header size, connections)
// are the embedder's to set.
func (s *Server) Handler() http.Handler { return s.echo }

// Serve serves on l until Shutdown; it then returns nil. It owns the HTTP
// policy against slow and greedy clients: header size and time, a deadline
// on request bodies (see Options.BodyTimeout; event streams lift it), idle
// connections, and Options.MaxConnections.
func (s *Server) Serve(l net.Listener) error {
	if s.opts.MaxConnections > 0 {
		ll := newLimitListener(l, s.opts.MaxConnections)
		l = ll
		s.mu.Lock()
		s.conns = ll
		s.mu.Unlock()
	}
	hs := &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: readHeaderTimeout,
		// The whole request, headers and body, must arrive within
		// BodyTimeout; the body of /v1/sync gets more time as it arrives
		// (limitBody). A request without a body is not affected: net/http
		// clears the deadline once the body is read (its background read),
		// which TestEventsOutliveReadTimeout checks for event streams.
		ReadTimeout:    s.opts.BodyTimeout,
		IdleTimeout:    idleTimeout,
		MaxHeaderBytes: DefaultMaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.mu.Lock()
	if s.stopped.Load() {
		s.mu.Unlock()
		_ = l.Close()
		return nil
	}
	s.http = hs
	s.mu.Unlock()
	s.log.Info("server listening", slog.String("addr", l.Addr().String()),
		slog.Bool("auth", s.opts.Authorizer != nil))
	if s.opts.Authorizer == nil {
		s.log.Warn("NO AUTHENTICATION CONFIGURED: every client that can reach this address can read and write every collection",
			slog.String("addr", l.Addr().String()))
	}
	if err := hs.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("server: serve: %w", err)
	}
	return nil
}

// Shutdown stops accepting requests, ends SSE streams, and waits for
// in-flight requests until ctx is done. The caller closes the engine after
// it. New requests during Shutdown get 503 unavailable.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopped.Store(true)
	hs := s.http
	s.mu.Unlock()
	s.closeOnce.Do(func() { close(s.closing) })

	var err error
	if hs != nil {
		if e := hs.Shutdown(ctx); e != nil {
			err = fmt.Errorf("server: shutdown: %w", e)
			// Out of time: cut the remaining connections, so that the
			// caller can still close the engine and the store.
			_ = hs.Close()
		}
	}
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		if err == nil {
			err = fmt.Errorf("server: shutdown: requests still in flight: %w", ctx.Err())
		}
	}
	return err
}
