package client

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dynamerge/dynamerge/protocol"
)

// Error codes of the protocol (PROTOCOL.md).
const (
	CodeBadRequest    = protocol.CodeBadRequest
	CodeInvalidID     = protocol.CodeInvalidID
	CodeUnauthorized  = protocol.CodeUnauthorized
	CodeForbidden     = protocol.CodeForbidden
	CodeNotFound      = protocol.CodeNotFound
	CodeDeleted       = protocol.CodeDeleted
	CodeGone          = protocol.CodeGone
	CodeTooLarge      = protocol.CodeTooLarge
	CodeRateLimited   = protocol.CodeRateLimited
	CodeUnavailable   = protocol.CodeUnavailable
	CodeInvalidChange = protocol.CodeInvalidChange
	CodeMissingDeps   = protocol.CodeMissingDeps
	CodeInternal      = protocol.CodeInternal
	// CodeConflict: a JSON Patch "test" failed.
	CodeConflict = protocol.CodeConflict
	// CodePreconditionFailed: the record moved on from WriteOptions.IfMatch.
	CodePreconditionFailed = protocol.CodePreconditionFailed
	// CodeMethodNotAllowed is the server's extension: a known path, a
	// wrong method.
	CodeMethodNotAllowed = protocol.CodeMethodNotAllowed
)

// Temporary reports whether the request may succeed if sent again later
// (after RetryAfter): the server was rate limiting, overloaded or its store
// was failing. The changes of such a request must be kept and resent.
func (e *Error) Temporary() bool {
	return e.Code == CodeRateLimited || e.Code == CodeUnavailable ||
		e.Status == http.StatusServiceUnavailable || e.Status == http.StatusTooManyRequests
}

// IsCode reports whether err is (or wraps) an *Error with the given code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// readError turns a non-2xx answer into an *Error. A body that is not the
// protocol's error JSON (a proxy's HTML page, say) still gives an *Error,
// with a code derived from the status.
func readError(resp *http.Response) *Error {
	e := &Error{Status: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	var body []byte
	if r, err := answerBody(resp); err == nil {
		body, _ = io.ReadAll(io.LimitReader(r, maxErrorBody))
	}
	var eb protocol.ErrorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error.Code != "" {
		e.Code, e.Message, e.Heads = eb.Error.Code, eb.Error.Message, eb.Heads
		return e
	}
	e.Code = protocol.CodeForStatus(resp.StatusCode)
	e.Message = strings.TrimSpace(string(body))
	if len(e.Message) > 200 {
		e.Message = e.Message[:200] + "…"
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// parseRetryAfter reads Retry-After as seconds or as an HTTP date
// (RFC 9110 section 10.2.3). Unparseable or past values give 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 || secs > 1<<31 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
