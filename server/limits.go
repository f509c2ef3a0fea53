package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// limitBody caps the request body at MaxBodyBytes. Reading past the cap
// fails with *http.MaxBytesError, which classify answers 413 too_large. A
// declared Content-Length over the cap is refused before reading anything.
func (s *Server) limitBody(c echo.Context) error {
	req := c.Request()
	if req.ContentLength > s.opts.MaxBodyBytes {
		return tooLarge("request body over %d bytes", s.opts.MaxBodyBytes)
	}
	req.Body = http.MaxBytesReader(c.Response(), req.Body, s.opts.MaxBodyBytes)
	return nil
}
