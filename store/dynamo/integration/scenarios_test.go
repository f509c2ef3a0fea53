package integration

import (
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/internal/amjs"
	"github.com/dynamerge/dynamerge/internal/historytest"
	"github.com/dynamerge/dynamerge/internal/largetest"
	"github.com/dynamerge/dynamerge/internal/lifecycletest"
	"github.com/dynamerge/dynamerge/internal/testutil"
	"github.com/dynamerge/dynamerge/internal/writestest"
	"github.com/dynamerge/dynamerge/server"
	"github.com/dynamerge/dynamerge/store/dynamo/dynamotest"
)

// TestLargeRecords runs e2e's large-record scenarios on DynamoDB Local: a
// million-character paste in one change (1.4 MB, chunked over several
// items), read back by a fresh engine, and two writers typing into one
// text record.
func TestLargeRecords(t *testing.T) {
	dynamotest.Endpoint(t)
	st := dynamotest.NewStore(t, nil, nil, dynamotest.WithoutStream)
	js := amjs.Start(t)
	a := newStack(t, st, engine.Options{})
	largetest.Paste(t, a.Client, js, "notes", "article", 1_000_000)

	// Another process loads it cold from the table.
	b := newStack(t, st, engine.Options{})
	rec, err := b.Client.Get(t.Context(), "notes", "article")
	if err != nil {
		t.Fatalf("Get from a fresh engine: %v", err)
	}
	largetest.FreshClient(t, b.Client, js, "notes", "article", rec)

	largetest.Typing(t, a.Client, js, "notes", "typed", largetest.TypingOptions{Changes: 10_000})
}

// TestLifecycle runs PROTOCOL.md's deletion cases (lifecycletest) on
// DynamoDB Local, the table's stream on.
func TestLifecycle(t *testing.T) {
	dynamotest.Endpoint(t)
	st := dynamotest.NewStore(t, nil, nil)
	lifecycletest.Delete(t, newStack(t, st, engine.Options{}).Client, "todos", "d")

	s := newStack(t, st, engine.Options{PurgeAfter: 24 * time.Hour})
	lifecycletest.Purge(t, s.Client, "todos", "p", func(now time.Time) int {
		n, err := s.Engine.Purge(t.Context(), now)
		if err != nil {
			t.Fatalf("Purge: %v", err)
		}
		return n
	})
	c := st.Capacity()
	t.Logf("purge: %d purged, %.1f write units, %.1f read units on DynamoDB Local", c.Purges, c.PurgeWrites, c.PurgeReads)
}

// TestHistory runs PROTOCOL.md's history and attribution cases
// (historytest) on DynamoDB Local: tokens, compaction, a restart.
func TestHistory(t *testing.T) {
	dynamotest.Endpoint(t)
	historytest.Run(t, dynamotest.NewStore(t, nil, nil, dynamotest.WithoutStream))
}

// TestMeasureHistory logs the latency of history pages on a record of
// $DYNAMERGE_MEASURE_HISTORY changes on DynamoDB Local
// (historytest.Measure):
//
//	DYNAMERGE_MEASURE_HISTORY=100000 go test ./store/dynamo/integration -run TestMeasureHistory -v
func TestMeasureHistory(t *testing.T) {
	dynamotest.Endpoint(t)
	n, _ := strconv.Atoi(os.Getenv("DYNAMERGE_MEASURE_HISTORY"))
	if n <= 0 {
		t.Skip("DYNAMERGE_MEASURE_HISTORY is not set")
	}
	st := dynamotest.NewStore(t, nil, nil, dynamotest.WithoutStream)
	historytest.Measure(t, st, n, 100)
	c := st.Capacity()
	t.Logf("capacity: %+v", c)
}

// TestWrites runs PROTOCOL.md's plain-JSON writes, restore and conflicts
// (writestest) on DynamoDB Local, with a read-only token refused.
func TestWrites(t *testing.T) {
	dynamotest.Endpoint(t)
	st := dynamotest.NewStore(t, nil, nil)
	// "Bearer reader" may only read; every other caller may write.
	readOnly := server.AuthorizerFunc(func(r *http.Request, _ string, write bool) error {
		if write && r.Header.Get("Authorization") == "Bearer reader" {
			return server.ErrForbidden
		}
		return nil
	})
	s := testutil.Start(t, st, engine.Options{}, server.Options{Authorizer: readOnly})
	reader := s.NewClient()
	reader.Token = "reader"
	writestest.Run(t, s.Client, reader, "todos")
}
