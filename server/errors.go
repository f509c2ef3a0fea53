package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/protocol"
	"github.com/dynamerge/dynamerge/store"
)

// Error codes of the protocol (PROTOCOL.md), sent as "code" in error bodies.
const (
	CodeBadRequest         = protocol.CodeBadRequest
	CodeInvalidID          = protocol.CodeInvalidID
	CodeUnauthorized       = protocol.CodeUnauthorized
	CodeForbidden          = protocol.CodeForbidden
	CodeNotFound           = protocol.CodeNotFound
	CodeDeleted            = protocol.CodeDeleted
	CodeGone               = protocol.CodeGone
	CodeTooLarge           = protocol.CodeTooLarge
	CodeRateLimited        = protocol.CodeRateLimited
	CodeUnavailable        = protocol.CodeUnavailable
	CodeInvalidChange      = protocol.CodeInvalidChange
	CodeMissingDeps        = protocol.CodeMissingDeps
	CodeInternal           = protocol.CodeInternal
	CodeConflict           = protocol.CodeConflict
	CodePreconditionFailed = protocol.CodePreconditionFailed
	CodeMethodNotAllowed   = protocol.CodeMethodNotAllowed // extension: a known path, a wrong method
)

// DefaultRetryAfter is what 503 answers put in Retry-After when nothing more
// precise is known: long enough not to hammer a failing store, short enough
// for a user not to notice.
const DefaultRetryAfter = 2 * time.Second

// Errors a handler or an Authorizer returns to get a specific answer.
var (
	// ErrUnauthorized: the request carries no valid credentials (401
	// "unauthorized"). Returned by an Authorizer.
	ErrUnauthorized = errors.New("server: unauthorized")
	// ErrForbidden: the credentials may not read or write the collection
	// (403 "forbidden", or the per-doc "forbidden" inside /v1/sync).
	// Returned by an Authorizer.
	ErrForbidden = errors.New("server: forbidden")
	// ErrRateLimited: the caller sends too much (429 "rate_limited"). Wrap it
	// in a *RateLimitError to say when to come back.
	ErrRateLimited = errors.New("server: rate limited")
)

// RateLimitError is a rate-limit refusal that tells the client when to retry.
// errors.Is(err, ErrRateLimited) holds for it.
type RateLimitError struct {
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("server: rate limited, retry after %s", e.RetryAfter)
}

// Is makes errors.Is(e, ErrRateLimited) true.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// apiError is an answer the server chose on purpose: a status, a protocol
// code, and a message that is safe to show the client.
type apiError struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// Constructors for the answers handlers give on bad input.
func badRequest(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: fmt.Sprintf(format, args...)}
}

// invalidID answers a key that breaks the protocol's rules. err comes from
// store.Key.Validate, whose text only describes the client's own input.
func invalidID(err error) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: CodeInvalidID, Message: err.Error()}
}

func tooLarge(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Message: fmt.Sprintf(format, args...)}
}

