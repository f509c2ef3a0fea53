package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/store"
)

// fakeEngine is a backend for testing the HTTP layer alone. A record's state
// is the concatenation of the change bytes pushed to it; its one head is the
// hash of that. IDs choose failures: "invalid", "deps", "big", "down",
// "boom" and "panic".
type fakeEngine struct {
	mu       sync.Mutex
	records  map[store.Key][]byte
	order    []store.Key // feed order, oldest change first
	subs     map[chan engine.Event][]string
	readyErr error
	block    chan struct{} // when set, Sync waits for it to close
	started  chan struct{} // when set, Sync signals it has started
	closed   bool
	deleted  map[store.Key]bool
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{records: map[store.Key][]byte{}, subs: map[chan engine.Event][]string{}}
}

func fakeHead(b []byte) []crdt.Hash { return []crdt.Hash{crdt.Hash(sha256.Sum256(b))} }

func (f *fakeEngine) Sync(ctx context.Context, reqs []engine.DocRequest) ([]engine.DocResult, error) {
	if f.started != nil {
		f.started <- struct{}{}
	}
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]engine.DocResult, len(reqs))
	for i, r := range reqs {
		out[i].Key = r.Key
		switch r.Key.ID {
		case "invalid":
			out[i].Err = fmt.Errorf("split: %w", crdt.ErrInvalidChange)
			continue
		case "deps":
			out[i].Err = fmt.Errorf("apply: %w", crdt.ErrMissingDeps)
			out[i].Heads = fakeHead(nil)
			continue
		case "big":
			out[i].Err = fmt.Errorf("change: %w", engine.ErrTooLarge)
			continue
		case "down":
			out[i].Err = fmt.Errorf("append: %w", store.ErrUnavailable)
			continue
		case "boom":
			out[i].Err = errors.New("secret internal detail")
			continue
		case "panic":
			panic("fake engine panics")
		}
		cur := f.records[r.Key]
		if len(r.Changes) > 0 {
			cur = append(cur, r.Changes...)
			f.records[r.Key] = cur
			f.order = append(f.order, r.Key)
			for ch, cols := range f.subs {
				for _, c := range cols {
					if c == r.Key.Collection {
						select {
						case ch <- engine.Event{Key: r.Key, Heads: fakeHead(cur)}:
						default:
						}
					}
				}
			}
		}
		if cur != nil {
			out[i].Heads = fakeHead(cur)
		}
		if len(r.Have) == 0 {
			out[i].Changes = cur
		}
	}
	return out, nil
}

func (f *fakeEngine) JSON(ctx context.Context, key store.Key, heads []crdt.Hash) ([]byte, []crdt.Hash, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cur, ok := f.records[key]
	if !ok {
		return nil, nil, fmt.Errorf("load %s: %w", key, engine.ErrNotFound)
	}
	if heads != nil {
		return []byte(`{"at":"past"}`), heads, nil
	}
	return []byte(fmt.Sprintf(`{"len":%d}`, len(cur))), fakeHead(cur), nil
}

func (f *fakeEngine) View(ctx context.Context, key store.Key, heads []crdt.Hash) (engine.View, error) {
	doc, at, err := f.JSON(ctx, key, heads)
	f.mu.Lock()
	defer f.mu.Unlock()
	return engine.View{Doc: doc, Heads: at, Deleted: f.deleted[key]}, err
}

func (f *fakeEngine) ViewWith(ctx context.Context, key store.Key, opts engine.ViewOptions) (engine.View, error) {
	v, err := f.View(ctx, key, opts.Heads)
	if opts.Conflicts {
		v.Conflicts = []engine.Conflict{}
	}
	return v, err
}

// errFakeWrite: plain-JSON writes and restore are the real engine's
// (writes_test.go, internal/writestest).
var errFakeWrite = fmt.Errorf("fake engine: %w", engine.ErrUnavailable)

func (f *fakeEngine) PutJSON(context.Context, store.Key, []byte, string, string) (engine.WriteResult, error) {
	return engine.WriteResult{}, errFakeWrite
}

func (f *fakeEngine) PatchJSON(context.Context, store.Key, engine.PatchKind, []byte, string, string) (engine.WriteResult, error) {
	return engine.WriteResult{}, errFakeWrite
}

func (f *fakeEngine) Restore(context.Context, store.Key, []crdt.Hash, string, string) (engine.WriteResult, error) {
	return engine.WriteResult{}, errFakeWrite
}

// SetDeleted marks a fake record deleted; the real changes are the
// engine's (engine.TestSetDeleted, the integration tests).
func (f *fakeEngine) SetDeleted(ctx context.Context, key store.Key, deleted bool, by string) ([]crdt.Hash, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cur, ok := f.records[key]
	if !ok {
		return nil, fmt.Errorf("load %s: %w", key, engine.ErrNotFound)
	}
	if f.deleted == nil {
		f.deleted = map[store.Key]bool{}
	}
	f.deleted[key] = deleted
	return fakeHead(cur), nil
}

func (f *fakeEngine) Feed(ctx context.Context, collection, cursor string, limit int) (store.FeedPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	seen := map[string]bool{}
	for _, k := range f.order {
		if k.Collection == collection && !seen[k.ID] {
			seen[k.ID] = true
			ids = append(ids, k.ID)
		}
	}
	sort.Strings(ids)
	start := 0
	if cursor != "" {
		start = sort.SearchStrings(ids, cursor)
		if start == len(ids) || ids[start] != cursor {
			return store.FeedPage{}, fmt.Errorf("fake: %w", store.ErrInvalidCursor)
		}
		start++
	}
	page := store.FeedPage{Cursor: cursor}
	for _, id := range ids[start:] {
		if len(page.Items) == limit {
			page.More = true
			break
		}
		page.Items = append(page.Items, store.FeedItem{ID: id, Heads: crdt.HashStrings(fakeHead(f.records[store.Key{Collection: collection, ID: id}]))})
		page.Cursor = id
	}
	return page, nil
}

func (f *fakeEngine) Subscribe(collections []string) (<-chan engine.Event, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan engine.Event, 16)
	f.subs[ch] = collections
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			delete(f.subs, ch)
			close(ch)
		})
	}
}

func (f *fakeEngine) subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

func (f *fakeEngine) Ready(ctx context.Context) error { return f.readyErr }

func (f *fakeEngine) Stats() engine.Stats {
	return engine.Stats{CachedRecords: 3, ChangesMerged: 7, StoreWrites: 5}
}

// History of a fake record is empty; the real one is the engine's
// (engine.TestHistory, the integration tests).
func (f *fakeEngine) History(ctx context.Context, key store.Key, cursor string, limit int) (engine.HistoryPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.records[key]; !ok {
		return engine.HistoryPage{}, fmt.Errorf("history %s: %w", key, engine.ErrNotFound)
	}
	return engine.HistoryPage{Changes: []engine.HistoryChange{}}, nil
}
