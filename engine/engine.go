package engine

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/dynamerge/dynamerge/store"
)

// Engine merges and persists records. It is safe for concurrent use.
type Engine struct {
	opts  Options
	store store.Store
	log   *slog.Logger
	actor []byte // of the changes the engine makes itself (lifecycle.go)

	purgeStop chan struct{} // closed by Close: ends purgeLoop

	mu       sync.Mutex // guards the cache and closed
	records  map[store.Key]*record
	lru      *list.List // of *record, most recently used at the front
	goBytes  int64      // sum of record.charged
	closed   bool
	wg       sync.WaitGroup // Syncs, writers and compactions in flight
	compacts chan struct{}  // semaphore bounding compactions

	subs   subscribers
	watch  *watchState // nil unless the store is a store.Watcher (watch.go)
	writes writeHealth // whether the last store write failed (health.go)

	stats struct {
		changesMerged, bytesMerged               atomic.Uint64
		storeWrites, storeErrors, storeConflicts atomic.Uint64
		compactions, loads, materialized         atomic.Uint64
		purges                                   atomic.Uint64
	}
}

// Open starts an engine on opts.Store.
func Open(opts Options) (*Engine, error) {
	if opts.Store == nil {
		return nil, errors.New("engine: Options.Store is required")
	}
	opts.setDefaults()
	e := &Engine{
		opts:     opts,
		store:    opts.Store,
		log:      opts.Logger,
		actor:    newActor(),
		records:  make(map[store.Key]*record),
		lru:      list.New(),
		compacts: make(chan struct{}, opts.MaxCompactions),
	}
	e.startWatch()
	if opts.PurgeAfter > 0 {
		e.purgeStop = make(chan struct{})
		e.wg.Add(1)
		go e.purgeLoop(e.purgeStop)
	}
	return e, nil
}

// begin registers a call in flight, unless the engine is closing.
func (e *Engine) begin() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	e.wg.Add(1)
	return nil
}

// Sync merges each request's changes and answers with the delta the client
// lacks. The results have the same order as reqs. The returned error is for
// the whole call (ErrClosed, context cancelled); per-record failures are in
// DocResult.Err. When Sync returns, every change of a result without Err is
// durable.
func (e *Engine) Sync(ctx context.Context, reqs []DocRequest) ([]DocResult, error) {
	if err := e.begin(); err != nil {
		return nil, err
	}
	defer e.wg.Done()
	res := make([]DocResult, len(reqs))
	if len(reqs) == 1 {
		res[0] = e.syncDoc(ctx, reqs[0])
	} else {
		// Records are independent: let their store round trips overlap,
		// with a bound so one request cannot flood the store.
		sem := make(chan struct{}, syncParallelism)
		var wg sync.WaitGroup
		for i := range reqs {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				res[i] = e.syncDoc(ctx, reqs[i])
			}()
		}
		wg.Wait()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return res, nil
}

// syncParallelism bounds the records of one Sync processed at once.
const syncParallelism = 8

// Feed lists the records of a collection changed after cursor.
func (e *Engine) Feed(ctx context.Context, collection, cursor string, limit int) (store.FeedPage, error) {
	ctx, cancel := context.WithTimeout(ctx, e.opts.StoreTimeout)
	defer cancel()
	page, err := e.store.Feed(ctx, collection, cursor, limit)
	if err != nil {
		return page, fmt.Errorf("engine: feed %s: %w", collection, err)
	}
	return page, nil
}

// Ready reports whether the store is reachable and takes writes: an error
// wrapping ErrUnavailable when its ping fails, or when its last write
// failed within ReadyAfterWriteFailure (and none succeeded since).
func (e *Engine) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, e.opts.StoreTimeout)
	defer cancel()
	if err := e.store.Ping(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return e.writes.check()
}

// Stats returns current counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	n, b := len(e.records), e.goBytes
	docs := 0
	for _, r := range e.records {
		if r.hasDoc.Load() {
			docs++
		}
	}
	e.mu.Unlock()
	return Stats{
		CachedRecords:  n,
		CacheBytes:     b,
		CachedDocs:     docs,
		Materialized:   e.stats.materialized.Load(),
		Purges:         e.stats.purges.Load(),
		ChangesMerged:  e.stats.changesMerged.Load(),
		BytesMerged:    e.stats.bytesMerged.Load(),
		StoreWrites:    e.stats.storeWrites.Load(),
		StoreErrors:    e.stats.storeErrors.Load(),
		StoreConflicts: e.stats.storeConflicts.Load(),
		Compactions:    e.stats.compactions.Load(),
		Loads:          e.stats.loads.Load(),
		Watch:          e.WatchStats(),
	}
}

// Close stops accepting calls (they get ErrClosed), stops watching the store
// for other processes' writes (watch.go), waits for in-flight syncs, writes,
// compactions and background refreshes until ctx is done, then closes every
// subscription. It does not close the store.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	already := e.closed
	e.closed = true
	e.mu.Unlock()
	if already {
		return nil
	}
	e.stopWatch()
	if e.purgeStop != nil {
		close(e.purgeStop)
	}
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("engine: close: writes still in flight: %w", ctx.Err())
	}
	e.subs.closeAll()
	return err
}
