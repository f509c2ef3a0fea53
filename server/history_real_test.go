package server_test

import (
	"path/filepath"
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
