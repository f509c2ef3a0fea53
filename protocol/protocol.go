// Package protocol is dynamerge's HTTP contract (PROTOCOL.md) in one place:
// the routes, the request and response bodies, the error codes and the
// status each one goes with, and the patterns of collections, ids and
// hashes. The server and the Go client both use it; the schema tests check
// openapi.yaml against it, and a golden test keeps the browser library's
// error codes in step. It imports nothing of the project, so any layer may.
//
// PROTOCOL.md is kept exactly: this package extends it only where the
// comments say so.
package protocol

import (
	"encoding/json"
	"net/http"
	"regexp"
	"time"
)

// Error codes, sent as "code" in error bodies and per-doc errors.
const (
	CodeBadRequest    = "bad_request"
	CodeInvalidID     = "invalid_id"
	CodeUnauthorized  = "unauthorized"
	CodeForbidden     = "forbidden"
	CodeNotFound      = "not_found"
	CodeDeleted       = "deleted"
	CodeGone          = "gone"
	CodeTooLarge      = "too_large"
	CodeRateLimited   = "rate_limited"
	CodeUnavailable   = "unavailable"
	CodeInvalidChange = "invalid_change"
	CodeMissingDeps   = "missing_deps"
	CodeInternal      = "internal"
	// CodeConflict: a JSON Patch "test" failed (409).
	CodeConflict = "conflict"
	// CodePreconditionFailed: the record moved on from a write's If-Match
	// (412).
	CodePreconditionFailed = "precondition_failed"
	// CodeMethodNotAllowed is an extension: a known path, a wrong method.
	CodeMethodNotAllowed = "method_not_allowed"
)

// Codes lists every error code, sorted.
var Codes = []string{
	CodeBadRequest, CodeConflict, CodeDeleted, CodeForbidden, CodeGone, CodeInternal, CodeInvalidChange,
	CodeInvalidID, CodeMethodNotAllowed, CodeMissingDeps, CodeNotFound, CodePreconditionFailed,
	CodeRateLimited, CodeTooLarge, CodeUnauthorized, CodeUnavailable,
}

// DocCodes lists the codes of per-doc errors in a sync answer, sorted.
var DocCodes = []string{CodeForbidden, CodeGone, CodeInvalidChange, CodeMissingDeps, CodeTooLarge}

// statusOf is the HTTP status of each code as a whole-request error. The
// per-doc codes that are never whole-request errors have none.
var statusOf = map[string]int{
	CodeBadRequest:         http.StatusBadRequest,
	CodeInvalidID:          http.StatusBadRequest,
	CodeUnauthorized:       http.StatusUnauthorized,
	CodeForbidden:          http.StatusForbidden,
	CodeNotFound:           http.StatusNotFound,
	CodeDeleted:            http.StatusNotFound,
	CodeMethodNotAllowed:   http.StatusMethodNotAllowed,
	CodeGone:               http.StatusGone,
	CodeConflict:           http.StatusConflict,
	CodePreconditionFailed: http.StatusPreconditionFailed,
	CodeTooLarge:           http.StatusRequestEntityTooLarge,
	CodeRateLimited:        http.StatusTooManyRequests,
	CodeInternal:           http.StatusInternalServerError,
	CodeUnavailable:        http.StatusServiceUnavailable,
}

// Status returns the HTTP status a whole-request error with code has, or 0
// for a code that is only ever per doc.
func Status(code string) int { return statusOf[code] }

// CodeForStatus is the code a client gives an error answer whose body is
// not the protocol's (a proxy's page, say): the code of that status, or
// internal for other 5xx, bad_request for other 4xx.
func CodeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusRequestTimeout:
		return CodeBadRequest
	case http.StatusUnauthorized:
		return CodeUnauthorized
	case http.StatusForbidden:
		return CodeForbidden
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusMethodNotAllowed:
		return CodeMethodNotAllowed
	case http.StatusGone:
		return CodeGone
	case http.StatusConflict:
		return CodeConflict
	case http.StatusPreconditionFailed:
		return CodePreconditionFailed
	case http.StatusRequestEntityTooLarge:
		return CodeTooLarge
	case http.StatusTooManyRequests:
		return CodeRateLimited
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return CodeUnavailable
	}
	if status >= 500 {
		return CodeInternal
	}
	return CodeBadRequest
}

