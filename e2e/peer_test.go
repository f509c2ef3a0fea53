package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/automerge/automerge-go"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/store"
)

// The tests keep their own replicas on purpose instead of client.Replica:
// they need to send pushes the well-behaved Replica never sends (duplicates,
// a later change before an earlier one), and they must know exactly which
// changes each 200 acknowledged.

// replica is one client's copy of one record.
type replica struct {
	key store.Key
	doc *automerge.Doc
	// server is what this replica knows the server holds: the heads of the
	// last successful answer. Every change since them is pushed next time.
	server []automerge.ChangeHash
	// acked are pushes the server acknowledged, kept to resend as duplicates.
	acked [][]byte
}

func newReplica(tb testing.TB, key store.Key, actor string) *replica {
	tb.Helper()
	d := automerge.New()
	if err := d.SetActorID(actor); err != nil {
		tb.Fatalf("SetActorID(%q): %v", actor, err)
	}
	return &replica{key: key, doc: d}
}

// ackLog records every change hash a 200 acknowledged, per record.
type ackLog struct {
	mu sync.Mutex
	m  map[store.Key]map[automerge.ChangeHash]bool
}

func newAckLog() *ackLog { return &ackLog{m: map[store.Key]map[automerge.ChangeHash]bool{}} }

func (a *ackLog) add(key store.Key, changes []*automerge.Change) {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := a.m[key]
	if m == nil {
		m = map[automerge.ChangeHash]bool{}
		a.m[key] = m
	}
	for _, c := range changes {
		m[c.Hash()] = true
	}
}

func (a *ackLog) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, m := range a.m {
		n += len(m)
	}
	return n
}

// missing returns the acknowledged changes of key that d lacks.
func (a *ackLog) missing(key store.Key, d *automerge.Doc) []automerge.ChangeHash {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []automerge.ChangeHash
	for h := range a.m[key] {
		if _, err := d.Change(h); err != nil {
			out = append(out, h)
		}
	}
	return out
}

// Sizes of the text edits: a paste is thousands of characters, as a pasted
// page is; a range deletion removes up to a few thousand. Pastes are rare
// (one edit in pasteOdds × 8): every replica of a record applies each one
// through automerge-go, about 2 µs a character, which would otherwise make
// the test's cost all pastes.
const (
	pasteMin    = 1000
	pasteMax    = 4000
	pasteOdds   = 10
	rangeDelMax = 3000
)

// edit makes one random local edit and commits it: map fields, list inserts
// and deletes, text splices, large pastes and range deletions, counters.
// Each kind lives under its own key so that concurrent edits never fight
// over a key's type.
func (r *replica) edit(tb testing.TB, rng *rand.Rand) {
	tb.Helper()
	root := r.doc.RootMap()
	var err error
	switch rng.IntN(8) {
	case 0: // map field, a few keys so that replicas conflict on them
		err = root.Set(fmt.Sprintf("f%d", rng.IntN(4)), fmt.Sprintf("v%d", rng.IntN(1000)))
	case 1: // nested map
		err = r.doc.Path("m", fmt.Sprintf("k%d", rng.IntN(4))).Set(int64(rng.IntN(100)))
	case 2: // counter
		var v *automerge.Value
		if v, err = root.Get("count"); err == nil {
			if v.Kind() == automerge.KindCounter {
				err = v.Counter().Inc(int64(rng.IntN(5) + 1))
			} else {
				err = root.Set("count", automerge.NewCounter(int64(rng.IntN(5))))
			}
		}
	case 3, 4: // list insert or delete
		// Objects are looked up (or created) explicitly: automerge-go's
		// path-based List and Text dereference nil on some operations.
		var l *automerge.List
		if l, err = r.list(root, "items"); err == nil {
			n := l.Len()
			if n > 0 && rng.IntN(3) == 0 {
				err = l.Delete(rng.IntN(n))
			} else {
				err = l.Insert(rng.IntN(n+1), fmt.Sprintf("i%d", rng.IntN(1000)))
			}
		}
	case 5: // text splice
		var t *automerge.Text
		if t, err = r.text(root, "body"); err == nil {
			n := t.Len()
			pos := rng.IntN(n + 1)
			del := 0
			if n > pos && rng.IntN(3) == 0 {
				del = rng.IntN(min(n-pos, 5)) + 1
			}
			err = t.Splice(pos, del, string(rune('a'+rng.IntN(26)))+"x")
		}
	case 6: // a large paste, or typing a word
		var t *automerge.Text
		if t, err = r.text(root, "body"); err == nil {
			n := 1 + rng.IntN(8)
			if rng.IntN(pasteOdds) == 0 {
				n = pasteMin + rng.IntN(pasteMax-pasteMin+1)
			}
			err = t.Insert(rng.IntN(t.Len()+1), randomText(rng, n))
		}
	case 7: // a range deletion (a small splice on an empty text)
		var t *automerge.Text
		if t, err = r.text(root, "body"); err == nil {
			n := t.Len()
			if n == 0 {
				err = t.Insert(0, "y")
				break
			}
			pos := rng.IntN(n)
			err = t.Delete(pos, 1+rng.IntN(min(n-pos, rangeDelMax)))
		}
	}
	if err != nil {
		tb.Fatalf("%s: edit: %v", r.key, err)
	}
	// An edit may be a no-op (a value set to what it was); the empty change
	// it then commits is a legal change all the same.
	if _, err := r.doc.Commit("edit", automerge.CommitOptions{AllowEmpty: true}); err != nil {
		tb.Fatalf("%s: commit: %v", r.key, err)
	}
}

