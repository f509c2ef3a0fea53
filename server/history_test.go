package server

import (
	"testing"

	"github.com/dynamerge/dynamerge/engine"
)

// TestHistoryRequests: what the history endpoint answers to bad requests,
// before it reaches the engine.
func TestHistoryRequests(t *testing.T) {
	rs := newRealServer(t, Options{Authorizer: testAuthorizer}, engine.Options{})
	for _, sc := range []scenario{
		{name: "limit zero", url: "/v1/collections/todos/docs/d/changes?limit=0", headers: authGood, status: 400, code: CodeBadRequest},
		{name: "limit too large", url: "/v1/collections/todos/docs/d/changes?limit=1001", headers: authGood, status: 400, code: CodeBadRequest},
		{name: "bad id", url: "/v1/collections/todos/docs/bad%20id/changes", headers: authGood, status: 400, code: CodeInvalidID},
		{name: "forbidden", url: "/v1/collections/secret/docs/d/changes", headers: authGood, status: 403, code: CodeForbidden},
		{name: "missing", url: "/v1/collections/todos/docs/nobody/changes", headers: authGood, status: 404, code: CodeNotFound},
	} {
		t.Run(sc.name, func(t *testing.T) { sc.run(t, rs.url) })
	}
}
