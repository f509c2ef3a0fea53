package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/protocol"
	"github.com/dynamerge/dynamerge/store"
)

// handleDoc is GET /v1/collections/{collection}/docs/{id}[?heads=a,b]: the
// record as plain JSON, at the given heads when asked (time travel). A
// record deleted at those heads answers 404 deleted, unless
// ?include_deleted=true.
func (s *Server) handleDoc(c echo.Context) error {
	key := store.Key{Collection: c.Param("collection"), ID: c.Param("id")}
	if err := key.Validate(); err != nil {
		return invalidID(err)
	}
	var heads []crdt.Hash
	if q := c.QueryParam("heads"); q != "" {
		hs, err := crdt.ParseHashes(strings.Split(q, ","))
		if err != nil {
			return badRequest("heads: %v", err)
		}
		heads = hs
	}
	includeDeleted, err := boolParam(c, "include_deleted")
	if err != nil {
		return err
	}
	conflicts, err := boolParam(c, "conflicts")
	if err != nil {
		return err
	}
	if err := s.authorize(c, key.Collection, false); err != nil {
		return err
	}
	v, err := s.eng.ViewWith(c.Request().Context(), key, engine.ViewOptions{Heads: heads, Conflicts: conflicts})
	if err != nil {
		return fmt.Errorf("json view of %s: %w", key, err)
	}
	if v.Deleted && !includeDeleted {
		return c.JSON(http.StatusNotFound, protocol.ErrorBody{
			Error: protocol.ErrorDetail{Code: CodeDeleted, Message: "the record is deleted; ?include_deleted=true shows it"},
			Heads: hashStrings(v.Heads),
		})
	}
	return s.writeView(c, key, v)
}

// writeView answers the JSON view v of key, with its ETag (304 when the
// client has it).
func (s *Server) writeView(c echo.Context, key store.Key, v engine.View) error {
	etag := etagOf(v.Heads)
	h := c.Response().Header()
	h.Set("ETag", etag)
	// The view changes with every write: caches must revalidate, which the
	// ETag makes cheap for the client.
	h.Set("Cache-Control", "no-cache")
	if etagMatches(c.Request().Header.Get("If-None-Match"), etag) {
		return c.NoContent(http.StatusNotModified)
	}
	if !json.Valid(v.Doc) {
		return fmt.Errorf("json view of %s: engine returned invalid JSON", key)
	}
	return c.JSON(http.StatusOK, docResponse(key, v))
}

// boolParam reads an optional true/false query parameter.
func boolParam(c echo.Context, name string) (bool, error) {
	switch q := c.QueryParam(name); q {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, badRequest("%s: want true or false, got %q", name, q)
	}
}

// handleDelete is DELETE /v1/collections/{collection}/docs/{id}: one change
// made by the server puts the record's root "$deleted" (PROTOCOL.md, Record
// lifecycle); deleting a deleted record changes nothing.
func (s *Server) handleDelete(c echo.Context) error {
	key, err := s.writableKey(c)
	if err != nil {
		return err
	}
	heads, err := s.eng.SetDeleted(c.Request().Context(), key, true, callerOf(c))
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return c.JSON(http.StatusOK, protocol.DeleteResponse{Collection: key.Collection, ID: key.ID, Heads: hashStrings(heads), Deleted: true})
}

// handleUndelete is POST /v1/collections/{collection}/docs/{id}/undelete:
// one change made by the server removes "$deleted"; the answer is the JSON
// view.
func (s *Server) handleUndelete(c echo.Context) error {
	key, err := s.writableKey(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	heads, err := s.eng.SetDeleted(ctx, key, false, callerOf(c))
	if err != nil {
		return fmt.Errorf("undelete %s: %w", key, err)
	}
	v, err := s.eng.View(ctx, key, heads)
	if err != nil {
		return fmt.Errorf("json view of %s: %w", key, err)
	}
	return s.writeView(c, key, v)
}

// writableKey reads the record key of a write request and checks that the
// caller may write its collection.
func (s *Server) writableKey(c echo.Context) (store.Key, error) {
	key := store.Key{Collection: c.Param("collection"), ID: c.Param("id")}
	if err := key.Validate(); err != nil {
		return key, invalidID(err)
	}
	return key, s.authorize(c, key.Collection, true)
}

// etagOf is the strong ETag of the view at heads (engine.ETag: the same
// heads give the same document, byte for byte, and If-Match compares with
// it).
func etagOf(heads []crdt.Hash) string { return engine.ETag(heads) }

// etagMatches implements If-None-Match (RFC 9110 section 13.1.2): a list of
// tags, weak comparison, or "*".
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}
