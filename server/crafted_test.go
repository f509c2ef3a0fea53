package server

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"encoding/json"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/protocol"
)

// issue18Change reads one of the crafted changes of issue 18 from
// testdata/issue18: stall-64.bin is 50,000 unchained sets of one root key
// run-length encoded in 64 bytes; chained-98.bin is the same on top of it.
func issue18Change(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "issue18", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestCraftedRunLengthChanges: the two changes that stalled a worker for
// 10–15 s and then broke their record for good (issue 18, item 1) are
// refused at once, other records' syncs stay quick while they are
// pushed over and over, and the record they aimed at keeps syncing honest
// changes, its JSON view included.
//
// The bound is stallBound, not the few milliseconds these take on a quiet
// machine: the stall it guards against was 10–15 s, and on a loaded CI
// machine (every test package at once) any request can take over a second.
func TestCraftedRunLengthChanges(t *testing.T) {
	rs := newRealServer(t, Options{Authorizer: newTestAuth(t)}, engine.Options{})
	base := rs.url
	tok := signHS(t, claimsFor("mallory", map[string]any{"todos": "rw"}))
	stall, chained := issue18Change(t, "stall-64.bin"), issue18Change(t, "chained-98.bin")

	for _, tc := range []struct {
		name    string
		changes []byte
		code    string
	}{
		{"64-byte stall", stall, CodeInvalidChange},
		{"both at once", append(append([]byte{}, stall...), chained...), CodeInvalidChange},
		// Its dependency was refused, so the server says where it stands.
		{"98-byte chained alone", chained, CodeMissingDeps},
	} {
		start := time.Now()
		st, _, body := httpCall(t, "POST", base+"/v1/sync", tok, syncBody(docJSON("todos", "b1", b64(tc.changes))))
		if st != 200 {
			t.Fatalf("%s: status %d: %s", tc.name, st, body)
		}
		if got := docCodeOf(t, body); got != tc.code {
			t.Fatalf("%s: doc code %q, want %q: %s", tc.name, got, tc.code, body)
		}
		if d := time.Since(start); d > stallBound {
			t.Errorf("%s: refused after %s, want under %s", tc.name, d, stallBound)
		}
	}

	// Mallory pushes both in a loop while honest users sync their own
	// records; each honest sync must stay under a second.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var pushes atomic.Int64
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client.New(base)
			c.Token = tok
			for ctx.Err() == nil {
				_, _ = c.Sync(ctx, []client.Doc{{Collection: "todos", ID: "b1", Changes: stall}, {Collection: "todos", ID: "b2", Changes: append(append([]byte{}, stall...), chained...)}})
				pushes.Add(1)
			}
		}()
	}
	_, slowest := honestSyncs(ctx, t, base, "u1", "u2")
	wg.Wait()
	if d := slowest; d > stallBound {
		t.Errorf("slowest honest sync took %s while crafted changes were pushed, want under %s", d, stallBound)
	}
	t.Logf("%d crafted pushes; slowest honest sync %s", pushes.Load(), slowest)

	// The record the crafted changes aimed at still takes honest changes
	// and still has a JSON view.
	h := newHistory()
	for i, v := range []string{"first", "second"} {
		st, _, body := httpCall(t, "POST", base+"/v1/sync", tok, syncBody(docJSON("todos", "b1", b64(h.edit(t, "title", v)))))
		if st != 200 || docCodeOf(t, body) != "" {
			t.Fatalf("honest push %d to todos/b1: %d %s", i, st, body)
		}
	}
	start := time.Now()
	st, _, body := httpCall(t, "GET", base+"/v1/collections/todos/docs/b1", tok, "")
	if st != 200 || !strings.Contains(string(body), `"title":"second"`) {
		t.Fatalf("JSON view of todos/b1: %d %s", st, body)
	}
	if d := time.Since(start); d > stallBound {
		t.Errorf("JSON view of todos/b1 took %s, want under %s", d, stallBound)
	}
}

// stallBound is how long TestCraftedRunLengthChanges lets a request take.
const stallBound = 3 * time.Second

// docCodeOf is the error code of the one doc of a sync answer, "" for none.
func docCodeOf(tb testing.TB, body []byte) string {
	tb.Helper()
	var sr protocol.SyncResponse
	if err := json.Unmarshal(body, &sr); err != nil || len(sr.Docs) != 1 {
		tb.Fatalf("not a sync answer of one doc (%v): %s", err, body)
	}
	if sr.Docs[0].Error == nil {
		return ""
	}
	return sr.Docs[0].Error.Code
}
