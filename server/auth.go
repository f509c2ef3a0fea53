package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// Authorizer decides whether a request may read or write a collection. It
// is the plug for tokens (PROTOCOL.md "Authentication"): an implementation
// reads "Authorization: Bearer <token>" (or, for /v1/events only, the
// access_token query parameter, since EventSource cannot set headers).
//
// Authorize returns nil to allow, an error wrapping ErrUnauthorized when the
// request has no valid credentials (401 unauthorized), or one wrapping
// ErrForbidden when the credentials do not cover the collection (403
// forbidden, or the per-doc "forbidden" error inside /v1/sync). Any other
// error is an internal failure (logged, 500). It is called once per
// collection and access kind of a request, concurrently from many requests.
type Authorizer interface {
	Authorize(r *http.Request, collection string, write bool) error
}

// AuthorizerFunc adapts a function to Authorizer.
type AuthorizerFunc func(r *http.Request, collection string, write bool) error

// Authorize calls f.
func (f AuthorizerFunc) Authorize(r *http.Request, collection string, write bool) error {
	return f(r, collection, write)
}

// authorize asks the configured Authorizer; with none, everything is allowed.
func (s *Server) authorize(c echo.Context, collection string, write bool) error {
	if s.opts.Authorizer == nil {
		return nil
	}
	return s.opts.Authorizer.Authorize(c.Request(), collection, write)
}
