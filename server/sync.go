package server

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/protocol"
	"github.com/dynamerge/dynamerge/store"
)

// syncRequest is the body of POST /v1/sync. Unknown fields are ignored:
// PROTOCOL.md lets later versions add optional fields ("extend, never
// bend"), and an old server must not refuse a newer client for it.
type syncRequest struct {
	Docs *[]protocol.SyncDoc `json:"docs"`
}

// handleSync is POST /v1/sync. Every whole-request check (shape, ids,
// hashes, base64, size, credentials) runs before the engine sees anything,
// so a refused request stores nothing for any of its docs.
func (s *Server) handleSync(c echo.Context) error {
	if err := s.limitBody(c); err != nil {
		return err
	}
	binaryBody, err := syncContentType(c.Request())
	if err != nil {
		return err
	}
	body, err := s.decodedBody(c)
	if err != nil {
		return err
	}
	var reqs []engine.DocRequest
	if binaryBody {
		reqs, err = decodeSyncBinary(body, s.opts.MaxDocsPerSync)
	} else {
		reqs, err = decodeSyncJSON(body, s.opts.MaxDocsPerSync)
	}
	if err != nil {
		return err
	}
	by := callerOf(c)
	for i := range reqs {
		reqs[i].By = by
	}

	out := make([]protocol.RawSyncResult, len(reqs))
	allowed := make([]engine.DocRequest, 0, len(reqs))
	allowedAt := make([]int, 0, len(reqs)) // index in out of each allowed request
	decided := make(map[authKey]error)
	for i, r := range reqs {
		out[i] = protocol.RawSyncResult{Collection: r.Key.Collection, ID: r.Key.ID}
		ak := authKey{r.Key.Collection, len(r.Changes) > 0}
		authErr, seen := decided[ak]
		if !seen {
			authErr = s.authorize(c, ak.collection, ak.write)
			decided[ak] = authErr
		}
		switch {
		case authErr == nil:
			allowed = append(allowed, r)
			allowedAt = append(allowedAt, i)
		case errors.Is(authErr, ErrForbidden):
			out[i].Error = &protocol.ErrorDetail{Code: CodeForbidden, Message: "not allowed for this collection"}
		default:
			return authErr // unauthorized, or the authorizer failed
		}
	}

	if len(allowed) > 0 {
		results, err := s.eng.Sync(c.Request().Context(), allowed)
		if err != nil {
			return fmt.Errorf("sync %d docs: %w", len(allowed), err)
		}
		if len(results) != len(allowed) {
			return fmt.Errorf("sync: engine answered %d results for %d docs", len(results), len(allowed))
		}
		if err := fillSyncResults(out, allowedAt, results); err != nil {
			return err
		}
	}
	if acceptsSyncBinary(c.Request()) {
		return writeSyncBody(c, http.StatusOK, protocol.ContentTypeSyncBinary, protocol.AppendSyncResponse(nil, out))
	}
	return writeSyncJSON(c, http.StatusOK, syncResponseJSON(out))
}

// syncResponseJSON is the JSON form of a sync answer: hashes in hex,
// changes in base64.
func syncResponseJSON(out []protocol.RawSyncResult) protocol.SyncResponse {
	docs := make([]protocol.SyncResult, len(out))
	for i, r := range out {
		heads := make([]string, len(r.Heads))
		for j, h := range r.Heads {
			heads[j] = crdt.Hash(h).String()
		}
		docs[i] = protocol.SyncResult{Collection: r.Collection, ID: r.ID, Heads: heads, Error: r.Error}
		if len(r.Changes) > 0 {
			docs[i].Changes = base64.StdEncoding.EncodeToString(r.Changes)
		}
	}
	return protocol.SyncResponse{Docs: docs}
}

// decodeSyncJSON decodes and checks a JSON sync body.
func decodeSyncJSON(body io.Reader, maxDocs int) ([]engine.DocRequest, error) {
	docs, err := decodeSyncRequest(body)
	if err != nil {
		return nil, err
	}
	if err := checkDocCount(len(docs), maxDocs); err != nil {
		return nil, err
	}
	return parseSyncDocs(docs)
}

// decodeSyncBinary decodes and checks a binary sync body
// (protocol.ContentTypeSyncBinary) as strictly as a JSON one.
func decodeSyncBinary(body io.Reader, maxDocs int) ([]engine.DocRequest, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		var ae *apiError
		switch {
		case errors.As(err, &mbe), errors.As(err, &ae):
			return nil, err // over the cap, or a corrupt gzip stream
		case errors.Is(err, os.ErrDeadlineExceeded):
			return nil, errSlowBody
		}
		return nil, badRequest("body could not be read: %v", err)
	}
	docs, err := protocol.ParseSyncRequest(b)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	if err := checkDocCount(len(docs), maxDocs); err != nil {
		return nil, err
	}
	reqs := make([]engine.DocRequest, len(docs))
	for i, d := range docs {
		key, err := syncKey(i, d.Collection, d.ID)
		if err != nil {
			return nil, err
		}
		have := make([]crdt.Hash, len(d.Have))
		for j, h := range d.Have {
			have[j] = crdt.Hash(h)
		}
		reqs[i] = engine.DocRequest{Key: key, Have: have, Changes: d.Changes}
	}
	return reqs, nil
}

// checkDocCount refuses a sync of more than maxDocs docs, before any of
// them is looked at.
func checkDocCount(n, maxDocs int) error {
	if n > maxDocs {
		return tooLarge("%d docs in one sync, at most %d", n, maxDocs)
	}
	return nil
}

