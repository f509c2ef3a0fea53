// Package writestest is PROTOCOL.md's plain-JSON writes, restore and
// conflicts as scenarios that run against any server through the Go
// client, so the bbolt tests (server) and the DynamoDB Local tests
// (store/dynamo/integration) check the same cases.
package writestest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/client"
)

// Run runs every scenario on collection, which c may write. ro, when not
// nil, is a client whose token may only read the collection.
func Run(t *testing.T, c, ro *client.Client, collection string) {
	t.Run("create and put", func(t *testing.T) { CreateAndPut(t, c, collection) })
	t.Run("text merge", func(t *testing.T) { TextMerge(t, c, collection) })
	t.Run("if-match", func(t *testing.T) { IfMatch(t, c, collection) })
	t.Run("patches", func(t *testing.T) { Patches(t, c, collection) })
	t.Run("refused", func(t *testing.T) { Refused(t, c, ro, collection) })
	t.Run("restore", func(t *testing.T) { Restore(t, c, collection) })
	t.Run("conflicts", func(t *testing.T) { Conflicts(t, c, collection) })
}

func ctxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// same compares two JSON texts as values.
func same(t *testing.T, got []byte, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("bad JSON %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad JSON %s: %v", want, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	return bytes.Equal(gb, wb)
}

func mustGet(t *testing.T, c *client.Client, collection, id, want string) *client.Record {
	t.Helper()
	rec, err := c.Get(ctxOf(t), collection, id)
	if err != nil {
		t.Fatalf("GET %s: %v", id, err)
	}
	if want != "" && !same(t, rec.Doc, want) {
		t.Fatalf("GET %s = %s, want %s", id, rec.Doc, want)
	}
	return rec
}

// CreateAndPut: POST makes a new UUID record (201, Location); PUT creates
// (201) then changes (200); PUT x then GET gives x; an equal PUT makes no
// change.
func CreateAndPut(t *testing.T, c *client.Client, collection string) {
	ctx := ctxOf(t)
	body := `{"title": "Buy milk", "done": false, "n": 3, "f": 2.5, "tags": ["a", "b"], "o": {"x": null}}`
	rec, err := c.Create(ctx, collection, json.RawMessage(body))
	if err != nil || !rec.Created || len(rec.ID) != 36 || !same(t, rec.Doc, body) || rec.ETag == "" {
		t.Fatalf("Create = %+v, %v", rec, err)
	}
	mustGet(t, c, collection, rec.ID, body)

	id := "put-" + rec.ID[:8]
	rec, err = c.Put(ctx, collection, id, json.RawMessage(body), client.WriteOptions{})
	if err != nil || !rec.Created {
		t.Fatalf("PUT of a new record = %+v, %v; want created", rec, err)
	}
	next := `{"title": "Buy oat milk", "done": true, "n": 4, "tags": ["b", "c"], "big": 18446744073709551615, "neg": -1.25e-7}`
	rec, err = c.Put(ctx, collection, id, json.RawMessage(next), client.WriteOptions{})
	if err != nil || rec.Created || !same(t, rec.Doc, next) {
		t.Fatalf("PUT = %+v, %v", rec, err)
	}
	got := mustGet(t, c, collection, id, next)
	if got.ETag != rec.ETag {
		t.Fatalf("ETag of GET %s, of PUT %s", got.ETag, rec.ETag)
	}
	again, err := c.Put(ctx, collection, id, json.RawMessage(next), client.WriteOptions{})
	if err != nil || !slices.Equal(again.Heads, rec.Heads) {
		t.Fatalf("an equal PUT moved heads %v → %v (%v)", rec.Heads, again.Heads, err)
	}
}

// TextMerge: a REST write and a replica's offline edit of the same text
// both survive.
func TextMerge(t *testing.T, c *client.Client, collection string) {
	ctx := ctxOf(t)
	id := "merge-" + suffix()
	if _, err := c.Put(ctx, collection, id, json.RawMessage(`{"title": "the cat sat"}`), client.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	r := client.NewReplica(c, collection, id)
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// Offline: the replica appends; meanwhile a backend inserts a word.
	txt := r.Doc().Path("title").Text()
	if err := txt.Append(" down"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Doc().Commit("append"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, collection, id, json.RawMessage(`{"title": "the black cat sat"}`), client.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	want := `{"title": "the black cat sat down"}`
	mustGet(t, c, collection, id, want)
	if s, err := r.Doc().Path("title").Text().Get(); err != nil || s != "the black cat sat down" {
		t.Fatalf("replica text %q, %v", s, err)
	}
}

// IfMatch: a write against an old ETag is refused 412 and changes nothing;
// against the current one (or "*") it goes through.
func IfMatch(t *testing.T, c *client.Client, collection string) {
	ctx := ctxOf(t)
	id := "ifmatch-" + suffix()
	first, err := c.Put(ctx, collection, id, json.RawMessage(`{"v": 1}`), client.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Put(ctx, collection, id, json.RawMessage(`{"v": 2}`), client.WriteOptions{IfMatch: first.ETag})
	if err != nil {
		t.Fatalf("PUT If-Match current: %v", err)
	}
	for name, write := range map[string]func() error{
		"PUT": func() error {
			_, err := c.Put(ctx, collection, id, json.RawMessage(`{"v": 3}`), client.WriteOptions{IfMatch: first.ETag})
			return err
		},
		"merge patch": func() error {
			_, err := c.MergePatch(ctx, collection, id, json.RawMessage(`{"v": 3}`), client.WriteOptions{IfMatch: first.ETag})
			return err
		},
		"restore": func() error {
			_, err := c.Restore(ctx, collection, id, first.Heads, client.WriteOptions{IfMatch: first.ETag})
			return err
		},
	} {
		if err := write(); !client.IsCode(err, client.CodePreconditionFailed) {
			t.Fatalf("%s with a stale If-Match = %v, want precondition_failed", name, err)
		}
	}
	_, err = c.Put(ctx, collection, id+"-new", json.RawMessage(`{"v": 1}`), client.WriteOptions{IfMatch: "*"})
	if !client.IsCode(err, client.CodePreconditionFailed) {
		t.Fatalf("PUT If-Match * of a new record = %v, want precondition_failed", err)
	}
	if _, err := c.Get(ctx, collection, id+"-new"); !client.IsCode(err, client.CodeNotFound) {
		t.Fatalf("a refused PUT created the record: %v", err)
	}
	if rec := mustGet(t, c, collection, id, `{"v": 2}`); !slices.Equal(rec.Heads, second.Heads) {
		t.Fatalf("refused writes moved the record: %v → %v", second.Heads, rec.Heads)
	}
	if _, err := c.Put(ctx, collection, id, json.RawMessage(`{"v": 3}`), client.WriteOptions{IfMatch: "*"}); err != nil {
		t.Fatalf("PUT If-Match *: %v", err)
	}
}

// Patches: merge patches and JSON Patches, a failed test 409.
func Patches(t *testing.T, c *client.Client, collection string) {
	ctx := ctxOf(t)
	id := "patch-" + suffix()
	if _, err := c.Put(ctx, collection, id, json.RawMessage(`{"title": "milk", "done": false, "n": 1, "tags": ["x"]}`), client.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	rec, err := c.MergePatch(ctx, collection, id, json.RawMessage(`{"done": true, "n": null, "o": {"k": "v"}}`), client.WriteOptions{})
	if want := `{"title": "milk", "done": true, "tags": ["x"], "o": {"k": "v"}}`; err != nil || !same(t, rec.Doc, want) {
		t.Fatalf("merge patch = %+v, %v; want %s", rec, err, want)
	}
	ops := []client.PatchOp{
		{Op: "test", Path: "/done", Value: json.RawMessage(`true`)},
		{Op: "replace", Path: "/title", Value: json.RawMessage(`"oat milk"`)},
		{Op: "add", Path: "/tags/-", Value: json.RawMessage(`"y"`)},
		{Op: "move", From: "/o/k", Path: "/k"},
		{Op: "remove", Path: "/o"},
	}
	rec, err = c.JSONPatch(ctx, collection, id, ops, client.WriteOptions{})
	if want := `{"title": "oat milk", "done": true, "tags": ["x", "y"], "k": "v"}`; err != nil || !same(t, rec.Doc, want) {
		t.Fatalf("JSON Patch = %+v, %v; want %s", rec, err, want)
	}
	for _, ops := range [][]client.PatchOp{
		{{Op: "test", Path: "/done", Value: json.RawMessage(`false`)}, {Op: "replace", Path: "/title", Value: json.RawMessage(`"x"`)}},
		{{Op: "test", Path: "/missing", Value: json.RawMessage(`1`)}},
	} {
		if _, err := c.JSONPatch(ctx, collection, id, ops, client.WriteOptions{}); !client.IsCode(err, client.CodeConflict) {
			t.Fatalf("JSON Patch with a failing test %+v = %v, want conflict", ops, err)
		}
	}
	if now := mustGet(t, c, collection, id, ""); !slices.Equal(now.Heads, rec.Heads) {
		t.Fatal("a failed test changed the record")
	}
	if _, err := c.MergePatch(ctx, collection, id+"-never", json.RawMessage(`{"a": 1}`), client.WriteOptions{}); !client.IsCode(err, client.CodeNotFound) {
		t.Fatalf("PATCH of a record never written = %v, want not_found", err)
	}
}

// Refused: reserved keys, malformed bodies and patches, wrong Content-Type
// (400), a read-only token (403), writes to a deleted record (404 deleted);
// none changes anything.
func Refused(t *testing.T, c, ro *client.Client, collection string) {
	ctx := ctxOf(t)
	id := "refused-" + suffix()
	base, err := c.Put(ctx, collection, id, json.RawMessage(`{"a": {"b": 1}, "l": [1]}`), client.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	path := "/v1/collections/" + collection + "/docs/" + id
	for _, tt := range []struct {
		name, method, path, ctype, body string
	}{
		{"reserved root key", "PUT", path, "application/json", `{"$deleted": true}`},
		{"reserved nested key", "PUT", path, "application/json", `{"a": {"$x": 1}}`},
		{"reserved key in a list", "POST", "/v1/collections/" + collection + "/docs", "application/json", `{"l": [{"$x": 1}]}`},
		{"merge patch of a reserved key", "PATCH", path, "application/merge-patch+json", `{"$deleted": null}`},
		{"JSON Patch of a reserved path", "PATCH", path, "application/json-patch+json", `[{"op": "remove", "path": "/$deleted"}]`},
		{"JSON Patch from a reserved path", "PATCH", path, "application/json-patch+json", `[{"op": "copy", "from": "/$deleted", "path": "/d"}]`},
		{"not an object", "PUT", path, "application/json", `[1, 2]`},
		{"not JSON", "PUT", path, "application/json", `{"a": `},
		{"two values", "PUT", path, "application/json", `{} {}`},
		{"wrong Content-Type", "PUT", path, "text/plain", `{"a": 1}`},
		{"PATCH without a patch type", "PATCH", path, "application/json", `{"a": 1}`},
		{"malformed merge patch", "PATCH", path, "application/merge-patch+json", `{"a": `},
		{"JSON Patch not a list", "PATCH", path, "application/json-patch+json", `{"op": "add", "path": "/x", "value": 1}`},
		{"JSON Patch unknown op", "PATCH", path, "application/json-patch+json", `[{"op": "frob", "path": "/a"}]`},
		{"JSON Patch missing path", "PATCH", path, "application/json-patch+json", `[{"op": "add", "value": 1}]`},
		{"JSON Patch does not apply", "PATCH", path, "application/json-patch+json", `[{"op": "remove", "path": "/nothing"}]`},
		{"JSON Patch negative index", "PATCH", path, "application/json-patch+json", `[{"op": "remove", "path": "/l/-1"}]`},
		{"merge patch to a non-object", "PATCH", path, "application/merge-patch+json", `[1]`},
		{"number out of range", "PUT", path, "application/json", `{"a": 1e400}`},
		{"restore without heads", "POST", path + "/restore", "application/json", `{}`},
		{"restore to unknown heads", "POST", path + "/restore", "application/json", `{"heads": ["` + strings.Repeat("ab", 32) + `"]}`},
		{"restore to a bad hash", "POST", path + "/restore", "application/json", `{"heads": ["xyz"]}`},
	} {
		status, code := raw(t, c, tt.method, tt.path, tt.ctype, tt.body)
		if status != http.StatusBadRequest || code != client.CodeBadRequest {
			t.Errorf("%s: %d %s, want 400 bad_request", tt.name, status, code)
		}
	}
	if ro != nil {
		for _, tt := range []struct{ method, path, body string }{
			{"POST", "/v1/collections/" + collection + "/docs", `{"a": 1}`},
			{"PUT", path, `{"a": 2}`},
			{"PATCH", path, `{"a": 2}`},
			{"POST", path + "/restore", `{"heads": ["` + base.Heads[0] + `"]}`},
		} {
			ctype := "application/json"
			if tt.method == "PATCH" {
				ctype = "application/merge-patch+json"
			}
			if status, code := raw(t, ro, tt.method, tt.path, ctype, tt.body); status != http.StatusForbidden || code != client.CodeForbidden {
				t.Errorf("read-only %s %s: %d %s, want 403 forbidden", tt.method, tt.path, status, code)
			}
		}
	}
	if rec := mustGet(t, c, collection, id, `{"a": {"b": 1}, "l": [1]}`); !slices.Equal(rec.Heads, base.Heads) {
		t.Fatalf("refused writes moved the record: %v → %v", base.Heads, rec.Heads)
	}

	if _, err := c.Delete(ctx, collection, id); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, collection, id, json.RawMessage(`{"a": 2}`), client.WriteOptions{}); !client.IsCode(err, client.CodeDeleted) {
		t.Fatalf("PUT of a deleted record = %v, want deleted", err)
	}
	if _, err := c.MergePatch(ctx, collection, id, json.RawMessage(`{"a": 2}`), client.WriteOptions{}); !client.IsCode(err, client.CodeDeleted) {
		t.Fatalf("PATCH of a deleted record = %v, want deleted", err)
	}
}

// raw sends a request as c would, with any Content-Type and body, and
// returns the status and the error code.
func raw(t *testing.T, c *client.Client, method, path, ctype, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxOf(t), method, strings.TrimRight(c.BaseURL, "/")+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, e.Error.Code
}

// Restore: back to an old version in one change, which another replica
// syncs; restoring to the current heads changes nothing; restoring a
// version from before a delete undeletes.
func Restore(t *testing.T, c *client.Client, collection string) {
	ctx := ctxOf(t)
	id := "restore-" + suffix()
	old := `{"title": "first draft", "n": 1, "l": [1, 2, 3]}`
	v1, err := c.Put(ctx, collection, id, json.RawMessage(old), client.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other := client.NewReplica(c, collection, id)
	if err := other.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, collection, id, json.RawMessage(`{"title": "second draft, longer", "l": [3, 4], "x": true}`), client.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	rec, err := c.Restore(ctx, collection, id, v1.Heads, client.WriteOptions{})
	if err != nil || !same(t, rec.Doc, old) {
		t.Fatalf("restore = %+v, %v; want %s", rec, err, old)
	}
	// A third replica, and one that knew the first version, both sync it.
	third := client.NewReplica(c, collection, id)
	for _, r := range []*client.Replica{third, other} {
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if s, err := r.Doc().Path("title").Text().Get(); err != nil || s != "first draft" {
			t.Fatalf("replica after restore: title %q, %v", s, err)
		}
		if !sameSet(r.Heads(), rec.Heads) {
			t.Fatalf("replica heads %v, server %v", r.Heads(), rec.Heads)
		}
	}
	again, err := c.Restore(ctx, collection, id, rec.Heads, client.WriteOptions{})
	if err != nil || !slices.Equal(again.Heads, rec.Heads) {
		t.Fatalf("restore to the current heads moved them: %v → %v (%v)", rec.Heads, again.Heads, err)
	}

	if _, err := c.Delete(ctx, collection, id); err != nil {
		t.Fatal(err)
	}
	rec, err = c.Restore(ctx, collection, id, v1.Heads, client.WriteOptions{})
	if err != nil || rec.Deleted || !same(t, rec.Doc, old) {
		t.Fatalf("restore from before the delete = %+v, %v", rec, err)
	}
	mustGet(t, c, collection, id, old)
}

// Conflicts: two replicas set one key concurrently; the view lists both
// values, the shown one first, with the changes that wrote them; writing
// the key resolves it.
func Conflicts(t *testing.T, c *client.Client, collection string) {
	ctx := ctxOf(t)
	id := "conflicts-" + suffix()
	if _, err := c.Put(ctx, collection, id, json.RawMessage(`{"k": 0, "other": 1}`), client.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	rec, err := c.GetWith(ctx, collection, id, client.GetOptions{Conflicts: true})
	if err != nil || rec.Conflicts == nil || len(rec.Conflicts) != 0 {
		t.Fatalf("conflicts of a record without any = %+v, %v; want []", rec, err)
	}
	a, b := client.NewReplica(c, collection, id), client.NewReplica(c, collection, id)
	var hashes []string
	for i, r := range []*client.Replica{a, b} {
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if err := r.Doc().Path("k").Set(int64(i + 1)); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Doc().Commit("set k"); err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, r.Heads()[0])
	}
	for _, r := range []*client.Replica{a, b} {
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rec, err = c.GetWith(ctx, collection, id, client.GetOptions{Conflicts: true})
	if err != nil || len(rec.Conflicts) != 1 {
		t.Fatalf("conflicts = %+v, %v; want one", rec, err)
	}
	cf := rec.Conflicts[0]
	var doc struct{ K json.RawMessage }
	_ = json.Unmarshal(rec.Doc, &doc)
	if len(cf.Path) != 1 || cf.Path[0] != "k" || len(cf.Values) != 2 || !same(t, cf.Values[0].Value, string(doc.K)) {
		t.Fatalf("conflict %+v, doc %s: want path [k], two values, the shown one first", cf, rec.Doc)
	}
	got := []string{cf.Values[0].Hash, cf.Values[1].Hash}
	if !sameSet(got, hashes) || cf.Values[0].By != nil {
		t.Fatalf("conflict hashes %v by %v, want the replicas' changes %v, by null", got, cf.Values[0].By, hashes)
	}
	if _, err := c.MergePatch(ctx, collection, id, json.RawMessage(`{"k": `+string(doc.K)+`}`), client.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if rec, err = c.GetWith(ctx, collection, id, client.GetOptions{Conflicts: true}); err != nil || len(rec.Conflicts) != 0 {
		t.Fatalf("conflicts after writing the key = %+v, %v; want none", rec.Conflicts, err)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// suffix makes record ids unique across runs on a shared table.
func suffix() string { return time.Now().Format("150405.000000000")[7:] + "x" }
