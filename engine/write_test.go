package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestWritesConcurrent: plain-JSON writes from many goroutines to one
// record, interleaved with pushes of another actor: each is one change of
// the engine's actor in turn (ownMu), none is lost, and the record's
// history stays valid (every change passed the index).
func TestWritesConcurrent(t *testing.T) {
	e, _ := newEngine(t, newBolt(t), Options{})
	ctx := context.Background()
	key := todo("concurrent")
	if _, err := e.PutJSON(ctx, key, []byte(`{"title": "start"}`), "", ""); err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.PatchJSON(ctx, key, MergePatch, fmt.Appendf(nil, `{"k%d": %d}`, i, i), "", "tester")
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent patch: %v", err)
		}
	}
	v, err := e.View(ctx, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(v.Doc, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc) != n+1 {
		t.Fatalf("view %s: want title and %d keys", v.Doc, n)
	}
	// A cold engine on the same store loads the same history.
	cold, _ := newEngine(t, e.opts.Store.(*faultStore).Store, Options{})
	cv, err := cold.View(ctx, key, nil)
	if err != nil || string(cv.Doc) != string(v.Doc) {
		t.Fatalf("cold view %s, %v; want %s", cv.Doc, err, v.Doc)
	}
}

// TestWriteResults: Created and Changed, the sentinels of each refusal,
// and If-Match against engine.ETag.
func TestWriteResults(t *testing.T) {
	e, _ := newEngine(t, newBolt(t), Options{})
	ctx := context.Background()
	key := todo("results")
	res, err := e.PutJSON(ctx, key, []byte(`{}`), "", "")
	if err != nil || !res.Created || !res.Changed || len(res.View.Heads) != 1 || string(res.View.Doc) != `{}` {
		t.Fatalf("PUT {} of a new record = %+v, %v: want it created (an empty change)", res, err)
	}
	res, err = e.PutJSON(ctx, key, []byte(`{"a": 1}`), ETag(res.View.Heads), "")
	if err != nil || res.Created || !res.Changed {
		t.Fatalf("PUT with If-Match = %+v, %v", res, err)
	}
	again, err := e.PutJSON(ctx, key, []byte(`{"a": 1}`), "", "")
	if err != nil || again.Changed || ETag(again.View.Heads) != ETag(res.View.Heads) {
		t.Fatalf("equal PUT = %+v, %v: want no change", again, err)
	}
	for _, tt := range []struct {
		name string
		err  error
		call func() error
	}{
		{"stale If-Match", ErrPreconditionFailed, func() error {
			_, err := e.PutJSON(ctx, key, []byte(`{"a": 2}`), `"stale", W/"weak"`, "")
			return err
		}},
		{"reserved key", ErrInvalidWrite, func() error {
			_, err := e.PutJSON(ctx, key, []byte(`{"$deleted": true}`), "", "")
			return err
		}},
		{"failed test", ErrTestFailed, func() error {
			_, err := e.PatchJSON(ctx, key, JSONPatch, []byte(`[{"op": "test", "path": "/a", "value": 2}]`), "", "")
			return err
		}},
		{"patch never-written record", ErrNotFound, func() error {
			_, err := e.PatchJSON(ctx, todo("never"), MergePatch, []byte(`{"a": 1}`), "", "")
			return err
		}},
		{"restore to no heads", ErrInvalidWrite, func() error {
			_, err := e.Restore(ctx, key, nil, "", "")
			return err
		}},
	} {
		if err := tt.call(); !errors.Is(err, tt.err) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.err)
		}
	}
	if _, err := e.SetDeleted(ctx, key, true, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.PutJSON(ctx, key, []byte(`{"a": 3}`), "", ""); !errors.Is(err, ErrDeleted) {
		t.Fatalf("PUT of a deleted record: %v, want ErrDeleted", err)
	}
}

// TestWriteLimits: a plain-JSON write is held to the limits of a pushed
// change, and a refused one stores nothing.
func TestWriteLimits(t *testing.T) {
	e, _ := newEngine(t, newBolt(t), Options{MaxChangeBytes: 4096})
	ctx := context.Background()
	key := todo("limits")
	big := fmt.Appendf(nil, `{"text": %q}`, strings.Repeat("x", 10_000))
	if _, err := e.PutJSON(ctx, key, big, "", ""); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("PUT of a change over MaxChangeBytes: %v, want ErrTooLarge", err)
	}
	if _, err := e.View(ctx, key, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused PUT created the record: %v", err)
	}
	if _, err := e.PutJSON(ctx, key, []byte(`{"text": "small"}`), "", ""); err != nil {
		t.Fatalf("a small PUT: %v", err)
	}
}
