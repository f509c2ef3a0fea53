package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynamerge/dynamerge/browser"
	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/server"
)

// run is the whole program: it parses the configuration,
// opens the store, the engine and the HTTP server, serves until ctx is
// cancelled (SIGINT/SIGTERM), then shuts down in reverse order within
// --shutdown-timeout. stdout is unused today (logs go to stderr) but kept
// so that tests and future subcommands have somewhere to print results.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) (err error) {
	_ = stdout
	cfg, err := ParseConfig(args, lookupEnv, stderr)
	if err != nil {
		return err
	}
	logger, err := newLogger(cfg, stderr)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}

	// Listen before opening the store, so that a port in use fails before
	// a bolt file or a DynamoDB table is created. Serve takes the listener
	// over; until then it is closed on the way out.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s (--addr): %w", cfg.Addr, err)
	}
	serving := false
	defer func() {
		if !serving {
			_ = ln.Close()
		}
	}()

	st, storeDesc, err := openStore(cfg)
	if err != nil {
		return err
	}
	// The store is closed last, after the engine has finished its writes.
	defer func() {
		if cerr := st.Close(); cerr != nil {
			logger.Error("closing the store", "err", cerr)
			err = errors.Join(err, fmt.Errorf("close store: %w", cerr))
		}
	}()

	stopPeers, err := startPeers(cfg, st, logger.With("component", "peers"))
	if err != nil {
		return err
	}
	defer stopPeers()

	if cfg.Workers > 0 {
		logger.Warn("--workers (DYNAMERGE_WORKERS) has no effect any more: changes are validated and documents built in pure Go, in this process", "workers", cfg.Workers)
	}
	eng, err := engine.Open(engine.Options{
		Store:          st,
		CacheBytes:     cfg.CacheBytes,
		MaxChangeBytes: int(cfg.MaxChangeBytes),
		MaxRecordBytes: cfg.MaxRecordBytes,
		Limits:         crdt.Limits{MaxOps: cfg.MaxOpsPerChange},
		MaxRecordOps:   cfg.MaxOpsPerRecord,
		CompactEvery:   cfg.CompactEvery,
		PurgeAfter:     cfg.PurgeDeletedAfter,
		NoGroupCommit:  cfg.NoGroupCommit,
		Logger:         logger.With("component", "engine"),
	})
	if err != nil {
		return fmt.Errorf("open engine: %w", err)
	}
	engineClosed := false
	defer func() {
		// Only reached on a start-up failure; the normal path closes the
		// engine inside shutdown, within the deadline.
		if !engineClosed {
			if cerr := eng.Close(context.Background()); cerr != nil {
				logger.Error("closing the engine", "err", cerr)
			}
		}
	}()

	authz, closeAuth, err := newAuthorizer(ctx, cfg, logger.With("component", "auth"))
	if err != nil {
		return err
	}
	defer closeAuth()
	// A nil *TokenAuth in the interface would not be a nil Authorizer.
	var authorizer server.Authorizer
	if authz != nil {
		authorizer = authz
	}

	ipLimit := server.RateLimit{PerSecond: cfg.IPRateLimit, Burst: cfg.IPRateBurst}
	maxSSE, maxRequests := cfg.MaxSSEPerSubject, cfg.MaxRequestsPerSubject
	if authorizer == nil && isLoopback(hostOf(cfg.Addr)) {
		// Development mode: only this machine can connect, and every local
		// client (tests, benchmarks, tabs) shares one address, so per-address
		// limits would only get in the way.
		ipLimit, maxSSE, maxRequests = server.RateLimit{}, 0, 0
	}
	// A store with metrics of its own (DynamoDB: consumed capacity units)
	// adds them to GET /metrics.
	var collectors []prometheus.Collector
	if mc, ok := st.(interface{ Collector() prometheus.Collector }); ok {
		collectors = append(collectors, mc.Collector())
	}
	app, err := server.New(server.Options{
		Engine:       eng,
		Logger:       logger.With("component", "server"),
		MaxBodyBytes: cfg.MaxBodyBytes,

		Authorizer:            authorizer,
		RateLimit:             server.RateLimit{PerSecond: cfg.RateLimit, Burst: cfg.RateBurst},
		IPRateLimit:           ipLimit,
		TrustedProxyHeader:    cfg.TrustedProxyHeader,
		MaxSSEPerSubject:      maxSSE,
		MaxSSE:                cfg.MaxSSE,
		MaxRequestsPerSubject: maxRequests,
		MaxConnections:        cfg.MaxConnections,
		BodyTimeout:           cfg.BodyTimeout,
		MinBodyRate:           cfg.MinBodyRate,
		MetricsToken:          cfg.MetricsToken,
		CORSOrigins:           cfg.CORSOriginList(),
		// The demo app at "/" and the browser library at "/dynamerge.js",
		// embedded at build time: no npm step to run the server.
		Assets:     browser.Assets(),
		Collectors: collectors,
	})
	if err != nil {
		return fmt.Errorf("create server: %w", err)
	}

	logger.Info("dynamerge started",
		"addr", ln.Addr().String(),
		"url", "http://"+ln.Addr().String()+"/",
		"store", storeDesc,
		"max_body_bytes", cfg.MaxBodyBytes,
		"cache_bytes", cfg.CacheBytes)
	// Without auth, the server itself warns loudly as it starts serving.
	if authz != nil {
		logger.Info("authentication required", "algorithms", authz.Algorithms(),
			"issuer", cfg.AuthIssuer, "audience", cfg.AudienceList(), "claim", cfg.AuthClaim)
	}

	// The server package owns the HTTP policy (timeouts, header size, body
	// pace, connection cap): what ships is what its tests run.
	serveErr := make(chan error, 1)
	serving = true
	go func() { serveErr <- app.Serve(ln) }()

	select {
	case err := <-serveErr:
		// Serve only returns early on a listener failure.
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}

	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	engineClosed = true
	err = shutdown(cfg.ShutdownTimeout, logger, app, eng)
	if serr := <-serveErr; serr != nil {
		err = errors.Join(err, fmt.Errorf("serve: %w", serr))
	}
	if err == nil {
		logger.Info("shutdown complete")
	}
	return err
}

