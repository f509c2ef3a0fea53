package server

import (
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// limitBody caps the request body at MaxBodyBytes and bounds how slowly it
// may arrive (BodyTimeout, then MinBodyRate). Reading past the cap fails
// with *http.MaxBytesError, which classify answers 413 too_large; reading
// past the deadline fails with an error wrapping os.ErrDeadlineExceeded,
// answered 408 (jsonError). A declared Content-Length over the cap is
// refused before reading anything.
func (s *Server) limitBody(c echo.Context) error {
	req := c.Request()
	if req.ContentLength > s.opts.MaxBodyBytes {
		return tooLarge("request body over %d bytes", s.opts.MaxBodyBytes)
	}
	b := &paceBody{
		r:       http.MaxBytesReader(c.Response(), req.Body, s.opts.MaxBodyBytes),
		rc:      http.NewResponseController(c.Response()),
		start:   time.Now(),
		timeout: s.opts.BodyTimeout,
		rate:    s.opts.MinBodyRate,
	}
	// Without a deadline support (a handler embedded elsewhere, a test
	// recorder) the body is only size-limited: the embedder's server
	// owns its timeouts.
	b.paced = b.rc.SetReadDeadline(b.deadline()) == nil
	req.Body = b
	return nil
}

// paceBody is a request body whose read deadline moves on as it arrives:
// start + timeout + n/rate seconds after n bytes. A client that keeps the
// average rate never meets it; one that trickles is cut once it falls
// behind, whatever the Content-Length it announced.
type paceBody struct {
	r       io.ReadCloser
	rc      *http.ResponseController
	start   time.Time
	timeout time.Duration
	rate    int64
	n       int64
	paced   bool
}

func (b *paceBody) deadline() time.Time {
	return b.start.Add(b.timeout + time.Duration(b.n*int64(time.Second)/b.rate))
}

func (b *paceBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	// Not once the body is whole (a last read may bring bytes and EOF
	// together): net/http then clears the deadline for its background read
	// of the connection, and one set again would end that read, and with
	// it the request's context, however long the answer takes.
	if n > 0 && err == nil && b.paced {
		_ = b.rc.SetReadDeadline(b.deadline())
	}
	return n, err
}

func (b *paceBody) Close() error { return b.r.Close() }

// errSlowBody answers a body that missed its deadline.
var errSlowBody = &apiError{Status: http.StatusRequestTimeout, Code: CodeBadRequest,
	Message: "request body arrived too slowly"}

// requestQuotaMiddleware bounds the requests one subject (one address
// without auth) has in flight, so that a few credentials cannot hold every
// connection the server has with slow requests. It runs after
// guardMiddleware, which chose the key.
func (s *Server) requestQuotaMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		release, ok := s.requests.acquire(clientKey(c))
		if !ok {
			return &RateLimitError{RetryAfter: time.Second}
		}
		defer release()
		return next(c)
	}
}
