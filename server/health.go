package server

import (
	"context"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
)

type statusBody struct {
	Status string `json:"status"`
}

// handleHealthz is liveness: the process serves HTTP.
func (s *Server) handleHealthz(c echo.Context) error {
	return c.JSON(http.StatusOK, statusBody{Status: "ok"})
}

// handleReadyz is readiness: the store answers within DefaultReadyTimeout.
func (s *Server) handleReadyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), DefaultReadyTimeout)
	defer cancel()
	if err := s.eng.Ready(ctx); err != nil {
		return &wrapUnavailable{err: fmt.Errorf("readyz: %w", err)}
	}
	return c.JSON(http.StatusOK, statusBody{Status: "ready"})
}
