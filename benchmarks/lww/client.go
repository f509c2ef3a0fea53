package lww

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Client speaks the baseline's HTTP API.
type Client struct {
	BaseURL string
	HTTP    *http.Client
}

// Put sends v for collection/id and returns the version the server kept.
func (c *Client) Put(ctx context.Context, collection, id string, v Version) (Version, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return Version{}, err
	}
	return c.do(ctx, http.MethodPut, collection, id, body)
}

// Get returns the stored version of collection/id, or ErrNotFound.
func (c *Client) Get(ctx context.Context, collection, id string) (Version, error) {
	return c.do(ctx, http.MethodGet, collection, id, nil)
}

func (c *Client) do(ctx context.Context, method, collection, id string, body []byte) (Version, error) {
	u := strings.TrimRight(c.BaseURL, "/") + "/lww/" + url.PathEscape(collection) + "/" + url.PathEscape(id)
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return Version{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Version{}, fmt.Errorf("lww: %s %s/%s: %w", method, collection, id, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 2*MaxRecordBytes))
	if err != nil {
		return Version{}, fmt.Errorf("lww: %s %s/%s: read answer: %w", method, collection, id, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return Version{}, ErrNotFound
	}
	if resp.StatusCode != http.StatusOK {
		return Version{}, fmt.Errorf("lww: %s %s/%s: status %d: %s", method, collection, id, resp.StatusCode, bytes.TrimSpace(b))
	}
	var v Version
	if err := json.Unmarshal(b, &v); err != nil {
		return Version{}, fmt.Errorf("lww: %s %s/%s: decode answer: %w", method, collection, id, err)
	}
	return v, nil
}
