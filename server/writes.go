package server

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/protocol"
	"github.com/dynamerge/dynamerge/store"
)

// handleCreate is POST /v1/collections/{collection}/docs: a new record with
// a new UUID, equal to the body (PROTOCOL.md, Plain-JSON writes); 201 with
// Location.
func (s *Server) handleCreate(c echo.Context) error {
	key := store.Key{Collection: c.Param("collection"), ID: uuid.NewString()}
	if err := key.Validate(); err != nil {
		return invalidID(err)
	}
	if err := s.authorize(c, key.Collection, true); err != nil {
		return err
	}
	body, err := s.readWriteBody(c, requireJSON)
	if err != nil {
		return err
	}
	res, err := s.eng.PutJSON(c.Request().Context(), key, body, c.Request().Header.Get("If-Match"), callerOf(c))
	if err != nil {
		return fmt.Errorf("create %s: %w", key, err)
	}
	c.Response().Header().Set("Location", "/v1/collections/"+key.Collection+"/docs/"+key.ID)
	return s.writeResult(c, key, res, http.StatusCreated)
}

// handlePut is PUT /v1/collections/{collection}/docs/{id}: the record made
// equal to the body, created when new (201).
func (s *Server) handlePut(c echo.Context) error {
	key, body, err := s.writeRequest(c, requireJSON)
	if err != nil {
		return err
	}
	res, err := s.eng.PutJSON(c.Request().Context(), key, body, c.Request().Header.Get("If-Match"), callerOf(c))
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	return s.writeResult(c, key, res, status)
}

// handlePatch is PATCH /v1/collections/{collection}/docs/{id} with an RFC
// 7396 merge patch or an RFC 6902 JSON Patch, by Content-Type.
func (s *Server) handlePatch(c echo.Context) error {
	var kind engine.PatchKind
	key, body, err := s.writeRequest(c, func(r *http.Request) error {
		ct := r.Header.Get("Content-Type")
		switch mt, _, _ := mime.ParseMediaType(ct); mt {
		case protocol.ContentTypeMergePatch:
			kind = engine.MergePatch
		case protocol.ContentTypeJSONPatch:
			kind = engine.JSONPatch
		default:
			return badRequest("Content-Type must be %s or %s, got %q", protocol.ContentTypeMergePatch, protocol.ContentTypeJSONPatch, ct)
		}
		return nil
	})
	if err != nil {
		return err
	}
	res, err := s.eng.PatchJSON(c.Request().Context(), key, kind, body, c.Request().Header.Get("If-Match"), callerOf(c))
	if err != nil {
		return fmt.Errorf("patch %s: %w", key, err)
	}
	return s.writeResult(c, key, res, http.StatusOK)
}

// handleRestore is POST /v1/collections/{collection}/docs/{id}/restore:
// one change back to the record's state at the body's heads.
func (s *Server) handleRestore(c echo.Context) error {
	key, body, err := s.writeRequest(c, requireJSON)
	if err != nil {
		return err
	}
	var req struct {
		Heads *[]string `json:"heads"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return jsonError(err)
	}
	if req.Heads == nil || len(*req.Heads) == 0 {
		return badRequest(`body must be {"heads": ["<hex>", ...]} with at least one head`)
	}
	heads, err := crdt.ParseHashes(*req.Heads)
	if err != nil {
		return badRequest("heads: %v", err)
	}
	res, err := s.eng.Restore(c.Request().Context(), key, heads, c.Request().Header.Get("If-Match"), callerOf(c))
	if err != nil {
		return fmt.Errorf("restore %s: %w", key, err)
	}
	return s.writeResult(c, key, res, http.StatusOK)
}

// writeRequest reads the key of a write to a record (which the caller must
// be allowed to write), then its body, within the body limits, after
// checking its Content-Type with check.
func (s *Server) writeRequest(c echo.Context, check func(*http.Request) error) (store.Key, []byte, error) {
	key, err := s.writableKey(c)
	if err != nil {
		return key, nil, err
	}
	body, err := s.readWriteBody(c, check)
	return key, body, err
}

// readWriteBody reads the body of a write, within the body limits, after
// checking its Content-Type with check.
func (s *Server) readWriteBody(c echo.Context, check func(*http.Request) error) ([]byte, error) {
	if err := s.limitBody(c); err != nil {
		return nil, err
	}
	if err := check(c.Request()); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return nil, jsonError(err)
	}
	return body, nil
}

// writeResult answers a write with the record's JSON view and its ETag.
func (s *Server) writeResult(c echo.Context, key store.Key, res engine.WriteResult, status int) error {
	h := c.Response().Header()
	h.Set("ETag", etagOf(res.View.Heads))
	h.Set("Cache-Control", "no-cache")
	return c.JSON(status, docResponse(key, res.View))
}

// docResponse is the body of a JSON view answer.
func docResponse(key store.Key, v engine.View) protocol.DocResponse {
	out := protocol.DocResponse{
		Collection: key.Collection,
		ID:         key.ID,
		Heads:      hashStrings(v.Heads),
		Doc:        v.Doc,
		Deleted:    v.Deleted,
	}
	if v.Conflicts != nil {
		out.Conflicts = make([]protocol.Conflict, len(v.Conflicts))
		for i, cf := range v.Conflicts {
			vals := make([]protocol.ConflictValue, len(cf.Values))
			for j, cv := range cf.Values {
				vals[j] = protocol.ConflictValue{Value: cv.Value, Hash: cv.Hash.String(), By: cv.By}
			}
			out.Conflicts[i] = protocol.Conflict{Path: cf.Path, Values: vals}
		}
	}
	return out
}
