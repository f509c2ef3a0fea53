package server

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/dynamerge/dynamerge/protocol"
	"github.com/dynamerge/dynamerge/store"
)

// Feed page sizes.
const (
	DefaultFeedLimit = 100
	MaxFeedLimit     = 1000
)

// handleFeed is GET /v1/collections/{collection}/feed?after=&limit=.
func (s *Server) handleFeed(c echo.Context) error {
	collection := c.Param("collection")
	if !store.ValidCollection(collection) {
		return invalidID(fmt.Errorf("%w: collection %q must match %s", store.ErrInvalidKey, collection, protocol.CollectionPattern))
	}
	limit := DefaultFeedLimit
	if q := c.QueryParam("limit"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 || n > MaxFeedLimit {
			return badRequest("limit: want an integer from 1 to %d, got %q", MaxFeedLimit, q)
		}
		limit = n
	}
	cursor := c.QueryParam("after")
	if len(cursor) > 1024 {
		return badRequest("after: cursor too long")
	}
	if err := s.authorize(c, collection, false); err != nil {
		return err
	}
	page, err := s.eng.Feed(c.Request().Context(), collection, cursor, limit)
	if err != nil {
		return fmt.Errorf("feed of %s after %q: %w", collection, cursor, err)
	}
	out := protocol.FeedResponse{Docs: make([]protocol.FeedItem, len(page.Items)), Cursor: page.Cursor, More: page.More}
	for i, it := range page.Items {
		heads := it.Heads
		if heads == nil {
			heads = []string{}
		}
		out.Docs[i] = protocol.FeedItem{ID: it.ID, Heads: heads, Deleted: it.Deleted || it.Purged, Purged: it.Purged}
	}
	if out.Cursor == "" {
		// An empty page keeps the caller where it was.
		out.Cursor = cursor
	}
	return c.JSON(http.StatusOK, out)
}