// shutdown stops the HTTP side, then the engine, within timeout. The store
// is closed by the caller afterwards. A shutdown that runs out of time is an
// error (and a non-zero exit), but never loses an acknowledged change: a
// request whose answer was not sent was not acknowledged.
func shutdown(timeout time.Duration, logger *slog.Logger, app *server.Server, eng *engine.Engine) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	var errs []error
	// The server ends its event streams, stops accepting, drains in-flight
	// requests, and cuts what is left at the deadline.
	if err := app.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("server shutdown: %w", err))
	}
	if err := eng.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("close engine: %w", err))
	}
	if len(errs) > 0 {
		logger.Error("unclean shutdown", "err", errors.Join(errs...))
	}
	return errors.Join(errs...)
}

func hostOf(addr string) string {
	host, _, _ := net.SplitHostPort(addr)
	return host
}

// newAuthorizer builds the token checker of --auth-*, or nil (everything
// allowed) when none is configured. close stops the JWKS refresh.
func newAuthorizer(ctx context.Context, cfg Config, logger *slog.Logger) (a *server.TokenAuth, close func(), err error) {
	close = func() {}
	if !cfg.AuthConfigured() {
		return nil, close, nil
	}
	tc := server.TokenAuthConfig{
		HS256Secret: []byte(cfg.AuthHS256Secret),
		Issuer:      cfg.AuthIssuer,
		Audience:    cfg.AudienceList(),
		Claim:       cfg.AuthClaim,
		Leeway:      cfg.AuthLeeway,
	}
	if cfg.AuthLeeway == 0 {
		tc.Leeway = -1 // explicitly none; 0 would mean the default
	}
	if cfg.AuthJWKS != "" {
		jwks, err := server.NewJWKS(ctx, cfg.AuthJWKS, server.JWKSOptions{Logger: logger})
		if err != nil {
			return nil, close, fmt.Errorf("--auth-jwks: %w", err)
		}
		tc.Keys = jwks
		close = jwks.Close
	}
	a, err = server.NewTokenAuth(tc)
	if err != nil {
		close()
		return nil, func() {}, fmt.Errorf("%w: %w", errUsage, err)
	}
	return a, close, nil
}
