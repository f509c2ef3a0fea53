package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/protocol"
)

// maxAnswerBytes bounds a successful answer the client reads: a sync of a
// thousand big records fits, a runaway server does not exhaust memory.
const maxAnswerBytes = 1 << 30

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) newRequest(ctx context.Context, method, path string, query url.Values, body []byte) (*http.Request, error) {
	u := strings.TrimRight(c.BaseURL, "/") + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, fmt.Errorf("dynamerge: %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	return req, nil
}

// do sends req and decodes a 200 (or 201 Created) answer into out; any
// other status gives an *Error. It returns the response headers for callers
// that need them.
func (c *Client) do(req *http.Request, out any) (http.Header, error) {
	h, _, err := c.doStatus(req, out)
	return h, err
}

// doStatus is do, with the answer's status.
func (c *Client) doStatus(req *http.Request, out any) (http.Header, int, error) {
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("dynamerge: %s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return resp.Header, resp.StatusCode, readError(resp)
	}
	body, err := answerBody(resp)
	if err != nil {
		return resp.Header, resp.StatusCode, fmt.Errorf("dynamerge: %s %s: answer: %w", req.Method, req.URL.Path, err)
	}
	if raw, ok := out.(*rawAnswer); ok {
		raw.contentType = resp.Header.Get("Content-Type")
		if raw.body, err = io.ReadAll(io.LimitReader(body, maxAnswerBytes)); err != nil {
			return resp.Header, resp.StatusCode, fmt.Errorf("dynamerge: %s %s: answer: %w", req.Method, req.URL.Path, err)
		}
		return resp.Header, resp.StatusCode, nil
	}
	dec := json.NewDecoder(io.LimitReader(body, maxAnswerBytes))
	if err := dec.Decode(out); err != nil {
		return resp.Header, resp.StatusCode, fmt.Errorf("dynamerge: %s %s: decode answer: %w", req.Method, req.URL.Path, err)
	}
	return resp.Header, resp.StatusCode, nil
}

// Sync sends one /v1/sync request. A whole-request error is an *Error;
// per-document errors are in DocResult.Err. The results have the order of
// docs.
func (c *Client) Sync(ctx context.Context, docs []Doc) ([]DocResult, error) {
	body, err := c.syncBody(docs)
	if err != nil {
		return nil, err
	}
	gz := len(body) >= gzipMinBytes && c.serverTakesGzip()
	if gz {
		body = gzipBody(body)
	}
	req, err := c.newRequest(ctx, http.MethodPost, "/v1/sync", nil, body)
	if err != nil {
		return nil, err
	}
	if c.Binary {
		req.Header.Set("Content-Type", protocol.ContentTypeSyncBinary)
		req.Header.Set("Accept", protocol.ContentTypeSyncBinary+", application/json;q=0.5")
	}
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	req.Header.Set("Accept-Encoding", "gzip")
	var raw rawAnswer
	h, err := c.do(req, &raw)
	if h != nil {
		c.noteGzip(h)
	}
	if err != nil {
		return nil, err
	}
	results, err := parseSyncAnswer(raw)
	if err != nil {
		return nil, fmt.Errorf("dynamerge: sync: %w", err)
	}
	if len(results) != len(docs) {
		return nil, fmt.Errorf("dynamerge: sync: server answered %d docs for %d", len(results), len(docs))
	}
	for i, d := range results {
		if d.Collection != docs[i].Collection || d.ID != docs[i].ID {
			return nil, fmt.Errorf("dynamerge: sync: answer %d is %s/%s, want %s/%s", i, d.Collection, d.ID, docs[i].Collection, docs[i].ID)
		}
	}
	return results, nil
}

// rawAnswer takes an answer undecoded (do), with its Content-Type.
type rawAnswer struct {
	contentType string
	body        []byte
}

// syncBody encodes a sync request: JSON, or binary when c.Binary is set.
func (c *Client) syncBody(docs []Doc) ([]byte, error) {
	if c.Binary {
		raws := make([]protocol.RawSyncDoc, len(docs))
		for i, d := range docs {
			hs, err := crdt.ParseHashes(d.Have)
			if err != nil {
				return nil, fmt.Errorf("dynamerge: sync: %s/%s: have: %w", d.Collection, d.ID, err)
			}
			have := make([][32]byte, len(hs))
			for j, h := range hs {
				have[j] = h
			}
			raws[i] = protocol.RawSyncDoc{Collection: d.Collection, ID: d.ID, Have: have, Changes: d.Changes}
		}
		return protocol.AppendSyncRequest(nil, raws), nil
	}
	in := protocol.SyncRequest{Docs: make([]protocol.SyncDoc, len(docs))}
	for i, d := range docs {
		in.Docs[i] = protocol.SyncDoc{Collection: d.Collection, ID: d.ID, Have: d.Have}
		if len(d.Changes) > 0 {
			in.Docs[i].Changes = base64.StdEncoding.EncodeToString(d.Changes)
		}
	}
	body, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("dynamerge: sync: encode: %w", err)
	}
	return body, nil
}

