package server_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/dynamerge/dynamerge/internal/historytest"
	"github.com/dynamerge/dynamerge/store/bolt"
)

// TestHistoryReal: PROTOCOL.md's history endpoint and attribution through
// HTTP with tokens, on bbolt (historytest, which store/dynamo/integration
// runs on DynamoDB Local). An external test package: historytest starts
// the server itself.
func TestHistoryReal(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "dynamerge.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	historytest.Run(t, st)
}

// TestMeasureHistory logs the latency of history pages on a record of
// $DYNAMERGE_MEASURE_HISTORY changes on bbolt (historytest.Measure):
//
//	DYNAMERGE_MEASURE_HISTORY=100000 go test ./server -run TestMeasureHistory -v
func TestMeasureHistory(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("DYNAMERGE_MEASURE_HISTORY"))
	if n <= 0 {
		t.Skip("DYNAMERGE_MEASURE_HISTORY is not set")
	}
	st, err := bolt.Open(filepath.Join(t.TempDir(), "dynamerge.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	historytest.Measure(t, st, n, 100)
}