// Patterns of the names the protocol allows.
const (
	CollectionPattern = `^[a-z0-9][a-z0-9_-]{0,63}$`
	IDPattern         = `^[A-Za-z0-9_-]{1,128}$`
	HashPattern       = `^[0-9a-f]{64}$`
)

var (
	collectionRE = regexp.MustCompile(CollectionPattern)
	idRE         = regexp.MustCompile(IDPattern)
	hashRE       = regexp.MustCompile(HashPattern)
)

// ValidCollection, ValidID and ValidHash report whether s matches the
// protocol's pattern.
func ValidCollection(s string) bool { return len(s) <= 64 && collectionRE.MatchString(s) }
func ValidID(s string) bool         { return len(s) <= 128 && idRE.MatchString(s) }
func ValidHash(s string) bool       { return len(s) == 64 && hashRE.MatchString(s) }

// Route is one endpoint of the API, its Path in OpenAPI form.
type Route struct {
	Method, Path string
}

// Routes are the endpoints of PROTOCOL.md (and /metrics). The server
// registers exactly these (and the demo app's static files).
var Routes = []Route{
	{http.MethodGet, "/healthz"}, {http.MethodHead, "/healthz"},
	{http.MethodGet, "/readyz"}, {http.MethodHead, "/readyz"},
	{http.MethodGet, "/metrics"},
	{http.MethodPost, "/v1/sync"},
	{http.MethodPost, "/v1/collections/{collection}/docs"},
	{http.MethodGet, "/v1/collections/{collection}/docs/{id}"},
	{http.MethodPut, "/v1/collections/{collection}/docs/{id}"},
	{http.MethodPatch, "/v1/collections/{collection}/docs/{id}"},
	{http.MethodDelete, "/v1/collections/{collection}/docs/{id}"},
	{http.MethodPost, "/v1/collections/{collection}/docs/{id}/undelete"},
	{http.MethodGet, "/v1/collections/{collection}/docs/{id}/changes"},
	{http.MethodPost, "/v1/collections/{collection}/docs/{id}/restore"},
	{http.MethodGet, "/v1/collections/{collection}/feed"},
	{http.MethodGet, "/v1/events"},
}

// SyncRequest is the body of POST /v1/sync.
type SyncRequest struct {
	Docs []SyncDoc `json:"docs"`
}

// SyncDoc is one record of a sync request: the client's heads of it, and
// the changes it has that the server may lack (base64 change chunks).
type SyncDoc struct {
	Collection string   `json:"collection"`
	ID         string   `json:"id"`
	Have       []string `json:"have"`
	Changes    string   `json:"changes,omitempty"`
}

// SyncResponse is the answer of POST /v1/sync: one result per requested
// doc, in order.
type SyncResponse struct {
	Docs []SyncResult `json:"docs"`
}

// SyncResult is the server's answer for one doc: its heads, the changes
// the client lacks (base64; possibly a document chunk first), or why the
// doc was refused.
type SyncResult struct {
	Collection string       `json:"collection"`
	ID         string       `json:"id"`
	Heads      []string     `json:"heads"`
	Changes    string       `json:"changes"`
	Error      *ErrorDetail `json:"error,omitempty"`
}

// ErrorBody is the body of every error answer. Heads is set on 404
// deleted: where the record stands.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
	Heads []string    `json:"heads,omitempty"`
}

