package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// maxSSELine bounds one line of the event stream; a change event is a few
// hundred bytes.
const maxSSELine = 1 << 20

// Events subscribes to live notifications; the channel closes when ctx ends
// or the connection drops (resubscribe, then sync, to catch up). An error
// answer of the server is returned as an *Error before any event. The
// client's HTTP.Timeout, if any, also ends the stream.
func (c *Client) Events(ctx context.Context, collections ...string) (<-chan Event, error) {
	q := url.Values{}
	q.Set("collections", strings.Join(collections, ","))
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/events", q, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("dynamerge: events: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		resp.Body.Close()
		return nil, fmt.Errorf("dynamerge: events: answer is %q, not text/event-stream", resp.Header.Get("Content-Type"))
	}
	ch := make(chan Event, 64)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		_ = readSSE(resp.Body, func(event, data string) bool {
			if event != "change" {
				return true
			}
			var ev Event
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				return true // not ours to judge; skip what we cannot read
			}
			select {
			case ch <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		})
	}()
	return ch, nil
}

// readSSE parses a text/event-stream (the WHATWG HTML "event stream
// interpretation"): lines end in LF, CRLF or CR; ":" starts a comment; a
// field's value loses one leading space; data lines join with LF; a blank
// line dispatches the event (type "message" unless named). An event cut off
// by the end of the stream is dropped, as browsers do. It stops when emit
// returns false and returns the read error, nil at a clean end.
func readSSE(r io.Reader, emit func(event, data string) bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxSSELine)
	sc.Split(scanSSELines)
	var (
		event   string
		data    strings.Builder
		hasData bool
		first   = true
	)
	for sc.Scan() {
		line := sc.Bytes()
		if first {
			line = bytes.TrimPrefix(line, []byte("\uFEFF")) // a BOM may open the stream
			first = false
		}
		if len(line) == 0 {
			if hasData {
				name := event
				if name == "" {
					name = "message"
				}
				if !emit(name, data.String()) {
					return nil
				}
			}
			event, hasData = "", false
			data.Reset()
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			value = bytes.TrimPrefix(value, []byte(" "))
		}
		switch string(field) {
		case "event":
			event = string(value)
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.Write(value)
			hasData = true
		}
		// "id" and "retry" matter to reconnecting browsers, not to us;
		// unknown fields are ignored by the spec.
	}
	return sc.Err()
}

// scanSSELines splits on LF, CRLF or a lone CR. A CR at the end of the
// buffer waits for more input, so a CRLF split across reads is one break.
func scanSSELines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	for i, b := range data {
		switch b {
		case '\n':
			return i + 1, data[:i], nil
		case '\r':
			if i+1 < len(data) {
				if data[i+1] == '\n' {
					return i + 2, data[:i], nil
				}
				return i + 1, data[:i], nil
			}
			if atEOF {
				return i + 1, data[:i], nil
			}
			return 0, nil, nil
		}
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}
