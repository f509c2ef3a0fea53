package client

import (
	"context"
	"iter"
	"net/http"
	"net/url"
	"strconv"

	"github.com/dynamerge/dynamerge/protocol"
)

// HistoryChange is one change of a record's history: hash, actor, seq,
// deps, the change's own time and message, its op count, and who first
// pushed it (By, nil without authentication) and when the server accepted
// it (At).
type HistoryChange = protocol.HistoryChange

// HistoryPage is one page of a record's history, newest first.
type HistoryPage = protocol.HistoryResponse

// History returns up to limit changes of the record accepted before the
// change cursor names ("" for the newest), newest first. Pass the page's
// Cursor to get the next (older) page while More is true. limit <= 0 takes
// the server's default (100). A record never written is an *Error with
// code not_found.
func (c *Client) History(ctx context.Context, collection, id, cursor string, limit int) (*HistoryPage, error) {
	q := url.Values{}
	if cursor != "" {
		q.Set("before", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	req, err := c.newRequest(ctx, http.MethodGet, docPath(collection, id)+"/changes", q, nil)
	if err != nil {
		return nil, err
	}
	var out HistoryPage
	if _, err := c.do(req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// HistoryAll yields the record's whole history, newest first, fetching
// pages of pageSize (<= 0: the server's default) as the loop asks for
// more. An error ends it, yielded with a zero change.
func (c *Client) HistoryAll(ctx context.Context, collection, id string, pageSize int) iter.Seq2[HistoryChange, error] {
	return func(yield func(HistoryChange, error) bool) {
		cursor := ""
		for {
			page, err := c.History(ctx, collection, id, cursor, pageSize)
			if err != nil {
				yield(HistoryChange{}, err)
				return
			}
			for _, ch := range page.Changes {
				if !yield(ch, nil) {
					return
				}
			}
			if !page.More {
				return
			}
			cursor = page.Cursor
		}
	}
}