// syncKey is the record docs[i] names, refused invalid_id when it names
// none.
func syncKey(i int, collection, id string) (store.Key, error) {
	key := store.Key{Collection: collection, ID: id}
	if err := key.Validate(); err != nil {
		return store.Key{}, invalidID(fmt.Errorf("docs[%d]: %w", i, err))
	}
	return key, nil
}

type authKey struct {
	collection string
	write      bool
}

// fillSyncResults writes the engine's answers into out. A doc the store
// failed on fails the whole request with 503: the client resends the batch,
// which is safe because retries are idempotent (the docs that did land are
// recognised by hash).
func fillSyncResults(out []protocol.RawSyncResult, at []int, results []engine.DocResult) error {
	var unavailable, internal error
	for j, res := range results {
		o := &out[at[j]]
		o.Heads = make([][32]byte, len(res.Heads))
		for k, h := range res.Heads {
			o.Heads[k] = h
		}
		o.Changes = res.Changes
		if res.Err == nil {
			continue
		}
		// One mapping of errors to codes for both: a code that a sync entry
		// may carry is the entry's error; the rest fail the request.
		ae, isInternal := classify(res.Err)
		if !isInternal && slices.Contains(protocol.DocCodes, ae.Code) {
			o.Error = &protocol.ErrorDetail{Code: ae.Code, Message: ae.Message}
			continue
		}
		wrapped := fmt.Errorf("sync %s: %w", res.Key, res.Err)
		if !isInternal && ae.Code == CodeUnavailable {
			unavailable = errors.Join(unavailable, wrapped)
		} else {
			internal = errors.Join(internal, wrapped)
		}
	}
	if unavailable != nil {
		// Surface unavailable even alongside internal errors: the client
		// retries, and the logs of the engine tell the rest.
		return &wrapUnavailable{err: unavailable}
	}
	return internal
}

// wrapUnavailable keeps the store's errors for the log while classify sees
// them as unavailable.
type wrapUnavailable struct{ err error }

func (w *wrapUnavailable) Error() string { return w.err.Error() }
func (w *wrapUnavailable) Unwrap() error { return engine.ErrUnavailable }

// syncContentType says whether a sync body is binary
// (protocol.ContentTypeSyncBinary) and refuses one that says it is neither
// that nor JSON. A missing Content-Type is JSON: curl and simple clients
// omit it.
func syncContentType(r *http.Request) (binary bool, err error) {
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == protocol.ContentTypeSyncBinary {
		return true, nil
	}
	if requireJSON(r) != nil {
		return false, badRequest("Content-Type must be application/json or %s, got %q", protocol.ContentTypeSyncBinary, ct)
	}
	return false, nil
}

// requireJSON refuses a body that says it is something else than JSON. A
// missing Content-Type is accepted: curl and simple clients omit it.
func requireJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return badRequest("Content-Type must be application/json, got %q", ct)
	}
	return nil
}

// acceptsSyncBinary says whether the client asks for a binary sync answer
// (Accept names protocol.ContentTypeSyncBinary with a non-zero q).
func acceptsSyncBinary(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || mt != protocol.ContentTypeSyncBinary {
			continue
		}
		q, err := strconv.ParseFloat(cmp.Or(params["q"], "1"), 64)
		return err == nil && q > 0
	}
	return false
}

// decodeSyncRequest parses the body strictly: one JSON object with a "docs"
// array of objects with the right types, and nothing after it.
func decodeSyncRequest(body io.Reader) ([]protocol.SyncDoc, error) {
	dec := json.NewDecoder(body)
	var req syncRequest
	if err := dec.Decode(&req); err != nil {
		return nil, jsonError(err)
	}
	if dec.More() {
		return nil, badRequest("body holds more than one JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			return nil, badRequest("body holds more than one JSON value")
		}
		return nil, jsonError(err)
	}
	if req.Docs == nil {
		return nil, badRequest(`body must be {"docs": [...]}`)
	}
	return *req.Docs, nil
}

// jsonError turns a decoding error into the answer: the body limit wins, a
// malformed or mistyped body is the client's fault and the message says
// where.
func jsonError(err error) error {
	var mbe *http.MaxBytesError
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var ae *apiError
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.As(err, &ae):
		return err // already an answer (a corrupt gzip stream)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errSlowBody
	case errors.As(err, &syn):
		return badRequest("body is not JSON: %s at byte %d", syn.Error(), syn.Offset)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		// typ.Type is a Go type name: internal, and no help to a JS client.
		return badRequest("%s: wrong type, got JSON %s", field, typ.Value)
	case errors.Is(err, io.EOF):
		return badRequest("empty body")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("body is truncated JSON")
	}
	return badRequest("body is not valid JSON")
}

// parseSyncDocs checks and converts every doc of a request; the first bad
// one refuses the whole request.
func parseSyncDocs(docs []protocol.SyncDoc) ([]engine.DocRequest, error) {
	reqs := make([]engine.DocRequest, len(docs))
	for i, d := range docs {
		key, err := syncKey(i, d.Collection, d.ID)
		if err != nil {
			return nil, err
		}
		have, err := crdt.ParseHashes(d.Have)
		if err != nil {
			return nil, badRequest("docs[%d].have: %v", i, err)
		}
		changes, err := base64.StdEncoding.Strict().DecodeString(d.Changes)
		if err != nil {
			return nil, badRequest("docs[%d].changes: not standard padded base64: %v", i, err)
		}
		reqs[i] = engine.DocRequest{Key: key, Have: have, Changes: changes}
	}
	return reqs, nil
}

func hashStrings(hs []crdt.Hash) []string {
	if len(hs) == 0 {
		return []string{}
	}
	return crdt.HashStrings(hs)
}
