package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/automerge/automerge-go"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/protocol"
)

// stubSync is a trusting in-memory sync server, one automerge-go document
// per record, enough to test Replica's side of the protocol.
type stubSync struct {
	mu      sync.Mutex
	docs    map[string]*automerge.Doc
	pushed  []int // number of change chunks in each push
	missing int   // answer missing_deps to this many coming pushes
	refuse  string
}

func newStubSync(tb testing.TB) (*stubSync, *Client) {
	s := &stubSync{docs: map[string]*automerge.Doc{}}
	return s, stubServer(tb, s.serve)
}

func (s *stubSync) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var in protocol.SyncRequest
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	out := protocol.SyncResponse{Docs: make([]protocol.SyncResult, len(in.Docs))}
	for i, d := range in.Docs {
		key := d.Collection + "/" + d.ID
		doc := s.docs[key]
		if doc == nil {
			doc = automerge.New()
			s.docs[key] = doc
		}
		out.Docs[i] = protocol.SyncResult{Collection: d.Collection, ID: d.ID}
		raw, _ := base64.StdEncoding.DecodeString(d.Changes)
		if len(raw) > 0 {
			chunks, err := crdt.Split(raw)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			switch {
			case d.ID == s.refuse:
				out.Docs[i].Error = &protocol.ErrorDetail{Code: CodeInvalidChange, Message: "refused"}
				out.Docs[i].Heads = hexHeads(doc.Heads())
				continue
			case s.missing > 0:
				s.missing--
				out.Docs[i].Error = &protocol.ErrorDetail{Code: CodeMissingDeps, Message: "resend"}
				out.Docs[i].Heads = hexHeads(doc.Heads())
				continue
			}
			s.pushed = append(s.pushed, len(chunks))
			if err := doc.LoadIncremental(raw); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
		}
		var have []automerge.ChangeHash
		known := true
		for _, h := range d.Have {
			ch, _ := automerge.NewChangeHash(h)
			if _, err := doc.Change(ch); err != nil {
				known = false
			}
			have = append(have, ch)
		}
		if !known {
			have = nil
		}
		changes, err := doc.Changes(have...)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		out.Docs[i].Heads = hexHeads(doc.Heads())
		if b := automerge.SaveChanges(changes); len(b) > 0 {
			out.Docs[i].Changes = base64.StdEncoding.EncodeToString(b)
		}
	}
	_ = json.NewEncoder(w).Encode(out)
}

func set(tb testing.TB, r *Replica, key string, val any) {
	tb.Helper()
	if err := r.Doc().Path(key).Set(val); err != nil {
		tb.Fatalf("Set: %v", err)
	}
	if _, err := r.Doc().Commit("set " + key); err != nil {
		tb.Fatalf("Commit: %v", err)
	}
}

func sameHeads(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestReplicaConverges(t *testing.T) {
	s, c := newStubSync(t)
	ctx := context.Background()
	a, b := NewReplica(c, "notes", "n1"), NewReplica(c, "notes", "n1")
	set(t, a, "x", 1)
	set(t, a, "y", 2)
	if err := a.Sync(ctx); err != nil {
		t.Fatalf("a.Sync: %v", err)
	}
	set(t, b, "z", 3) // offline, concurrent
	if err := b.Sync(ctx); err != nil {
		t.Fatalf("b.Sync: %v", err)
	}
	if err := a.Sync(ctx); err != nil {
		t.Fatalf("a.Sync: %v", err)
	}
	if !sameHeads(a.Heads(), b.Heads()) || !sameHeads(a.Heads(), a.ServerHeads()) {
		t.Fatalf("heads a=%v b=%v server=%v", a.Heads(), b.Heads(), a.ServerHeads())
	}
	for _, r := range []*Replica{a, b} {
		m := r.Doc().RootMap()
		for k, want := range map[string]string{"x": "1", "y": "2", "z": "3"} {
			v, err := m.Get(k)
			if err != nil || fmt.Sprint(v.Interface()) != want {
				t.Fatalf("%s=%v (%v), want %s", k, v, err, want)
			}
		}
	}
	// The second push of a carried nothing; b's carried only its one change.
	if got, want := s.pushed, []int{2, 1}; !slices.Equal(got, want) {
		t.Fatalf("changes per push %v, want %v", got, want)
	}
	set(t, a, "x", 10)
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := s.pushed[len(s.pushed)-1], 1; got != want {
		t.Fatalf("incremental push carried %d changes, want %d", got, want)
	}
}

func TestReplicaMissingDepsResendsHistory(t *testing.T) {
	s, c := newStubSync(t)
	ctx := context.Background()
	a := NewReplica(c, "notes", "n1")
	set(t, a, "x", 1)
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	set(t, a, "y", 2)
	set(t, a, "z", 3)
	s.missing = 1
	if err := a.Sync(ctx); err != nil {
		t.Fatalf("Sync after missing_deps: %v", err)
	}
	if got, want := s.pushed, []int{1, 3}; !slices.Equal(got, want) {
		t.Fatalf("changes per push %v, want %v (the retry carries the whole history)", got, want)
	}
	if !sameHeads(a.Heads(), a.ServerHeads()) {
		t.Fatalf("heads %v, server heads %v", a.Heads(), a.ServerHeads())
	}
}

func TestSyncAllErrors(t *testing.T) {
	s, c := newStubSync(t)
	ctx := context.Background()
	a, b := NewReplica(c, "notes", "ok"), NewReplica(c, "notes", "bad")
	set(t, a, "x", 1)
	set(t, b, "x", 1)
	s.refuse = "bad"
	err := SyncAll(ctx, c, []*Replica{a, b})
	if !IsCode(err, CodeInvalidChange) {
		t.Fatalf("SyncAll=%v, want a wrapped invalid_change", err)
	}
	if !sameHeads(a.ServerHeads(), a.Heads()) {
		t.Fatalf("the good replica did not sync: %v vs %v", a.ServerHeads(), a.Heads())
	}
	if len(b.ServerHeads()) != 0 {
		t.Fatalf("the refused replica has server heads %v", b.ServerHeads())
	}
	if err := SyncAll(ctx, c, []*Replica{a, a}); err == nil {
		t.Fatal("SyncAll accepted the same replica twice")
	}
	if err := SyncAll(ctx, c, nil); err != nil {
		t.Fatalf("SyncAll of nothing: %v", err)
	}
}

func TestReplicaWholeRequestError(t *testing.T) {
	c := stubServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":{"code":"unavailable","message":"later"}}`))
	})
	r := NewReplica(c, "notes", "n")
	set(t, r, "x", 1)
	err := r.Sync(context.Background())
	var e *Error
	if !errors.As(err, &e) || e.Status != 503 || !e.Temporary() {
		t.Fatalf("Sync=%v, want a temporary 503 *Error", err)
	}
	if len(r.ServerHeads()) != 0 {
		t.Fatal("a failed sync moved the acknowledged heads")
	}
}