// randomText returns n characters of words, as typed or pasted prose.
func randomText(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		if rng.IntN(6) == 0 {
			b[i] = ' '
		} else {
			b[i] = byte('a' + rng.IntN(26))
		}
	}
	return string(b)
}

// list returns the list at root[key], creating it if there is none.
func (r *replica) list(root *automerge.Map, key string) (*automerge.List, error) {
	v, err := root.Get(key)
	if err != nil {
		return nil, err
	}
	if v.Kind() == automerge.KindList {
		return v.List(), nil
	}
	if err := root.Set(key, automerge.NewList()); err != nil {
		return nil, err
	}
	if v, err = root.Get(key); err != nil {
		return nil, err
	}
	return v.List(), nil
}

// text returns the text at root[key], creating it if there is none.
func (r *replica) text(root *automerge.Map, key string) (*automerge.Text, error) {
	v, err := root.Get(key)
	if err != nil {
		return nil, err
	}
	if v.Kind() == automerge.KindText {
		return v.Text(), nil
	}
	if err := root.Set(key, automerge.NewText("")); err != nil {
		return nil, err
	}
	if v, err = root.Get(key); err != nil {
		return nil, err
	}
	return v.Text(), nil
}

// pending returns the local changes the server may lack.
func (r *replica) pending(tb testing.TB) []*automerge.Change {
	tb.Helper()
	cs, err := r.doc.Changes(r.server...)
	if err != nil {
		tb.Fatalf("%s: Changes(%v): %v", r.key, r.server, err)
	}
	return cs
}

// push sends changes (nil: pending ones) with the replica's heads, applies
// the answer and records the acknowledgement. It returns the per-document
// error, and an error for the whole request.
func (r *replica) push(ctx context.Context, tb testing.TB, c *client.Client, acks *ackLog, changes []*automerge.Change) (*client.Error, error) {
	tb.Helper()
	raw := automerge.SaveChanges(changes)
	res, err := c.Sync(ctx, []client.Doc{{
		Collection: r.key.Collection, ID: r.key.ID,
		Have: hashStrings(r.doc.Heads()), Changes: raw,
	}})
	if err != nil {
		return nil, err
	}
	if len(res) != 1 {
		tb.Fatalf("%s: sync answered %d docs, want 1", r.key, len(res))
	}
	return r.apply(tb, res[0], changes, raw, acks), nil
}

// apply takes in one answer to a push of changes (raw); see push.
func (r *replica) apply(tb testing.TB, res client.DocResult, changes []*automerge.Change, raw []byte, acks *ackLog) *client.Error {
	tb.Helper()
	if res.Collection != r.key.Collection || res.ID != r.key.ID {
		tb.Fatalf("%s: answer for %s/%s", r.key, res.Collection, res.ID)
	}
	if res.Err != nil {
		return res.Err
	}
	if len(changes) > 0 {
		acks.add(r.key, changes)
		r.acked = append(r.acked, raw)
	}
	// The server's bytes are trusted here: this server accepted them.
	if len(res.Changes) > 0 {
		if err := r.doc.LoadIncremental(res.Changes); err != nil {
			tb.Fatalf("%s: LoadIncremental(answer): %v", r.key, err)
		}
	}
	heads, err := parseHashes(res.Heads)
	if err != nil {
		tb.Fatalf("%s: answer heads: %v", r.key, err)
	}
	for _, h := range heads {
		if _, err := r.doc.Change(h); err != nil {
			tb.Fatalf("%s: after applying the answer the replica lacks server head %s", r.key, h)
		}
	}
	r.server = heads
	return nil
}

