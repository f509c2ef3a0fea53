package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/protocol"
	"github.com/dynamerge/dynamerge/store"
)

func TestClassify(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("layer: %w", err) }
	tests := []struct {
		name       string
		err        error
		status     int
		code       string
		internal   bool
		retryAfter bool
	}{
		{"api error", badRequest("x"), 400, CodeBadRequest, false, false},
		{"unauthorized", wrap(ErrUnauthorized), 401, CodeUnauthorized, false, false},
		{"forbidden", wrap(ErrForbidden), 403, CodeForbidden, false, false},
		{"rate limited", wrap(ErrRateLimited), 429, CodeRateLimited, false, true},
		{"rate limited typed", wrap(&RateLimitError{RetryAfter: 3 * time.Second}), 429, CodeRateLimited, false, true},
		{"invalid key", wrap(store.ErrInvalidKey), 400, CodeInvalidID, false, false},
		{"invalid cursor", wrap(store.ErrInvalidCursor), 400, CodeBadRequest, false, false},
		{"engine not found", wrap(engine.ErrNotFound), 404, CodeNotFound, false, false},
		{"store not found", wrap(store.ErrNotFound), 404, CodeNotFound, false, false},
		{"unknown heads", fmt.Errorf("%w: x: %w", engine.ErrUnknownHeads, crdt.ErrMissingDeps), 404, CodeNotFound, false, false},
		{"engine too large", wrap(engine.ErrTooLarge), 413, CodeTooLarge, false, false},
		{"store too large", wrap(store.ErrTooLarge), 413, CodeTooLarge, false, false},
		{"body too large", wrap(&http.MaxBytesError{Limit: 10}), 413, CodeTooLarge, false, false},
		{"invalid change", wrap(crdt.ErrInvalidChange), 400, CodeInvalidChange, false, false},
		{"missing deps", wrap(crdt.ErrMissingDeps), 400, CodeMissingDeps, false, false},
		{"engine unavailable", wrap(engine.ErrUnavailable), 503, CodeUnavailable, false, true},
		{"store unavailable", wrap(store.ErrUnavailable), 503, CodeUnavailable, false, true},
		{"engine closed", wrap(engine.ErrClosed), 503, CodeUnavailable, false, true},
		{"shutting down", errShuttingDown, 503, CodeUnavailable, false, true},
		{"deadline", wrap(context.DeadlineExceeded), 503, CodeUnavailable, false, true},
		{"cancelled", wrap(context.Canceled), 503, CodeUnavailable, false, true},
		{"echo 404", echo.ErrNotFound, 404, CodeNotFound, false, false},
		{"echo 405", echo.ErrMethodNotAllowed, 405, CodeMethodNotAllowed, false, false},
		{"echo 500", echo.ErrInternalServerError, 500, CodeInternal, true, false},
		{"unknown", errors.New("disk on fire at /var/lib/secret"), 500, CodeInternal, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ae, internal := classify(tt.err)
			if got, want := ae.Status, tt.status; got != want {
				t.Errorf("Status=%d, want %d", got, want)
			}
			if got, want := ae.Code, tt.code; got != want {
				t.Errorf("Code=%q, want %q", got, want)
			}
			if got, want := internal, tt.internal; got != want {
				t.Errorf("internal=%v, want %v", got, want)
			}
			if got, want := ae.RetryAfter > 0, tt.retryAfter; got != want {
				t.Errorf("RetryAfter=%v, want set=%v", ae.RetryAfter, want)
			}
			if internal && ae.Message != "internal error" {
				t.Errorf("internal error leaks its text: %q", ae.Message)
			}
		})
	}
}

// TestPerDocErrors: classify gives the per-doc code of every error a sync entry
// may carry; the rest fail the whole request.
func TestPerDocErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code string
		ok   bool
	}{
		{"invalid change", fmt.Errorf("apply: %w", crdt.ErrInvalidChange), CodeInvalidChange, true},
		{"missing deps", fmt.Errorf("apply: %w", engine.ErrMissingDeps), CodeMissingDeps, true},
		{"too large", fmt.Errorf("apply: %w", engine.ErrTooLarge), CodeTooLarge, true},
		{"forbidden", ErrForbidden, CodeForbidden, true},
		{"gone", engine.ErrGone, CodeGone, true},
		{"gone over missing deps", fmt.Errorf("%w: %w", engine.ErrGone, engine.ErrMissingDeps), CodeGone, true},
		{"unavailable is not per doc", engine.ErrUnavailable, "", false},
		{"unknown is not per doc", errors.New("boom"), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ae, internal := classify(tt.err)
			ok := !internal && slices.Contains(protocol.DocCodes, ae.Code)
			if ok != tt.ok || ok && ae.Code != tt.code {
				t.Fatalf("classify=(%+v, internal %v): per doc %v, want code %q, %v", ae, internal, ok, tt.code, tt.ok)
			}
		})
	}
}

func TestRateLimitErrorIs(t *testing.T) {
	err := fmt.Errorf("limiter: %w", &RateLimitError{RetryAfter: time.Second})
	if !errors.Is(err, ErrRateLimited) {
		t.Fatalf("errors.Is(%v, ErrRateLimited) = false", err)
	}
}

func TestFormatSeconds(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{time.Second, "1"},
		{1500 * time.Millisecond, "2"},
		{time.Millisecond, "1"},
		{2 * time.Minute, "120"},
	}
	for _, tt := range tests {
		if got := formatSeconds(tt.d); got != tt.want {
			t.Errorf("formatSeconds(%v)=%q, want %q", tt.d, got, tt.want)
		}
	}
}