// commit edits key through the replica's Commit, so that it is tracked.
func commit(tb testing.TB, r *Replica, key string, val any) *automerge.Change {
	tb.Helper()
	if err := r.Doc().Path(key).Set(val); err != nil {
		tb.Fatalf("Set: %v", err)
	}
	c, err := r.Commit("set " + key)
	if err != nil || c == nil {
		tb.Fatalf("Commit = %v, %v", c, err)
	}
	return c
}

// TestReplicaPushesWhatItTracked: changes made through Commit are pushed
// as they were taken, and one committed behind the replica's back (on
// Doc() directly, before or between tracked ones) is still pushed.
func TestReplicaPushesWhatItTracked(t *testing.T) {
	s, c := newStubSync(t)
	ctx := context.Background()
	a := NewReplica(c, "notes", "lean")
	commit(t, a, "x", 1)
	commit(t, a, "y", 2)
	if got := a.Pending(); got != 2 {
		t.Fatalf("Pending()=%d, want 2", got)
	}
	if c, err := a.Commit("nothing"); c != nil || err != nil {
		t.Fatalf("Commit with no edits = %v, %v; want nil, nil", c, err)
	}
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := a.LastSync(); got.Pushed != 2 || a.Pending() != 0 {
		t.Fatalf("LastSync()=%+v, Pending()=%d; want 2 pushed, 0 pending", got, a.Pending())
	}

	set(t, a, "z", 3)    // behind the replica's back
	commit(t, a, "w", 4) // tracked, on top of it
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := s.pushed[len(s.pushed)-1], 2; got != want {
		t.Fatalf("push after an untracked commit carried %d changes, want %d", got, want)
	}
	fresh := NewReplica(c, "notes", "lean")
	if err := fresh.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !sameHeads(fresh.Heads(), a.Heads()) {
		t.Fatalf("fresh replica at %v, writer at %v", fresh.Heads(), a.Heads())
	}
	commit(t, a, "v", 5)
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := s.pushed[len(s.pushed)-1], 1; got != want {
		t.Fatalf("tracked push after the fallback carried %d changes, want %d", got, want)
	}
}

// TestReplicaPushForkApply: Push sends without merging, and a later Sync
// catches up; a fork edits as a new actor; Apply takes in server changes
// without making the next push walk the history.
func TestReplicaPushForkApply(t *testing.T) {
	s, c := newStubSync(t)
	ctx := context.Background()
	a := NewReplica(c, "notes", "push")
	commit(t, a, "x", 1)
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := a.Fork(c)
	if err != nil {
		t.Fatal(err)
	}
	commit(t, b, "y", 2)
	if err := b.Push(ctx); err != nil {
		t.Fatal(err)
	}
	commit(t, a, "z", 3)
	if err := a.Push(ctx); err != nil {
		t.Fatal(err)
	}
	if got := a.LastSync().Pulled; len(got) == 0 {
		t.Fatal("the server sent a pushing replica nothing of b's change")
	}
	if v, _ := a.Doc().RootMap().Get("y"); v.Kind() != automerge.KindVoid {
		t.Fatalf("Push merged the server's answer: y=%v", v)
	}
	if len(a.ServerHeads()) != 2 || sameHeads(a.ServerHeads(), a.Heads()) {
		t.Fatalf("server heads %v, local %v: want the server's two concurrent heads, beyond the local one", a.ServerHeads(), a.Heads())
	}
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := a.Doc().RootMap().Get("y"); fmt.Sprint(v.Interface()) != "2" {
		t.Fatalf("after Sync y=%v, want 2", v)
	}

	// b applies what a pushed from elsewhere (as from an event), then
	// commits: the next push carries only its own change.
	all, err := a.Doc().Changes()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Apply(automerge.SaveChanges(all)); err != nil {
		t.Fatal(err)
	}
	commit(t, b, "u", 4)
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := s.pushed[len(s.pushed)-1], 1; got != want {
		t.Fatalf("push after Apply carried %d changes, want %d", got, want)
	}
	if !sameHeads(b.Heads(), b.ServerHeads()) {
		t.Fatalf("b at %v, server at %v", b.Heads(), b.ServerHeads())
	}
}
