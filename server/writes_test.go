package server

import (
	"testing"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/internal/writestest"
)

// TestWritesReal: PROTOCOL.md's plain-JSON writes, restore and conflicts
// through HTTP on the real engine over bbolt (writestest, which
// store/dynamo/integration runs on DynamoDB Local), with a reader's token
// refused every write.
func TestWritesReal(t *testing.T) {
	rs := newRealServer(t, Options{Authorizer: testAuthorizer}, engine.Options{})
	c := client.New(rs.url)
	c.Token = "good"
	reader := client.New(rs.url)
	reader.Token = "reader"
	writestest.Run(t, c, reader, "todos")
}
