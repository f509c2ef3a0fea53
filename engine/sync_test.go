package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/store"
)

func TestSync_PushPullRoundTrip(t *testing.T) {
	e, fs := newEngine(t, newBolt(t), Options{})
	key := todo("a")
	a, b := newReplica(), newReplica()

	// A pushes three changes at once; B, which has nothing, pulls them.
	var chunks []byte
	for _, k := range []string{"x", "y", "z"} {
		chunks = append(chunks, a.edit(t, k, k+"!")...)
	}
	res := a.push(t, e, key, chunks)
	if res.Err != nil {
		t.Fatalf("push: %v", res.Err)
	}
	if got, want := res.Heads, a.heads(); !slices.Equal(got, want) {
		t.Fatalf("push heads=%v, want %v", got, want)
	}
	if len(res.Changes) != 0 {
		t.Fatalf("push answered %d bytes of changes, want none (client has them all)", len(res.Changes))
	}
	pull := sync1(t, e, DocRequest{Key: key})
	if pull.Err != nil {
		t.Fatalf("pull: %v", pull.Err)
	}
	if !bytes.Equal(pull.Changes, chunks) {
		t.Fatalf("pull from nothing: got %d bytes, want the %d pushed", len(pull.Changes), len(chunks))
	}
	b.apply(t, pull.Changes)
	if got, want := b.heads(), a.heads(); !slices.Equal(got, want) {
		t.Fatalf("B heads=%v, want %v", got, want)
	}

	// A concurrent edit from B, then one from A: each side gets exactly the
	// other's change.
	cb := b.edit(t, "b", 1)
	ca := a.edit(t, "a", 2)
	if res := b.push(t, e, key, cb); res.Err != nil || len(res.Changes) != 0 {
		t.Fatalf("B push: err %v, %d bytes back", res.Err, len(res.Changes))
	}
	res = a.push(t, e, key, ca)
	if res.Err != nil {
		t.Fatalf("A push: %v", res.Err)
	}
	if !bytes.Equal(res.Changes, cb) {
		t.Fatalf("A got %d bytes, want B's change (%d bytes)", len(res.Changes), len(cb))
	}
	pull = sync1(t, e, DocRequest{Key: key, Have: b.heads()})
	if !bytes.Equal(pull.Changes, ca) {
		t.Fatalf("B got %d bytes, want A's change (%d bytes)", len(pull.Changes), len(ca))
	}
	b.apply(t, pull.Changes)
	if !slices.Equal(a.heads(), b.heads()) || !slices.Equal(pull.Heads, a.heads()) {
		t.Fatalf("not converged: A %v, B %v, server %v", a.heads(), b.heads(), pull.Heads)
	}
	if got, want := fs.appends.Load(), int64(3); got != want {
		t.Fatalf("store appends=%d, want %d", got, want)
	}
	// A pure pull of a record nobody wrote is empty, not an error.
	if res := sync1(t, e, DocRequest{Key: todo("nobody")}); res.Err != nil || len(res.Heads) != 0 || len(res.Changes) != 0 {
		t.Fatalf("pull of unknown record: %+v", res)
	}
}

func TestSync_RetryIsFree(t *testing.T) {
	e, fs := newEngine(t, newBolt(t), Options{})
	key := todo("retry")
	a := newReplica()
	c1 := a.edit(t, "x", 1)
	c2 := a.edit(t, "y", 2)
	first := sync1(t, e, DocRequest{Key: key, Changes: append(slices.Clone(c1), c2...)})
	if first.Err != nil {
		t.Fatalf("push: %v", first.Err)
	}
	// The same push again, and the same changes in reverse order with
	// duplicates: answered the same, nothing written.
	for _, changes := range [][]byte{append(slices.Clone(c1), c2...), append(append(slices.Clone(c2), c1...), c2...)} {
		again := sync1(t, e, DocRequest{Key: key, Changes: changes})
		if again.Err != nil {
			t.Fatalf("retry: %v", again.Err)
		}
		if !slices.Equal(again.Heads, first.Heads) || !bytes.Equal(again.Changes, first.Changes) {
			t.Fatalf("retry answered %v/%d bytes, first %v/%d bytes", again.Heads, len(again.Changes), first.Heads, len(first.Changes))
		}
	}
	if got, want := fs.appends.Load(), int64(1); got != want {
		t.Fatalf("store appends=%d, want %d", got, want)
	}
}

