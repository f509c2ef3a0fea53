package server

import "github.com/labstack/echo/v4"

// callerOf is who makes the request, for attribution of the changes it
// stores (PROTOCOL.md: "by"): the token's subject, "" when the server runs
// without authentication (or with an Authorizer that names no one).
func callerOf(c echo.Context) string {
	if p := PrincipalFrom(c.Request().Context()); p != nil {
		return p.Subject
	}
	return ""
}
