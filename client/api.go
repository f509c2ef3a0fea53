// SKELETON: the exported API other packages build against. The client helper
// fills in the bodies; signatures stay as they are (additions are fine).
package client

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Client speaks the dynamerge protocol (PROTOCOL.md) to one server.
type Client struct {
	BaseURL string
	HTTP    *http.Client
	Token   string // sent as "Authorization: Bearer <token>" when set
}

// New returns a client for the server at baseURL ("http://127.0.0.1:8080").
func New(baseURL string) *Client { return &Client{BaseURL: baseURL, HTTP: http.DefaultClient} }

// Error is an error answer of the server: a whole-request error (Status set)
// or a per-document one (Status 0).
type Error struct {
	Status     int
	Code       string // the protocol's error code, e.g. "invalid_change"
	Message    string
	RetryAfter time.Duration
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

// Sync sends one /v1/sync request.
func (c *Client) Sync(ctx context.Context, docs []Doc) ([]DocResult, error) { return nil, nil }

// Record is the JSON view of a record.
type Record struct {
	Collection string
	ID         string
	Heads      []string
	Doc        json.RawMessage
	ETag       string
}

// Get reads a record as JSON, at heads when given.
func (c *Client) Get(ctx context.Context, collection, id string, heads ...string) (*Record, error) {
	return nil, nil
}

// FeedItem is one record of a feed page.
type FeedItem struct {
	ID    string   `json:"id"`
	Heads []string `json:"heads"`
}

// FeedPage is one page of a collection feed.
type FeedPage struct {
	Docs   []FeedItem `json:"docs"`
	Cursor string     `json:"cursor"`
	More   bool       `json:"more"`
}

// Feed reads one page of a collection feed.
func (c *Client) Feed(ctx context.Context, collection, cursor string, limit int) (*FeedPage, error) {
	return nil, nil
}

// Event is one live notification.
type Event struct {
	Collection string   `json:"collection"`
	ID         string   `json:"id"`
	Heads      []string `json:"heads"`
}

// Events subscribes to live notifications; the channel closes when ctx ends
// or the connection drops.
func (c *Client) Events(ctx context.Context, collections ...string) (<-chan Event, error) {
	return nil, nil
}