func TestSync_Refused(t *testing.T) {
	base := newReplica()
	c1 := base.edit(t, "x", 1)
	c2 := base.edit(t, "y", 2) // depends on c1
	big := newReplica().edit(t, "big", string(bytes.Repeat([]byte("b"), 4000)))
	garbage := slices.Clone(c1)
	garbage[len(garbage)-1] ^= 0xff

	for _, tc := range []struct {
		name    string
		opts    Options
		prepare []byte // pushed first, must succeed
		push    []byte
		want    error
	}{
		{"garbage", Options{}, nil, []byte("not automerge"), ErrInvalidChange},
		{"corrupted chunk", Options{}, nil, garbage, ErrInvalidChange},
		{"trailing bytes", Options{}, nil, append(slices.Clone(c1), 0), ErrInvalidChange},
		{"missing deps", Options{}, nil, c2, ErrMissingDeps},
		{"change too large", Options{MaxChangeBytes: 1000}, nil, big, ErrTooLarge},
		{"record too large", Options{MaxRecordBytes: 3000}, c1, big, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, fs := newEngine(t, newBolt(t), tc.opts)
			key := todo("refused")
			var wantHeads []crdt.Hash
			if tc.prepare != nil {
				res := sync1(t, e, DocRequest{Key: key, Changes: tc.prepare})
				if res.Err != nil {
					t.Fatalf("prepare: %v", res.Err)
				}
				wantHeads = res.Heads
			}
			before := fs.appends.Load()
			res := sync1(t, e, DocRequest{Key: key, Changes: tc.push})
			if !errors.Is(res.Err, tc.want) {
				t.Fatalf("Err=%v, want %v", res.Err, tc.want)
			}
			if got := fs.appends.Load(); got != before {
				t.Fatalf("a refused push was written (%d appends, before %d)", got, before)
			}
			pull := sync1(t, e, DocRequest{Key: key})
			if !slices.Equal(pull.Heads, wantHeads) {
				t.Fatalf("heads after refusal=%v, want %v", pull.Heads, wantHeads)
			}
		})
	}
}

// TestSync_BatchIsolation: one bad doc of a batch fails alone.
func TestSync_BatchIsolation(t *testing.T) {
	e, _ := newEngine(t, newBolt(t), Options{})
	a := newReplica()
	good := a.edit(t, "x", 1)
	orphan := a.edit(t, "y", 2)
	ctx := context.Background()
	res, err := e.Sync(ctx, []DocRequest{
		{Key: todo("good"), Changes: good},
		{Key: todo("bad"), Changes: []byte{1, 2, 3}},
		{Key: todo("orphan"), Changes: orphan},
		{Key: store.Key{Collection: "Bad Collection", ID: "x"}},
	})
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	for i, want := range []error{nil, ErrInvalidChange, ErrMissingDeps, store.ErrInvalidKey} {
		if got := res[i].Err; (want == nil) != (got == nil) || want != nil && !errors.Is(got, want) {
			t.Errorf("doc %d: Err=%v, want %v", i, got, want)
		}
	}
	if got, want := res[0].Heads, []crdt.Hash{mustHash(t, good)}; !slices.Equal(got, want) {
		t.Errorf("good heads=%v, want %v", got, want)
	}
}

func TestSync_StoreFailure(t *testing.T) {
	st := newBolt(t)
	e, fs := newEngine(t, st, Options{})
	key := todo("fail")
	a := newReplica()
	c1 := a.edit(t, "x", 1)
	if res := sync1(t, e, DocRequest{Key: key, Changes: c1}); res.Err != nil {
		t.Fatalf("push 1: %v", res.Err)
	}
	c2 := a.edit(t, "y", 2)
	fs.failNext.Store(1)
	res := sync1(t, e, DocRequest{Key: key, Changes: c2})
	if !errors.Is(res.Err, ErrUnavailable) {
		t.Fatalf("Err=%v, want ErrUnavailable", res.Err)
	}
	// Nothing half applied: the engine and the store still stand at c1.
	if got, want := sync1(t, e, DocRequest{Key: key}).Heads, []crdt.Hash{mustHash(t, c1)}; !slices.Equal(got, want) {
		t.Fatalf("heads after failure=%v, want %v", got, want)
	}
	if stored := storedHashes(t, e, key); len(stored) != 1 {
		t.Fatalf("store holds %d changes after failure, want 1", len(stored))
	}
	if got := e.Stats().StoreErrors; got == 0 {
		t.Fatalf("Stats.StoreErrors=0 after a failure")
	}
	// The client retries, and a following change lands on top.
	if res := sync1(t, e, DocRequest{Key: key, Changes: c2}); res.Err != nil {
		t.Fatalf("retry: %v", res.Err)
	}
	c3 := a.edit(t, "z", 3)
	res = sync1(t, e, DocRequest{Key: key, Changes: c3})
	if res.Err != nil {
		t.Fatalf("push 3: %v", res.Err)
	}
	if got, want := res.Heads, []crdt.Hash{mustHash(t, c3)}; !slices.Equal(got, want) {
		t.Fatalf("heads=%v, want %v", got, want)
	}
	if got, want := len(storedHashes(t, e, key)), 3; got != want {
		t.Fatalf("store holds %d changes, want %d", got, want)
	}
}

