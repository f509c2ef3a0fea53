package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/store/dynamo/dynamotest"
)

// TestFanoutDynamo runs three dynamerge processes on one DynamoDB Local
// table in fan-out mode (--peer-listen): a change made through one
// process, or appended by another program through the store package (which
// only the process holding the stream lease reads), reaches /v1/events on
// every process; the same checks and timing as TestMultiProcessDynamo,
// whose processes all read the stream.
func TestFanoutDynamo(t *testing.T) {
	requireUnix(t)
	endpoint := dynamotest.SetEnv(t) // skips without DynamoDB Local
	table := dynamotest.NewTable(t, dynamotest.Client(t))
	bin := buildBinary(t)
	clients := make([]*client.Client, mpProcs)
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	for i := range clients {
		addr := freeAddr(t)
		p := startBinary(t, bin, addr, 60*time.Second, "--store", "dynamodb:"+table, "--dynamodb-endpoint", endpoint,
			"--peer-listen", freeAddr(t), "--peer-secret", "e2e-fanout-secret-0123456789")
		t.Cleanup(p.kill)
		clients[i] = client.New("http://" + addr)
		clients[i].HTTP = &http.Client{Transport: tr}
	}
	t.Run("events", func(t *testing.T) { testCrossProcessEvents(t, clients) })
	t.Run("store append", func(t *testing.T) { testStoreAppendEvents(t, clients, table) })
}