// sync pushes the pending changes; on missing_deps it resends the whole
// history, which the protocol says is always accepted.
func (r *replica) sync(ctx context.Context, tb testing.TB, c *client.Client, acks *ackLog) error {
	tb.Helper()
	e, err := r.push(ctx, tb, c, acks, r.pending(tb))
	if err != nil {
		return err
	}
	if e != nil && e.Code == "missing_deps" {
		all, cerr := r.doc.Changes()
		if cerr != nil {
			tb.Fatalf("%s: Changes(): %v", r.key, cerr)
		}
		e, err = r.push(ctx, tb, c, acks, all)
	}
	if err != nil {
		return err
	}
	if e != nil {
		return e
	}
	return nil
}

func hashStrings(hs []automerge.ChangeHash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	slices.Sort(out)
	return out
}

func parseHashes(ss []string) ([]automerge.ChangeHash, error) {
	out := make([]automerge.ChangeHash, 0, len(ss))
	for _, s := range ss {
		h, err := automerge.NewChangeHash(s)
		if err != nil {
			return nil, fmt.Errorf("hash %q: %w", s, err)
		}
		out = append(out, h)
	}
	return out, nil
}

// sortedHeads returns hex heads, sorted.
func sortedHeads(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return out
}

// docJSON is the plain-JSON view of an automerge-go document, computed
// independently of the server (text as strings, counters as numbers), and
// decoded into generic values so that two views compare with DeepEqual.
func docJSON(tb testing.TB, d *automerge.Doc) any {
	tb.Helper()
	b, err := json.Marshal(d.Root().Interface())
	if err != nil {
		tb.Fatalf("marshal doc: %v", err)
	}
	return decodeJSON(tb, b)
}

func decodeJSON(tb testing.TB, b []byte) any {
	tb.Helper()
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&v); err != nil {
		tb.Fatalf("decode JSON %.200q: %v", b, err)
	}
	return v
}

func jsonEqual(a, b any) bool { return reflect.DeepEqual(a, b) }

func compact(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 400 {
		return string(b[:400]) + "…"
	}
	return string(b)
}

// loadStored rebuilds a record's document from the store alone: snapshot,
// then every log entry after it.
func loadStored(ctx context.Context, tb testing.TB, st store.Store, key store.Key) *automerge.Doc {
	tb.Helper()
	rec, err := st.Load(ctx, key)
	if err != nil {
		tb.Fatalf("store Load %s: %v", key, err)
	}
	d := automerge.New()
	if rec.Snapshot != nil {
		if d, err = automerge.Load(rec.Snapshot.Data); err != nil {
			tb.Fatalf("%s: load snapshot at seq %d: %v", key, rec.Snapshot.Seq, err)
		}
	}
	next := uint64(1)
	if rec.Snapshot != nil {
		next = rec.Snapshot.Seq + 1
	}
	for _, e := range rec.Entries {
		if e.Seq != next {
			tb.Errorf("%s: log entry seq %d, want %d (gap-free)", key, e.Seq, next)
		}
		next = e.Seq + 1
		if _, err := splitChunks(e.Changes); err != nil {
			tb.Errorf("%s: log entry %d: %v", key, e.Seq, err)
		}
		if err := d.LoadIncremental(e.Changes); err != nil {
			tb.Fatalf("%s: load log entry %d: %v", key, e.Seq, err)
		}
	}
	if got, want := next-1, rec.Seq; got != want {
		tb.Errorf("%s: Record.Seq=%d, last entry %d", key, want, got)
	}
	return d
}

// newRand returns a generator seeded from the -seed flag (or a fixed seed)
// and stream, for tests whose randomness only shapes the load.
func newRand(stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(*flagSeed, stream))
}
