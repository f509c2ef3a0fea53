package server

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
)

// HeaderRequestID carries the request ID: taken from the request when it is
// sane (a proxy's), generated otherwise, and echoed in the answer.
const HeaderRequestID = "X-Request-ID"

const ctxRequestID = "dynamerge.request_id"

func (s *Server) requestIDMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(HeaderRequestID)
		if !validRequestID(id) {
			id = newRequestID()
		}
		c.Set(ctxRequestID, id)
		c.Response().Header().Set(HeaderRequestID, id)
		return next(c)
	}
}

// maxRequestID bounds a request ID taken from the client: a UUID is 36
// bytes, a W3C trace ID 32.
const maxRequestID = 64

// validRequestID accepts what proxies send (UUIDs, hex, base64url) and
// refuses anything that could forge log lines or bloat them.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

func requestID(c echo.Context) string {
	id, _ := c.Get(ctxRequestID).(string)
	return id
}

// accessLogMiddleware logs one line per request and records its metrics. It
// runs the error handler itself so that the status it logs is the one sent.
func (s *Server) accessLogMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		elapsed := time.Since(start)
		req, res := c.Request(), c.Response()
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		s.metrics.observe(route, req.Method, res.Status, elapsed)
		level := slog.LevelInfo
		if res.Status >= 500 {
			level = slog.LevelWarn
		}
		s.log.LogAttrs(req.Context(), level, "http request",
			slog.String("request_id", requestID(c)),
			slog.String("method", req.Method),
			slog.String("path", logPath(req)),
			slog.String("route", route),
			slog.Int("status", res.Status),
			slog.Int64("bytes_in", req.ContentLength),
			slog.Int64("bytes_out", res.Size),
			slog.Duration("duration", elapsed),
			slog.String("remote", req.RemoteAddr),
		)
		return nil
	}
}

// maxLoggedPath bounds the path in a log line: a URL of a megabyte must not
// make a log line of a megabyte.
const maxLoggedPath = 256

// logPath is the request's path as logs show it, cut at maxLoggedPath
// bytes (on a UTF-8 boundary, with "…" marking the cut).
func logPath(r *http.Request) string {
	p := r.URL.Path
	if len(p) <= maxLoggedPath {
		return p
	}
	cut := maxLoggedPath
	for cut > 0 && !utf8.RuneStart(p[cut]) {
		cut--
	}
	return p[:cut] + "…"
}

// recoverMiddleware turns a panic in a handler into a logged 500: one bad
// request must never take the process down.
func (s *Server) recoverMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			if r == http.ErrAbortHandler {
				panic(r) // net/http's own way to abort a response; it handles it
			}
			s.log.LogAttrs(c.Request().Context(), slog.LevelError, "panic in handler",
				slog.String("request_id", requestID(c)),
				slog.String("path", logPath(c.Request())),
				slog.String("panic", fmt.Sprint(r)),
				slog.String("stack", string(debug.Stack())))
			err = fmt.Errorf("server: panic: %v", r) // classified as internal
		}()
		return next(c)
	}
}

// securityHeadersMiddleware sets headers that cost nothing and close off
// whole classes of browser attacks on the API and the demo app.
func (s *Server) securityHeadersMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		// 'wasm-unsafe-eval' lets the browser library compile Automerge's
		// WebAssembly (without it open() fails); it allows no JS eval.
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		if p := c.Request().URL.Path; p == "/v1" || strings.HasPrefix(p, "/v1/") {
			// Records are private to their readers: no shared cache may
			// keep them, no browser may write them to disk. Errors too.
			h.Set("Cache-Control", "private, no-store")
		}
		return next(c)
	}
}

// trackMiddleware counts in-flight requests for Shutdown and refuses new
// ones once it started.
func (s *Server) trackMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		s.mu.Lock()
		if s.stopped.Load() {
			s.mu.Unlock()
			c.Response().Header().Set("Connection", "close")
			return errShuttingDown
		}
		s.inflight.Add(1)
		s.mu.Unlock()
		defer s.inflight.Done()
		return next(c)
	}
}

// formatSeconds renders a Retry-After value.
func formatSeconds(d time.Duration) string {
	return strconv.Itoa(int((d + time.Second - 1) / time.Second))
}

const ctxClientKey = "dynamerge.client_key"

// guardMiddleware authenticates /v1 requests (when the Authorizer is an
// Authenticator) and applies rate limits: per subject for authenticated
// requests, per client address otherwise. A bad token is refused before
// the handler reads anything, so even an empty sync answers 401; failed
// attempts count against the address, so guessing tokens is rate limited.
func (s *Server) guardMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		lim := s.ipLimits
		key := "ip:" + clientIP(req, s.opts.TrustedProxyHeader)
		if a, ok := s.opts.Authorizer.(Authenticator); ok {
			p, err := a.Authenticate(req)
			if err != nil {
				if ok, wait := s.ipLimits.allow(key); !ok {
					return &RateLimitError{RetryAfter: wait}
				}
				// The reason is for operators; the client only learns 401.
				s.log.LogAttrs(req.Context(), slog.LevelInfo, "authentication failed",
					slog.String("request_id", requestID(c)),
					slog.String("client", key),
					slog.String("reason", err.Error()))
				return err
			}
			c.SetRequest(req.WithContext(withPrincipal(req.Context(), p)))
			lim, key = s.subLimits, "sub:"+p.Subject
		}
		c.Set(ctxClientKey, key)
		if ok, wait := lim.allow(key); !ok {
			return &RateLimitError{RetryAfter: wait}
		}
		return next(c)
	}
}

// clientKey is the rate limit key guardMiddleware chose for the request.
func clientKey(c echo.Context) string {
	k, _ := c.Get(ctxClientKey).(string)
	return k
}
