package client

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/dynamerge/dynamerge/protocol"
)

// Client speaks the dynamerge protocol (PROTOCOL.md) to one server. It is
// safe for concurrent use.
type Client struct {
	BaseURL string
	HTTP    *http.Client
	Token   string // sent as "Authorization: Bearer <token>" when set
	// Binary sends /v1/sync bodies in the binary form and asks for binary
	// answers (protocol.ContentTypeSyncBinary, the repository PROTOCOL.md's
	// extension): change bytes and hashes travel raw instead of in base64
	// and hex. It needs a dynamerge server that has the extension; any
	// server answers JSON to a client without it.
	Binary bool
}

// New returns a client for the server at baseURL ("http://127.0.0.1:8080").
func New(baseURL string) *Client { return &Client{BaseURL: baseURL, HTTP: http.DefaultClient} }

// Error is an error answer of the server: a whole-request error (Status set)
// or a per-document one (Status 0). Code is one of the protocol's codes
// (the Code… constants); RetryAfter is set from the Retry-After header of
// 429 and 503 answers.
type Error struct {
	Status     int
	Code       string // the protocol's error code, e.g. "invalid_change"
	Message    string
	RetryAfter time.Duration
	// Heads is where the record stands, when the answer says (a 404
	// deleted: undelete or sync from there).
	Heads []string
}

func (e *Error) Error() string { return "dynamerge: " + e.Code + ": " + e.Message }

// Doc is one record in a sync request.
type Doc struct {
	Collection string
	ID         string
	Have       []string
	Changes    []byte
}

// DocResult is the server's answer for one Doc.
type DocResult struct {
	Collection string
	ID         string
	Heads      []string
	Changes    []byte
	Err        *Error // per-document error, nil on success
}

// Record is the JSON view of a record.
type Record struct {
	Collection string
	ID         string
	Heads      []string
	Doc        json.RawMessage
	ETag       string
	Deleted    bool // only with GetOptions.IncludeDeleted: the record is deleted
	// Conflicts, with GetOptions.Conflicts: every map key or list element
	// with several values, the shown one first (not nil then).
	Conflicts []Conflict
	// Created: the write (Create, Put) created the record.
	Created bool
}

// Conflict is a map key or list element with concurrent values
// (protocol.Conflict).
type Conflict = protocol.Conflict

// WriteOptions adjusts the plain-JSON writes and Restore.
type WriteOptions struct {
	// IfMatch makes the write conditional: the ETag of the view it was made
	// against (Record.ETag); the server refuses with CodePreconditionFailed
	// when the record moved on.
	IfMatch string
}

// GetOptions adjusts GetWith.
type GetOptions struct {
	Heads          []string // the record as it was at these heads (time travel)
	IncludeDeleted bool     // answer a deleted record instead of CodeDeleted
	Conflicts      bool     // fill Record.Conflicts
}

// FeedItem is one record of a feed page (protocol.FeedItem).
type FeedItem = protocol.FeedItem

// FeedPage is one page of a collection feed (protocol.FeedResponse).
type FeedPage = protocol.FeedResponse

// Event is one live notification (protocol.Event).
type Event = protocol.Event