// classify maps any error reaching the HTTP layer to the answer the client
// gets. It is the one place where domain errors become status codes. The
// second result tells whether err is an internal error: its text must be
// logged and never sent.
func classify(err error) (ae *apiError, internal bool) {
	var direct *apiError
	if errors.As(err, &direct) {
		return direct, false
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return fromEchoError(he), he.Code >= 500
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge("request body over %d bytes", mbe.Limit), false
	}
	var rle *RateLimitError
	if errors.As(err, &rle) {
		return &apiError{Status: http.StatusTooManyRequests, Code: CodeRateLimited, Message: "too many requests", RetryAfter: rle.RetryAfter}, false
	}
	switch {
	case errors.Is(err, engine.ErrGone):
		// First: a stale device's changes that build on a purged history
		// also wrap ErrMissingDeps.
		return &apiError{Status: http.StatusGone, Code: CodeGone, Message: "the record was purged; nothing of its old history is accepted"}, false
	case errors.Is(err, ErrUnauthorized):
		return &apiError{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: "missing or invalid credentials"}, false
	case errors.Is(err, ErrForbidden):
		return &apiError{Status: http.StatusForbidden, Code: CodeForbidden, Message: "not allowed for this collection"}, false
	case errors.Is(err, ErrRateLimited):
		return &apiError{Status: http.StatusTooManyRequests, Code: CodeRateLimited, Message: "too many requests", RetryAfter: time.Second}, false
	case errors.Is(err, store.ErrInvalidKey):
		// Handlers validate keys themselves with a precise message; this is
		// the backstop for a deeper layer refusing one, whose text may name
		// internals.
		return &apiError{Status: http.StatusBadRequest, Code: CodeInvalidID, Message: "invalid collection or id"}, false
	case errors.Is(err, store.ErrInvalidCursor):
		return badRequest("after: not a cursor this server gave out"), false
	case errors.Is(err, engine.ErrInvalidWrite):
		// The reason describes the client's own body or patch.
		return badRequest("%s", writeReason(err)), false
	case errors.Is(err, engine.ErrPreconditionFailed):
		return &apiError{Status: http.StatusPreconditionFailed, Code: CodePreconditionFailed, Message: "the record changed since the If-Match ETag"}, false
	case errors.Is(err, engine.ErrTestFailed):
		return &apiError{Status: http.StatusConflict, Code: CodeConflict, Message: "a JSON Patch test failed: " + writeReason(err)}, false
	case errors.Is(err, engine.ErrDeleted):
		return &apiError{Status: http.StatusNotFound, Code: CodeDeleted, Message: "the record is deleted; undelete or restore it first"}, false
	case errors.Is(err, engine.ErrUnknownHeads):
		// Time travel to a version this server does not hold (yet): the
		// version is what is missing, as with a record never written.
		return &apiError{Status: http.StatusNotFound, Code: CodeNotFound, Message: "the record has no change with one of these heads"}, false
	case errors.Is(err, engine.ErrNotFound), errors.Is(err, store.ErrNotFound):
		return &apiError{Status: http.StatusNotFound, Code: CodeNotFound, Message: "record not found"}, false
	case errors.Is(err, engine.ErrTooLarge), errors.Is(err, store.ErrTooLarge), errors.Is(err, crdt.ErrChunkTooLarge):
		// Before ErrInvalidChange, which ErrChunkTooLarge also wraps: the
		// bytes are valid but over the limits.
		return tooLarge("change or record over the server's size limits"), false
	case errors.Is(err, crdt.ErrInvalidChange):
		// The reason describes the client's own bytes (which change, which
		// op, what is wrong with it), which is what its developer needs.
		return &apiError{Status: http.StatusBadRequest, Code: CodeInvalidChange, Message: "bytes are not valid Automerge change chunks: " + invalidReason(err)}, false
	case errors.Is(err, crdt.ErrMissingDeps):
		return &apiError{Status: http.StatusBadRequest, Code: CodeMissingDeps, Message: "changes depend on changes the server does not have; resend from heads"}, false
	case errors.Is(err, engine.ErrUnavailable), errors.Is(err, store.ErrUnavailable):
		return &apiError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "storage unavailable, retry later", RetryAfter: DefaultRetryAfter}, false
	case errors.Is(err, engine.ErrClosed), errors.Is(err, errShuttingDown):
		return &apiError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "server shutting down, retry later", RetryAfter: DefaultRetryAfter}, false
	case errors.Is(err, context.Canceled):
		// The client went away (or Shutdown gave up); whatever we answer is
		// unlikely to be read, and it is not a server bug.
		return &apiError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "request cancelled, retry later", RetryAfter: DefaultRetryAfter}, false
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "timed out, retry later", RetryAfter: DefaultRetryAfter}, false
	}
	return &apiError{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error"}, true
}

