package server

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// corsMaxAge is how long browsers may cache a preflight answer.
const corsMaxAge = 600

// corsMiddleware answers cross-origin requests from the configured origins
// only ("*" allows any). Without origins it does nothing, and browsers keep
// other sites' pages from reading answers. Credentials (cookies) are never
// allowed: the API authenticates with bearer tokens, which a page must hold
// and send itself.
func (s *Server) corsMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	any := false
	allowed := make(map[string]bool, len(s.opts.CORSOrigins))
	for _, o := range s.opts.CORSOrigins {
		if o == "*" {
			any = true
		}
		allowed[strings.TrimRight(o, "/")] = true
	}
	return func(c echo.Context) error {
		if len(allowed) == 0 {
			return next(c)
		}
		req := c.Request()
		h := c.Response().Header()
		h.Add("Vary", "Origin")
		origin := req.Header.Get("Origin")
		if origin == "" || !(any || allowed[origin]) {
			return next(c)
		}
		h.Set("Access-Control-Allow-Origin", origin)
		if req.Method == http.MethodOptions && req.Header.Get("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Content-Encoding, If-Match, If-None-Match, "+HeaderRequestID)
			h.Set("Access-Control-Max-Age", strconv.Itoa(corsMaxAge))
			return c.NoContent(http.StatusNoContent)
		}
		// Vary tells the browser library that /v1/sync takes gzip bodies.
		h.Set("Access-Control-Expose-Headers", "ETag, Location, Retry-After, Vary, "+HeaderRequestID)
		return next(c)
	}
}