// TestSync_ConflictRetry runs two engines on one store, as two processes
// would: the second loses the race for a seq and must merge and retry.
func TestSync_ConflictRetry(t *testing.T) {
	st := newBolt(t)
	e1, _ := newEngine(t, st, Options{})
	e2, fs2 := newEngine(t, st, Options{})
	key := todo("shared")
	a, b := newReplica(), newReplica()

	if res := a.push(t, e1, key, a.edit(t, "a", 0)); res.Err != nil {
		t.Fatalf("e1 push: %v", res.Err)
	}
	// e2 loads the record (hot), then e1 writes again right before e2's
	// append, so e2's seq is taken.
	if res := sync1(t, e2, DocRequest{Key: key}); res.Err != nil {
		t.Fatalf("e2 pull: %v", res.Err)
	}
	cb := b.edit(t, "b", 1)
	racing := a.edit(t, "a", 1)
	var raced bool
	var raceErr error
	hook := func(store.Key, store.Entry) {
		// Runs on e2's writer goroutine: no t.Fatal here.
		if raced {
			return
		}
		raced = true
		res, err := e1.Sync(context.Background(), []DocRequest{{Key: key, Changes: racing}})
		if err == nil {
			err = res[0].Err
		}
		raceErr = err
	}
	fs2.before.Store(&hook)
	res := b.push(t, e2, key, cb)
	fs2.before.Store(nil)
	if raceErr != nil {
		t.Fatalf("e1 racing push: %v", raceErr)
	}
	if res.Err != nil {
		t.Fatalf("e2 push: %v", res.Err)
	}
	if got := e2.Stats().StoreConflicts; got != 1 {
		t.Fatalf("e2 conflicts=%d, want 1", got)
	}
	// Both engines serve the same three changes; both replicas converge.
	r1 := sync1(t, e1, DocRequest{Key: key, Have: a.heads()})
	a.apply(t, r1.Changes)
	r2 := sync1(t, e2, DocRequest{Key: key, Have: b.heads()})
	b.apply(t, r2.Changes)
	if !slices.Equal(r1.Heads, r2.Heads) || !slices.Equal(a.heads(), r1.Heads) || !slices.Equal(b.heads(), r1.Heads) {
		t.Fatalf("not converged: e1 %v e2 %v A %v B %v", r1.Heads, r2.Heads, a.heads(), b.heads())
	}
	if got := len(storedHashes(t, e1, key)); got != 3 {
		t.Fatalf("store holds %d changes, want 3", got)
	}
}

// TestSync_ConflictRetryUnderContention: a process that keeps losing the
// race for a hot record's next seq (another process writes it again just
// before each of its appends) still gets its push through, rather than
// answering 503 after a handful of losses.
func TestSync_ConflictRetryUnderContention(t *testing.T) {
	const losses = 12 // more than the 8 retries that used to end in 503
	st := newBolt(t)
	e1, _ := newEngine(t, st, Options{})
	e2, fs2 := newEngine(t, st, Options{})
	key := todo("contended")
	a, b := newReplica(), newReplica()
	if res := a.push(t, e1, key, a.edit(t, "a", 0)); res.Err != nil {
		t.Fatalf("e1 push: %v", res.Err)
	}
	var raced int
	var raceErr error
	hook := func(store.Key, store.Entry) {
		// Runs on e2's writer goroutine: no t.Fatal here.
		if raced == losses || raceErr != nil {
			return
		}
		raced++
		res, err := e1.Sync(context.Background(), []DocRequest{{Key: key, Changes: a.edit(t, "a", raced)}})
		if err == nil {
			err = res[0].Err
		}
		raceErr = err
	}
	fs2.before.Store(&hook)
	res := b.push(t, e2, key, b.edit(t, "b", 1))
	fs2.before.Store(nil)
	if raceErr != nil {
		t.Fatalf("e1 racing push: %v", raceErr)
	}
	if res.Err != nil {
		t.Fatalf("e2 push after %d lost races: %v", raced, res.Err)
	}
	if got := e2.Stats().StoreConflicts; got != losses {
		t.Errorf("e2 conflicts=%d, want %d", got, losses)
	}
	if got, want := len(storedHashes(t, e1, key)), losses+2; got != want {
		t.Fatalf("store holds %d changes, want %d", got, want)
	}
}

