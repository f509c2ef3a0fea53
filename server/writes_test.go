package server

import (
	"strings"
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

// TestWritesCORS: a page of an allowed origin may send the plain-JSON
// writes (PUT, PATCH, DELETE, If-Match) and read Location.
func TestWritesCORS(t *testing.T) {
	on := newRealServer(t, Options{CORSOrigins: []string{"https://app.example"}}, engine.Options{})
	st, hdr, _ := httpCall(t, "OPTIONS", on.url+"/v1/collections/todos/docs/x", "", "", "Origin", "https://app.example",
		"Access-Control-Request-Method", "PATCH", "Access-Control-Request-Headers", "if-match,content-type")
	if st != 204 || !strings.Contains(hdr.Get("Access-Control-Allow-Methods"), "PATCH") ||
		!strings.Contains(hdr.Get("Access-Control-Allow-Methods"), "PUT") || !strings.Contains(hdr.Get("Access-Control-Allow-Headers"), "If-Match") {
		t.Fatalf("preflight of a PATCH: %d %v", st, hdr)
	}
	st, hdr, _ = httpCall(t, "POST", on.url+"/v1/collections/todos/docs", "", `{"a": 1}`, "Origin", "https://app.example")
	if st != 201 || !strings.Contains(hdr.Get("Access-Control-Expose-Headers"), "Location") || hdr.Get("Location") == "" {
		t.Fatalf("POST from the origin: %d %v", st, hdr)
	}
}
