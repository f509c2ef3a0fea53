package server

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/protocol"
	"github.com/dynamerge/dynamerge/store"
)

// handleHistory is GET /v1/collections/{collection}/docs/{id}/changes
// ?before=&limit=: the record's changes, newest first in the order the
// server accepted them, with who pushed each and when (PROTOCOL.md).
func (s *Server) handleHistory(c echo.Context) error {
	key := store.Key{Collection: c.Param("collection"), ID: c.Param("id")}
	if err := key.Validate(); err != nil {
		return invalidID(err)
	}
	limit := engine.DefaultHistoryLimit
	if q := c.QueryParam("limit"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 || n > engine.MaxHistoryLimit {
			return badRequest("limit: want an integer from 1 to %d, got %q", engine.MaxHistoryLimit, q)
		}
		limit = n
	}
	cursor := c.QueryParam("before")
	if len(cursor) > 1024 {
		return badRequest("before: cursor too long")
	}
	if err := s.authorize(c, key.Collection, false); err != nil {
		return err
	}
	page, err := s.eng.History(c.Request().Context(), key, cursor, limit)
	if errors.Is(err, store.ErrInvalidCursor) {
		return badRequest("before: not a cursor this server gave out for this record")
	}
	if err != nil {
		return fmt.Errorf("history of %s before %q: %w", key, cursor, err)
	}
	out := protocol.HistoryResponse{Changes: make([]protocol.HistoryChange, len(page.Changes)), Cursor: page.Cursor, More: page.More}
	for i, ch := range page.Changes {
		out.Changes[i] = historyChange(ch)
	}
	return c.JSON(http.StatusOK, out)
}

// historyChange is the wire form of one change of a history.
func historyChange(ch engine.HistoryChange) protocol.HistoryChange {
	deps := crdt.HashStrings(ch.Deps)
	if deps == nil {
		deps = []string{}
	}
	out := protocol.HistoryChange{
		Hash: ch.Hash.String(), Actor: hex.EncodeToString(ch.Actor), Seq: ch.Seq, Deps: deps,
		Time: ch.Time, Ops: ch.Ops, At: ch.At,
	}
	if ch.Message != "" {
		out.Message = &ch.Message
	}
	if ch.By != "" {
		out.By = &ch.By
	}
	return out
}