func TestSync_GroupCommit(t *testing.T) {
	for _, tc := range []struct {
		name     string
		noGroup  bool
		maxWrite int64
	}{
		{"grouped", false, 10},
		{"one write per push", true, 24},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, fs := newEngine(t, newBolt(t), Options{NoGroupCommit: tc.noGroup})
			fs.delay.Store(int64(5 * time.Millisecond))
			key := todo("group")
			const n = 24
			errs := make(chan error, n)
			for i := range n {
				change := newReplica().edit(t, "k", i)
				go func() {
					res, err := e.Sync(context.Background(), []DocRequest{{Key: key, Changes: change}})
					if err == nil {
						err = res[0].Err
					}
					errs <- err
				}()
			}
			for range n {
				if err := <-errs; err != nil {
					t.Fatalf("push: %v", err)
				}
			}
			got := fs.appends.Load()
			if got > tc.maxWrite || tc.noGroup && got != n {
				t.Fatalf("%d pushes took %d appends (limit %d)", n, got, tc.maxWrite)
			}
			t.Logf("%d concurrent pushes → %d appends", n, got)
			if heads := sync1(t, e, DocRequest{Key: key}).Heads; len(heads) != n {
				t.Fatalf("%d heads, want %d (one per concurrent replica)", len(heads), n)
			}
		})
	}
}

// TestSync_StoreTooLarge: an entry the backend cannot hold is refused as
// too large (a retry cannot help), not as unavailable.
func TestSync_StoreTooLarge(t *testing.T) {
	e, fs := newEngine(t, newBolt(t), Options{})
	tooLarge := fmt.Errorf("bolt: value too big: %w", store.ErrTooLarge)
	fs.failWith.Store(&tooLarge)
	fs.failNext.Store(1)
	a := newReplica()
	c1 := a.edit(t, "x", 1)
	res := sync1(t, e, DocRequest{Key: todo("big"), Changes: c1})
	if !errors.Is(res.Err, ErrTooLarge) {
		t.Fatalf("Err=%v, want ErrTooLarge", res.Err)
	}
	// Nothing of it stayed behind: the next push must bring it again.
	c2 := a.edit(t, "y", 2)
	if res := sync1(t, e, DocRequest{Key: todo("big"), Changes: c2}); !errors.Is(res.Err, ErrMissingDeps) {
		t.Fatalf("push without the refused change: %v, want ErrMissingDeps", res.Err)
	}
	if res := sync1(t, e, DocRequest{Key: todo("big"), Changes: append(slices.Clone(c1), c2...)}); res.Err != nil {
		t.Fatalf("next push: %v", res.Err)
	}
}

// TestSync_StaleAfterCompaction: a hot record whose log another process
// compacted away is reloaded, not served stale.
func TestSync_StaleAfterCompaction(t *testing.T) {
	st := newBolt(t)
	e1, _ := newEngine(t, st, Options{CompactEvery: 3})
	e2, _ := newEngine(t, st, Options{})
	key := todo("stale")
	a := newReplica()
	a.push(t, e1, key, a.edit(t, "x", 0))
	if res := sync1(t, e2, DocRequest{Key: key}); res.Err != nil || len(res.Heads) != 1 {
		t.Fatalf("e2 pull: %+v", res)
	}
	for i := range 6 {
		a.push(t, e1, key, a.edit(t, "x", i+1))
	}
	waitFor(t, "a compaction", func() bool { return e1.Stats().Compactions > 0 })
	res := sync1(t, e2, DocRequest{Key: key})
	if res.Err != nil || !slices.Equal(res.Heads, a.heads()) {
		t.Fatalf("e2 after compaction: heads %v err %v, want %v", res.Heads, res.Err, a.heads())
	}
	if got := len(changeSet(t, res.Changes)); got != 7 {
		t.Fatalf("e2 serves %d changes, want 7", got)
	}
}

// TestSync_RefusedPushResendsNothing: a client whose have names only the
// change it pushes (its own heads) still gets nothing back of the history
// that change builds on when the change is refused: the change's
// dependencies tell what the client holds.
func TestSync_RefusedPushResendsNothing(t *testing.T) {
	e, _ := newEngine(t, newBolt(t), Options{MaxRecordBytes: 4 << 10})
	r := newReplica()
	for i := range 3 {
		if res := r.push(t, e, todo("t"), r.edit(t, "n", int64(i))); res.Err != nil {
			t.Fatalf("push %d: %v", i, res.Err)
		}
	}
	big := r.edit(t, "notes", strings.Repeat("x", 8<<10))
	res := sync1(t, e, DocRequest{Key: todo("t"), Have: []crdt.Hash{mustHash(t, big)}, Changes: big})
	if !errors.Is(res.Err, ErrTooLarge) {
		t.Fatalf("push over the record limit: err=%v, want ErrTooLarge", res.Err)
	}
	if len(res.Changes) != 0 {
		t.Fatalf("answer resends %d bytes the client holds", len(res.Changes))
	}
}