// ErrorDetail is a code and a message for people.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// DocResponse is the JSON view of a record (GET …/docs/{id}, undelete,
// and the plain-JSON writes and restore). Deleted is set only on a deleted
// record read with include_deleted=true (or restored to a deleted
// version); Conflicts only when asked for (?conflicts=true), and then
// never nil.
type DocResponse struct {
	Collection string          `json:"collection"`
	ID         string          `json:"id"`
	Heads      []string        `json:"heads"`
	Doc        json.RawMessage `json:"doc"`
	Deleted    bool            `json:"deleted,omitempty"`
	Conflicts  []Conflict      `json:"conflicts,omitzero"`
}

// HistoryResponse is one page of GET …/docs/{id}/changes, newest first.
// Cursor goes in ?before= for the next page; More says one follows.
type HistoryResponse struct {
	Changes []HistoryChange `json:"changes"`
	Cursor  string          `json:"cursor"`
	More    bool            `json:"more"`
}

// HistoryChange is one change of a record's history: what the change says
// of itself (its Automerge header) and what the server recorded when it
// accepted it (By, At).
type HistoryChange struct {
	Hash  string   `json:"hash"`
	Actor string   `json:"actor"` // lowercase hex
	Seq   uint64   `json:"seq"`
	Deps  []string `json:"deps"`
	// Time is the change's own timestamp as its author's clock wrote it
	// (Unix seconds from Automerge JS; 0 if none): the client's word.
	Time    int64   `json:"time"`
	Message *string `json:"message"` // null if none
	Ops     int     `json:"ops"`
	// By is the token subject that first pushed the change, null without
	// authentication (or for a change stored before attribution existed).
	By *string `json:"by"`
	// At is when the server first accepted the change (RFC 3339): the
	// server's word.
	At time.Time `json:"at"`
}

// Conflict is a map key or list element where concurrent changes left
// several values (PROTOCOL.md, Conflicts). Path holds map keys (strings)
// and list indices (numbers); the first value is the one "doc" shows.
type Conflict struct {
	Path   []any           `json:"path"`
	Values []ConflictValue `json:"values"`
}

// ConflictValue is one value of a Conflict: the change that wrote it and
// who first pushed that change (null without authentication).
type ConflictValue struct {
	Value json.RawMessage `json:"value"`
	Hash  string          `json:"hash"`
	By    *string         `json:"by"`
}

// RestoreRequest is the body of POST …/docs/{id}/restore.
type RestoreRequest struct {
	Heads []string `json:"heads"`
}

// Content types of PATCH …/docs/{id}.
const (
	ContentTypeMergePatch = "application/merge-patch+json" // RFC 7396
	ContentTypeJSONPatch  = "application/json-patch+json"  // RFC 6902
)

// DeleteResponse is the answer of DELETE …/docs/{id}.
type DeleteResponse struct {
	Collection string   `json:"collection"`
	ID         string   `json:"id"`
	Heads      []string `json:"heads"`
	Deleted    bool     `json:"deleted"`
}

// FeedResponse is one page of a collection feed.
type FeedResponse struct {
	Docs   []FeedItem `json:"docs"`
	Cursor string     `json:"cursor"`
	More   bool       `json:"more"`
}

// FeedItem is one record of a feed page. Deleted and Purged tell devices
// to drop their copies.
type FeedItem struct {
	ID      string   `json:"id"`
	Heads   []string `json:"heads"`
	Deleted bool     `json:"deleted,omitempty"`
	Purged  bool     `json:"purged,omitempty"`
}

// Event is the data of one "change" Server-Sent Event.
type Event struct {
	Collection string   `json:"collection"`
	ID         string   `json:"id"`
	Heads      []string `json:"heads"`
	Deleted    bool     `json:"deleted,omitempty"`
	// Changes, when the server inlines them (small changes this process
	// accepted), are the change chunks that moved the record to Heads, as
	// standard base64. A client holding all their dependencies applies
	// them and need not sync the record; any other client syncs as usual.
	Changes string `json:"changes,omitempty"`
}
