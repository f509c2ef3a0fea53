package server

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/store"
)

type docResponse struct {
	Collection string          `json:"collection"`
	ID         string          `json:"id"`
	Heads      []string        `json:"heads"`
	Doc        json.RawMessage `json:"doc"`
}

// handleDoc is GET /v1/collections/{collection}/docs/{id}[?heads=a,b]: the
// record as plain JSON, at the given heads when asked (time travel).
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
	if err := s.authorize(c, key.Collection, false); err != nil {
		return err
	}
	doc, at, err := s.eng.JSON(c.Request().Context(), key, heads)
	if err != nil {
		return fmt.Errorf("json view of %s: %w", key, err)
	}
	etag := etagOf(at)
	h := c.Response().Header()
	h.Set("ETag", etag)
	// The view changes with every write: caches must revalidate, which the
	// ETag makes cheap for the client.
	h.Set("Cache-Control", "no-cache")
	if etagMatches(c.Request().Header.Get("If-None-Match"), etag) {
		return c.NoContent(http.StatusNotModified)
	}
	if !json.Valid(doc) {
		return fmt.Errorf("json view of %s: engine returned invalid JSON", key)
	}
	return c.JSON(http.StatusOK, docResponse{
		Collection: key.Collection,
		ID:         key.ID,
		Heads:      hashStrings(at),
		Doc:        doc,
	})
}

// etagOf derives a strong ETag from the heads the view reflects: the same
// heads give the same document, byte for byte.
func etagOf(heads []crdt.Hash) string {
	ss := crdt.HashStrings(heads)
	sort.Strings(ss)
	sum := sha256.Sum256([]byte(strings.Join(ss, ",")))
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

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
