// SKELETON: the exported API other packages build against. The engine helper
// fills in the bodies and moves them into files by concern; signatures stay
// as they are (additions are fine).
package engine

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/crdt/worker"
	"github.com/dynamerge/dynamerge/store"
)

// Errors returned by the engine, per document (DocResult.Err) or per call.
// The server maps each to a protocol error code.
var (
	ErrInvalidChange = crdt.ErrInvalidChange // "invalid_change"
	ErrMissingDeps   = crdt.ErrMissingDeps   // "missing_deps"
	// ErrTooLarge: a change or record over the configured limits ("too_large").
	ErrTooLarge = errors.New("engine: too large")
	// ErrNotFound: the record has never been written ("not_found").
	ErrNotFound = errors.New("engine: record not found")
	// ErrUnavailable: the store is failing; the client keeps its changes and
	// retries ("unavailable", 503).
	ErrUnavailable = errors.New("engine: store unavailable")
	// ErrClosed: the engine is shutting down (503).
	ErrClosed = errors.New("engine: closed")
)

// Default engine settings.
const (
	DefaultCacheBytes     = 512 << 20
	DefaultMaxChangeBytes = 4 << 20
	DefaultMaxRecordBytes = 64 << 20
	DefaultCompactEvery   = 1000 // changes in the log since the last snapshot
)

// Options configures an Engine. Zero values mean defaults.
type Options struct {
	Store   store.Store
	Workers worker.Options
	// CacheBytes bounds the memory of hot records (Go side plus the workers'
	// RSS).
	CacheBytes     int64
	MaxChangeBytes int // one change chunk
	MaxRecordBytes int // all change bytes of one record
	CompactEvery   int
	// NoGroupCommit writes every push separately (for benchmarks).
	NoGroupCommit bool
	Logger        *slog.Logger
}

// DocRequest is one record of a sync request.
type DocRequest struct {
	Key     store.Key
	Have    []crdt.Hash
	Changes []byte // concatenated change chunks, possibly empty
}

// DocResult answers one DocRequest. When Err is not nil nothing of the
// request's changes was stored; Heads and Changes still tell the client where
// the server stands when known.
type DocResult struct {
	Key     store.Key
	Heads   []crdt.Hash
	Changes []byte
	Err     error
}

// Event tells that a record changed.
type Event struct {
	Key   store.Key
	Heads []crdt.Hash
}

// Stats are counters and gauges for metrics.
type Stats struct {
	CachedRecords  int
	CacheBytes     int64 // Go-side bytes of hot records
	WorkerRSS      int64
	ChangesMerged  uint64
	BytesMerged    uint64
	StoreWrites    uint64
	StoreErrors    uint64
	StoreConflicts uint64
	Compactions    uint64
}

// Engine merges and persists records.
type Engine struct{}

// Open starts an engine on opts.Store.
func Open(opts Options) (*Engine, error) { return &Engine{}, nil }

// Sync merges each request's changes and answers with the delta the client
// lacks. The results have the same order as reqs. The returned error is for
// the whole call (ErrClosed, context cancelled); per-record failures are in
// DocResult.Err. When Sync returns, every change of a result without Err is
// durable.
func (e *Engine) Sync(ctx context.Context, reqs []DocRequest) ([]DocResult, error) {
	return nil, nil
}

// JSON returns the record as plain JSON at heads (nil for now), and the heads
// it reflects. ErrNotFound if never written.
func (e *Engine) JSON(ctx context.Context, key store.Key, heads []crdt.Hash) (doc []byte, at []crdt.Hash, err error) {
	return nil, nil, nil
}

// Feed lists the records of a collection changed after cursor.
func (e *Engine) Feed(ctx context.Context, collection, cursor string, limit int) (store.FeedPage, error) {
	return store.FeedPage{}, nil
}

// Subscribe delivers an Event for every change to a record of the given
// collections, through this engine or (when the store supports it) any other
// process. Slow subscribers lose events rather than block writers; the
// channel is closed when cancel is called or the engine closes.
func (e *Engine) Subscribe(collections []string) (events <-chan Event, cancel func()) {
	return nil, func() {}
}

// Ready reports whether the store is reachable.
func (e *Engine) Ready(ctx context.Context) error { return nil }

// Stats returns current counters.
func (e *Engine) Stats() Stats { return Stats{} }

// Close finishes in-flight writes (until ctx is done), then stops the workers.
// It does not close the store.
func (e *Engine) Close(ctx context.Context) error { return nil }

var _ = time.Second
