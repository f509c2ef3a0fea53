package server

import (
	"context"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/internal/lifecycletest"
)

// TestDeleteReal: PROTOCOL.md's deletion through HTTP on the real engine
// (lifecycletest, which store/dynamo/integration runs on DynamoDB Local),
// and what a caller without write access or with a bad request gets.
func TestDeleteReal(t *testing.T) {
	rs := newRealServer(t, Options{Authorizer: testAuthorizer}, engine.Options{})
	c := client.New(rs.url)
	c.Token = "good"
	lifecycletest.Delete(t, c, "todos", "d")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	reader := client.New(rs.url)
	reader.Token = "reader"
	if _, err := reader.Delete(ctx, "todos", "d"); !client.IsCode(err, client.CodeForbidden) {
		t.Fatalf("a reader's DELETE = %v, want forbidden", err)
	}
	if _, err := reader.Undelete(ctx, "todos", "d"); !client.IsCode(err, client.CodeForbidden) {
		t.Fatalf("a reader's undelete = %v, want forbidden", err)
	}
	if _, err := c.Delete(ctx, "todos", "bad id!"); !client.IsCode(err, client.CodeInvalidID) {
		t.Fatalf("DELETE of an invalid id = %v, want invalid_id", err)
	}
	if _, err := c.Delete(ctx, "secret", "d"); !client.IsCode(err, client.CodeForbidden) {
		t.Fatalf("DELETE in a forbidden collection = %v, want forbidden", err)
	}
	scenario{url: "/v1/collections/todos/docs/d?include_deleted=maybe", headers: authGood, status: 400, code: CodeBadRequest}.run(t, rs.url)
}

// TestPurgeReal: the purge cases of PROTOCOL.md through HTTP (lifecycletest,
// also run on DynamoDB Local).
func TestPurgeReal(t *testing.T) {
	rs := newRealServer(t, Options{}, engine.Options{PurgeAfter: 24 * time.Hour})
	lifecycletest.Purge(t, client.New(rs.url), "todos", "p", func(now time.Time) int {
		n, err := rs.eng.Purge(context.Background(), now)
		if err != nil {
			t.Fatalf("Purge: %v", err)
		}
		return n
	})
}
