package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/dynamerge/dynamerge/protocol"
)

// Plain-JSON writes (PROTOCOL.md): each becomes one Automerge change made by
// the server, merged with every replica's edits; text is edited by splicing
// the difference. doc and patch arguments are anything encoding/json
// marshals (a json.RawMessage is sent as it is).

// Create creates a record with a new id (a UUID the server picks) equal to
// doc, a JSON object; the Record says its ID.
func (c *Client) Create(ctx context.Context, collection string, doc any) (*Record, error) {
	return c.write(ctx, http.MethodPost, "/v1/collections/"+url.PathEscape(collection)+"/docs", "application/json", doc, WriteOptions{})
}

// Put creates the record, or changes it to equal doc, a JSON object.
// Record.Created says which.
func (c *Client) Put(ctx context.Context, collection, id string, doc any, opts WriteOptions) (*Record, error) {
	return c.write(ctx, http.MethodPut, docPath(collection, id), "application/json", doc, opts)
}

// MergePatch changes the record with an RFC 7396 merge patch (null removes a
// key).
func (c *Client) MergePatch(ctx context.Context, collection, id string, patch any, opts WriteOptions) (*Record, error) {
	return c.write(ctx, http.MethodPatch, docPath(collection, id), protocol.ContentTypeMergePatch, patch, opts)
}

// JSONPatch changes the record with an RFC 6902 JSON Patch (a list of
// operations, e.g. []PatchOp). A failed "test" gives CodeConflict.
func (c *Client) JSONPatch(ctx context.Context, collection, id string, ops any, opts WriteOptions) (*Record, error) {
	return c.write(ctx, http.MethodPatch, docPath(collection, id), protocol.ContentTypeJSONPatch, ops, opts)
}

// PatchOp is one RFC 6902 operation. Value is the operation's value as JSON
// (json.RawMessage("null") for null); From is for move and copy.
type PatchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	From  string          `json:"from,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
}

// Restore makes the record's state its state at heads again, in one new
// change (nothing of the history is removed); restoring a version from
// before a delete undeletes.
func (c *Client) Restore(ctx context.Context, collection, id string, heads []string, opts WriteOptions) (*Record, error) {
	return c.write(ctx, http.MethodPost, docPath(collection, id)+"/restore", "application/json", protocol.RestoreRequest{Heads: heads}, opts)
}

func (c *Client) write(ctx context.Context, method, path, contentType string, v any, opts WriteOptions) (*Record, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("dynamerge: %s %s: encode: %w", method, path, err)
	}
	req, err := c.newRequest(ctx, method, path, nil, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	if opts.IfMatch != "" {
		req.Header.Set("If-Match", opts.IfMatch)
	}
	return c.doRecord(req)
}
