// Package amgo makes real Automerge changes with automerge-go for tests:
// the edit-then-commit-then-save steps several tests repeated. (The server
// never runs automerge-go; it is a client-side tool here.)
package amgo

import (
	"testing"

	"github.com/automerge/automerge-go"
)

// Edit sets key (an automerge-go path such as "title" or "items") of doc to
// val, commits with message "edit <key>", and returns the change's hash and
// its change chunk.
func Edit(tb testing.TB, doc *automerge.Doc, key string, val any) (automerge.ChangeHash, []byte) {
	tb.Helper()
	if err := doc.Path(key).Set(val); err != nil {
		tb.Fatalf("automerge-go: set %s: %v", key, err)
	}
	h, err := doc.Commit("edit " + key)
	if err != nil {
		tb.Fatalf("automerge-go: commit: %v", err)
	}
	c, err := doc.Change(h)
	if err != nil {
		tb.Fatalf("automerge-go: change %s: %v", h, err)
	}
	return h, c.Save()
}