func fromEchoError(he *echo.HTTPError) *apiError {
	msg := http.StatusText(he.Code)
	if s, ok := he.Message.(string); ok && he.Code < 500 {
		msg = s
	}
	switch he.Code {
	case http.StatusNotFound:
		return &apiError{Status: he.Code, Code: CodeNotFound, Message: "no such endpoint"}
	case http.StatusMethodNotAllowed:
		return &apiError{Status: he.Code, Code: CodeMethodNotAllowed, Message: "method not allowed"}
	case http.StatusRequestEntityTooLarge:
		return &apiError{Status: he.Code, Code: CodeTooLarge, Message: msg}
	case http.StatusUnauthorized:
		return &apiError{Status: he.Code, Code: CodeUnauthorized, Message: msg}
	case http.StatusForbidden:
		return &apiError{Status: he.Code, Code: CodeForbidden, Message: msg}
	case http.StatusTooManyRequests:
		return &apiError{Status: he.Code, Code: CodeRateLimited, Message: msg, RetryAfter: time.Second}
	case http.StatusServiceUnavailable:
		return &apiError{Status: he.Code, Code: CodeUnavailable, Message: msg, RetryAfter: DefaultRetryAfter}
	}
	if he.Code >= 500 {
		return &apiError{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error"}
	}
	return &apiError{Status: he.Code, Code: CodeBadRequest, Message: msg}
}

// handleError is echo's HTTPErrorHandler: every error a handler returns is
// answered here, as {"error":{"code","message"}}.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		// Headers are gone (an SSE stream broke, say); all we can do is log.
		if !errors.Is(err, context.Canceled) {
			s.log.LogAttrs(c.Request().Context(), slog.LevelWarn, "error after response started",
				slog.String("request_id", requestID(c)), slog.String("error", err.Error()))
		}
		return
	}
	ae, internal := classify(err)
	switch {
	case internal:
		s.log.LogAttrs(c.Request().Context(), slog.LevelError, "internal error",
			slog.String("request_id", requestID(c)),
			slog.String("method", c.Request().Method),
			slog.String("path", logPath(c.Request())),
			slog.String("error", err.Error()))
	case ae.Status >= 500 && !errors.Is(err, errShuttingDown):
		// Store failures: the client only learns "retry later"; operators
		// need the cause.
		s.log.LogAttrs(c.Request().Context(), slog.LevelWarn, "request failed",
			slog.String("request_id", requestID(c)),
			slog.String("path", logPath(c.Request())),
			slog.String("error", err.Error()))
	}
	writeError(c, ae)
}

func writeError(c echo.Context, ae *apiError) {
	if ae.RetryAfter > 0 {
		c.Response().Header().Set("Retry-After", formatSeconds(ae.RetryAfter))
	}
	if ae.Status == http.StatusUnauthorized {
		// RFC 6750 section 3: say which scheme the server wants.
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="dynamerge"`)
	}
	var err error
	if c.Request().Method == http.MethodHead {
		err = c.NoContent(ae.Status)
	} else {
		err = c.JSON(ae.Status, protocol.ErrorBody{Error: protocol.ErrorDetail{Code: ae.Code, Message: ae.Message}})
	}
	_ = err // the client went away; nothing left to tell it
}

// writeReason returns why a write was refused, without the wrapping of the
// handler and the engine, bounded in length.
func writeReason(err error) string {
	msg := err.Error()
	for _, p := range []string{"crdt: invalid write: ", "engine: JSON Patch test failed: "} {
		if i := strings.Index(msg, p); i >= 0 {
			msg = msg[i+len(p):]
		}
	}
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return msg
}

// invalidReason returns what crdt says is wrong with a change, without the
// engine's wrapping, bounded in length.
func invalidReason(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "crdt: invalid change: "); i >= 0 {
		msg = msg[i+len("crdt: invalid change: "):]
	}
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return msg
}