// parseSyncAnswer decodes a sync answer as its Content-Type says.
func parseSyncAnswer(raw rawAnswer) ([]DocResult, error) {
	if mt, _, _ := mime.ParseMediaType(raw.contentType); mt == protocol.ContentTypeSyncBinary {
		rs, err := protocol.ParseSyncResponse(raw.body)
		if err != nil {
			return nil, err
		}
		out := make([]DocResult, len(rs))
		for i, r := range rs {
			out[i] = DocResult{Collection: r.Collection, ID: r.ID, Heads: make([]string, len(r.Heads)), Changes: r.Changes}
			for j, h := range r.Heads {
				out[i].Heads[j] = crdt.Hash(h).String()
			}
			if r.Error != nil {
				out[i].Err = &Error{Code: r.Error.Code, Message: r.Error.Message}
			}
		}
		return out, nil
	}
	var in protocol.SyncResponse
	if err := json.Unmarshal(raw.body, &in); err != nil {
		return nil, fmt.Errorf("decode answer: %w", err)
	}
	out := make([]DocResult, len(in.Docs))
	for i, d := range in.Docs {
		changes, err := base64.StdEncoding.DecodeString(d.Changes)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: changes: %w", d.Collection, d.ID, err)
		}
		out[i] = DocResult{Collection: d.Collection, ID: d.ID, Heads: d.Heads, Changes: changes}
		if d.Error != nil {
			out[i].Err = &Error{Code: d.Error.Code, Message: d.Error.Message}
		}
	}
	return out, nil
}

// Get reads a record as JSON, at heads when given. A record never written
// gives an *Error with Code "not_found", a deleted one Code "deleted" (with
// the record's Heads).
func (c *Client) Get(ctx context.Context, collection, id string, heads ...string) (*Record, error) {
	return c.GetWith(ctx, collection, id, GetOptions{Heads: heads})
}

// GetWith is Get with options.
func (c *Client) GetWith(ctx context.Context, collection, id string, opts GetOptions) (*Record, error) {
	q := url.Values{}
	if len(opts.Heads) > 0 {
		q.Set("heads", strings.Join(opts.Heads, ","))
	}
	if opts.IncludeDeleted {
		q.Set("include_deleted", "true")
	}
	if opts.Conflicts {
		q.Set("conflicts", "true")
	}
	req, err := c.newRequest(ctx, http.MethodGet, docPath(collection, id), q, nil)
	if err != nil {
		return nil, err
	}
	return c.doRecord(req)
}

// Delete deletes a record: the server makes the change that puts its root
// "$deleted", so every device sees it deleted at its next sync. Deleting a
// deleted record changes nothing. It returns the record's heads.
func (c *Client) Delete(ctx context.Context, collection, id string) ([]string, error) {
	req, err := c.newRequest(ctx, http.MethodDelete, docPath(collection, id), nil, nil)
	if err != nil {
		return nil, err
	}
	var out protocol.DeleteResponse
	if _, err := c.do(req, &out); err != nil {
		return nil, err
	}
	return out.Heads, nil
}

// Undelete undeletes a record and returns its JSON view; edits made while
// it was deleted show again.
func (c *Client) Undelete(ctx context.Context, collection, id string) (*Record, error) {
	req, err := c.newRequest(ctx, http.MethodPost, docPath(collection, id)+"/undelete", nil, nil)
	if err != nil {
		return nil, err
	}
	return c.doRecord(req)
}

func docPath(collection, id string) string {
	return "/v1/collections/" + url.PathEscape(collection) + "/docs/" + url.PathEscape(id)
}

// doRecord sends req and reads a JSON view answer.
func (c *Client) doRecord(req *http.Request) (*Record, error) {
	var out protocol.DocResponse
	h, status, err := c.doStatus(req, &out)
	if err != nil {
		return nil, err
	}
	return &Record{
		Collection: out.Collection, ID: out.ID, Heads: out.Heads, Doc: out.Doc, ETag: h.Get("ETag"),
		Deleted: out.Deleted, Conflicts: out.Conflicts, Created: status == http.StatusCreated,
	}, nil
}

// Feed reads one page of a collection feed. Start with cursor "" and pass
// each page's Cursor back until More is false; limit 0 means the server's
// default.
func (c *Client) Feed(ctx context.Context, collection, cursor string, limit int) (*FeedPage, error) {
	q := url.Values{}
	if cursor != "" {
		q.Set("after", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/collections/"+url.PathEscape(collection)+"/feed", q, nil)
	if err != nil {
		return nil, err
	}
	var out FeedPage
	if _, err := c.do(req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
