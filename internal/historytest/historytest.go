// Package historytest is PROTOCOL.md's history endpoint and attribution
// ("by", "at") as one scenario that runs on any store, so the bbolt tests
// (server) and the DynamoDB Local tests (store/dynamo/integration) check
// the same cases: two users pushing and a third deleting, a re-push that
// keeps the first attribution, paging while changes arrive, compaction and
// a process restart.
package historytest

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/internal/testutil"
	"github.com/dynamerge/dynamerge/internal/textgen"
	"github.com/dynamerge/dynamerge/server"
	"github.com/dynamerge/dynamerge/store"
)

// secret signs the scenario's tokens (test code only).
var secret = []byte("historytest-secret-0123456789abcdef")

// Collection is the collection the scenario writes.
const Collection = "notes"

// compactEvery is small, so that the scenario's changes are compacted
// several times: attribution must survive it.
const compactEvery = 8

// Run runs the scenario on st (a fresh store, or one no other test writes
// Collection of).
func Run(t *testing.T, st store.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	auth, err := server.NewTokenAuth(server.TokenAuthConfig{HS256Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	s := testutil.Start(t, st, engine.Options{CompactEvery: compactEvery}, server.Options{Authorizer: auth})
	alice, bob, carol := as(t, s, "alice", "rw"), as(t, s, "bob", "rw"), as(t, s, "carol", "rw")
	reader := as(t, s, "rita", "r")

	// alice creates the text and types; bob, synced, types after her.
	ws := textgen.NewWriters(2, "text")
	a, b := ws[0], ws[1]
	start := time.Now().Add(-time.Second) // clocks of the store's process: same machine
	first := []crdt.Change{a.Create(), a.Type("hello")}
	push(ctx, t, alice, "doc", first...)
	b.Merge(a)
	bobs := b.Type(" world")
	bobHeads := push(ctx, t, bob, "doc", bobs)
	// bob pushes alice's changes again (a retry, or a second device): they
	// stay hers, with their first time.
	time.Sleep(5 * time.Millisecond)
	push(ctx, t, bob, "doc", first...)
	if _, err := carol.Delete(ctx, Collection, "doc"); err != nil {
		t.Fatalf("DELETE as carol: %v", err)
	}
	end := time.Now().Add(time.Second)

	page, err := reader.History(ctx, Collection, "doc", "", 0)
	if err != nil {
		t.Fatalf("history as a reader: %v", err)
	}
	if got, want := len(page.Changes), 4; got != want || page.More {
		t.Fatalf("history: %d changes (more %v), want %d and no more", got, page.More, want)
	}
	wantBy := []string{"carol", "bob", "alice", "alice"}
	wantHash := []string{"", bobs.Hash.String(), first[1].Hash.String(), first[0].Hash.String()}
	for i, ch := range page.Changes {
		if ch.By == nil || *ch.By != wantBy[i] {
			t.Fatalf("change %d by %v, want %s (%+v)", i, ch.By, wantBy[i], ch)
		}
		if wantHash[i] != "" && ch.Hash != wantHash[i] {
			t.Fatalf("change %d is %s, want %s (newest first)", i, ch.Hash, wantHash[i])
		}
		if ch.At.Before(start) || ch.At.After(end) {
			t.Fatalf("change %d accepted at %v, not between %v and %v", i, ch.At, start, end)
		}
		if i > 0 && ch.At.After(page.Changes[i-1].At) {
			t.Fatalf("change %d accepted at %v, after the newer change %d at %v", i, ch.At, i-1, page.Changes[i-1].At)
		}
	}
	if c := page.Changes[2]; c.Seq != 2 || c.Ops != 5 || len(c.Deps) != 1 || c.Deps[0] != first[0].Hash.String() || c.Message != nil {
		t.Fatalf("alice's typing = %+v, want seq 2, 5 ops, deps [create], no message", c)
	}
	if !page.Changes[2].At.Equal(page.Changes[3].At) {
		t.Fatalf("alice's two changes, pushed together, accepted at %v and %v", page.Changes[2].At, page.Changes[3].At)
	}
	firstPage := page.Changes

	// Many more changes, by alice and bob in turns, compacted on the way.
	if _, err := carol.Undelete(ctx, Collection, "doc"); err != nil {
		t.Fatal(err)
	}
	// Both writers take in carol's two changes.
	heads := pull(ctx, t, alice, "doc", bobHeads, a, b)
	for i := range 30 {
		w, other, c := a, b, alice
		if i%2 == 1 {
			w, other, c = b, a, bob
		}
		follow(w, other, heads)
		heads = push(ctx, t, c, "doc", w.Type("."))
	}
	waitCompacted(t, s)
	all := readAll(ctx, t, reader, "doc", 7, nil)
	if got, want := len(all), 4+1+30; got != want {
		t.Fatalf("history has %d changes, want %d", got, want)
	}
	for i := range 30 {
		want := "alice"
		if (29-i)%2 == 1 {
			want = "bob"
		}
		if by := all[i].By; by == nil || *by != want {
			t.Fatalf("change %d (newest first) by %v, want %s", i, by, want)
		}
	}
	if by := all[30].By; by == nil || *by != "carol" {
		t.Fatalf("the undelete is by %v, want carol", by)
	}
	same(t, "after compaction, the oldest changes", all[31:], firstPage)

	// Paging is stable while changes arrive: a page read after them
	// continues where the last one ended.
	p1, err := reader.History(ctx, Collection, "doc", "", 10)
	if err != nil || len(p1.Changes) != 10 || !p1.More {
		t.Fatalf("page 1: %d changes, more %v, %v", len(p1.Changes), p1.More, err)
	}
	for range 3 {
		follow(a, b, heads)
		heads = push(ctx, t, alice, "doc", a.Type("!"))
	}
	rest := readAll(ctx, t, reader, "doc", 10, &p1.Cursor)
	same(t, "the pages after new changes arrived", append(slices.Clone(p1.Changes), rest...), all)
	if _, err := reader.History(ctx, Collection, "doc", "not-a-cursor", 10); !client.IsCode(err, client.CodeBadRequest) {
		t.Fatalf("history with a bad cursor = %v, want bad_request", err)
	}
	if _, err := reader.History(ctx, Collection, "never-written", "", 0); !client.IsCode(err, client.CodeNotFound) {
		t.Fatalf("history of a record never written = %v, want not_found", err)
	}
	if _, err := as(t, s, "olga", "").History(ctx, Collection, "doc", "", 0); !client.IsCode(err, client.CodeForbidden) {
		t.Fatalf("history without read access = %v, want forbidden", err)
	}

	restWritesAndConflicts(ctx, t, alice, bob, reader)

	// A restart (a new process: nothing hot) shows the same history.
	before := readAll(ctx, t, reader, "doc", 1000, nil)
	s.Restart()
	after := readAll(ctx, t, reader, "doc", 50, nil)
	same(t, "after a restart", after, before)
}

// restWritesAndConflicts: plain-JSON writes are their caller's, like
// pushes, and the conflicts view says who wrote each value.
func restWritesAndConflicts(ctx context.Context, t *testing.T, alice, bob, reader *client.Client) {
	t.Helper()
	if _, err := alice.Put(ctx, Collection, "rest", json.RawMessage(`{"title": "draft", "k": 0}`), client.WriteOptions{}); err != nil {
		t.Fatalf("PUT as alice: %v", err)
	}
	if _, err := bob.MergePatch(ctx, Collection, "rest", json.RawMessage(`{"title": "final"}`), client.WriteOptions{}); err != nil {
		t.Fatalf("PATCH as bob: %v", err)
	}
	page, err := reader.History(ctx, Collection, "rest", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var by []string
	for _, ch := range page.Changes {
		by = append(by, deref(ch.By))
	}
	if want := []string{"bob", "alice"}; !slices.Equal(by, want) {
		t.Fatalf("history of REST writes by %v, want %v", by, want)
	}

	// alice and bob, each from their own synced copy, set k at once.
	ra, rb := client.NewReplica(alice, Collection, "rest"), client.NewReplica(bob, Collection, "rest")
	for i, r := range []*client.Replica{ra, rb} {
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if err := r.Doc().Path("k").Set(int64(i + 1)); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Commit("set k"); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []*client.Replica{ra, rb} {
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rec, err := reader.GetWith(ctx, Collection, "rest", client.GetOptions{Conflicts: true})
	if err != nil || len(rec.Conflicts) != 1 || len(rec.Conflicts[0].Values) != 2 {
		t.Fatalf("conflicts = %+v, %v; want one, of two values", rec, err)
	}
	got := map[string]string{}
	for _, v := range rec.Conflicts[0].Values {
		got[string(v.Value)] = deref(v.By)
	}
	if want := map[string]string{"1": "alice", "2": "bob"}; !maps.Equal(got, want) {
		t.Fatalf("conflicting values by %v, want %v", got, want)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<null>"
	}
	return *s
}

// as returns a client of s with a token for sub, granted Collection with
// access ("r", "rw", or "" for none).
func as(t *testing.T, s *testutil.Stack, sub, access string) *client.Client {
	t.Helper()
	cols := map[string]any{}
	if access != "" {
		cols[Collection] = access
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": sub, "exp": time.Now().Add(time.Hour).Unix(), "collections": cols,
	}).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	c := s.NewClient()
	c.Token = tok
	return c
}

// push syncs changes to Collection/id and returns the record's heads.
func push(ctx context.Context, t *testing.T, c *client.Client, id string, changes ...crdt.Change) []string {
	t.Helper()
	res, err := c.Sync(ctx, []client.Doc{{Collection: Collection, ID: id, Changes: crdt.Join(changes)}})
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	if res[0].Err != nil {
		t.Fatalf("sync: %v", res[0].Err)
	}
	return res[0].Heads
}

// pull syncs Collection/id from have and lets the writers observe what
// came (changes the server made): their next changes build on it.
func pull(ctx context.Context, t *testing.T, c *client.Client, id string, have []string, ws ...*textgen.Writer) []string {
	t.Helper()
	res, err := c.Sync(ctx, []client.Doc{{Collection: Collection, ID: id, Have: have}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("pull: %v %v", err, res)
	}
	got, err := crdt.ParseChanges(res[0].Changes, crdt.Limits{})
	if err != nil {
		t.Fatalf("pulled changes: %v", err)
	}
	hs, err := crdt.ParseHashes(res[0].Heads)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		w.Observe(hs, got)
	}
	return res[0].Heads
}

// follow makes w's next change build on heads, after everything other
// made.
func follow(w, other *textgen.Writer, heads []string) {
	hs, _ := crdt.ParseHashes(heads)
	w.Merge(other)
	w.Observe(hs, nil)
}

// readAll pages through the history of Collection/id with page size limit,
// from *cursor when given, checking the paging contract on the way.
func readAll(ctx context.Context, t *testing.T, c *client.Client, id string, limit int, cursor *string) []client.HistoryChange {
	t.Helper()
	var all []client.HistoryChange
	cur := ""
	if cursor != nil {
		cur = *cursor
	}
	for pages := 0; ; pages++ {
		page, err := c.History(ctx, Collection, id, cur, limit)
		if err != nil {
			t.Fatalf("history before %q: %v", cur, err)
		}
		if len(page.Changes) > limit || (page.More && len(page.Changes) != limit) {
			t.Fatalf("page %d: %d changes (more %v), limit %d", pages, len(page.Changes), page.More, limit)
		}
		all = append(all, page.Changes...)
		if !page.More {
			break
		}
		cur = page.Cursor
	}
	// The iterator reads the same.
	if cursor == nil {
		i := 0
		for ch, err := range c.HistoryAll(ctx, Collection, id, limit) {
			if err != nil {
				t.Fatal(err)
			}
			if i >= len(all) || ch.Hash != all[i].Hash {
				t.Fatalf("HistoryAll differs from the pages at %d", i)
			}
			i++
		}
	}
	return all
}

// same fails unless two lists of changes are the same, by, at and all.
func same(t *testing.T, what string, got, want []client.HistoryChange) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d changes, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Hash != w.Hash || !g.At.Equal(w.At) || (g.By == nil) != (w.By == nil) || (g.By != nil && *g.By != *w.By) ||
			g.Seq != w.Seq || g.Ops != w.Ops || g.Actor != w.Actor || !slices.Equal(g.Deps, w.Deps) {
			t.Fatalf("%s: change %d = %+v, want %+v", what, i, g, w)
		}
	}
}

// waitCompacted waits until s's engine has compacted at least twice.
func waitCompacted(t *testing.T, s *testutil.Stack) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for s.Engine.Stats().Compactions < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no compaction after 30 s (%d)", s.Engine.Stats().Compactions)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
