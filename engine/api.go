package engine

import (
	"log/slog"
	"time"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/crdt/worker"
	"github.com/dynamerge/dynamerge/store"
)

// Default engine settings.
const (
	DefaultCacheBytes     = 512 << 20
	DefaultMaxChangeBytes = 4 << 20
	DefaultMaxRecordBytes = 64 << 20
	// DefaultMaxOpsPerChange bounds the operations of one change: a paste
	// of 50k characters is one change of 50k ops. Run-length columns let a
	// few hundred bytes describe a million ops, while a loaded op costs a
	// worker about 1.3 KB of RSS (measured: a 200k-character text took
	// +255 MB), so the bound is on ops, not bytes.
	DefaultMaxOpsPerChange = 50_000
	// DefaultMaxOpsPerRecord bounds the operations of a record's history,
	// which its worker holds once loaded: ~330 MB at 1.3 KB an op, within
	// DefaultCacheBytes.
	DefaultMaxOpsPerRecord = 250_000

	DefaultCompactEvery = 1000 // changes in the log since the last snapshot
	// DefaultStoreTimeout bounds every store call.
	DefaultStoreTimeout = 10 * time.Second
	// DefaultMaxCompactions bounds background compactions running at once.
	DefaultMaxCompactions = 2
	// DefaultAppendRetries bounds how often one write retries after losing a
	// race for the next seq to another process. Losing is not failing (the
	// record moved on, and the retry merges what the winner wrote), and a
	// process writing a hot record without pause wins most races because
	// the loser must first read what it wrote: measured with three
	// processes on one DynamoDB table, 8 retries often ran out. 32, with
	// the backoff of conflictBackoff, allow several seconds of contention.
	DefaultAppendRetries = 32
)

// Options configures an Engine. Zero values mean defaults.
type Options struct {
	Store   store.Store
	Workers worker.Options
	// Pool, when set, is used instead of starting one from Workers; the
	// engine does not close it.
	Pool *worker.Pool
	// CacheBytes bounds the memory of hot records (Go side plus the workers'
	// RSS).
	CacheBytes     int64
	MaxChangeBytes int // one change chunk
	MaxRecordBytes int // all change bytes of one record
	// MaxOpsPerChange and MaxOpsPerRecord bound operations, which cost
	// memory once loaded however few bytes they took on the wire. A push
	// over them is refused ErrTooLarge; records already stored are still
	// served. Defaults: DefaultMaxOpsPerChange, DefaultMaxOpsPerRecord.
	MaxOpsPerChange int
	MaxOpsPerRecord int64

	CompactEvery int
	// NoGroupCommit writes every push separately (for benchmarks).
	NoGroupCommit bool
	Logger        *slog.Logger
	// StoreTimeout bounds every store call. Defaults to DefaultStoreTimeout.
	StoreTimeout time.Duration
	// MaxCompactions bounds concurrent background compactions. Defaults to
	// DefaultMaxCompactions.
	MaxCompactions int
	// AppendRetries bounds retries of one write after ErrConflict. Defaults
	// to DefaultAppendRetries.
	AppendRetries int
}

func (o *Options) setDefaults() {
	if o.CacheBytes <= 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	if o.MaxChangeBytes <= 0 {
		o.MaxChangeBytes = DefaultMaxChangeBytes
	}
	if o.MaxRecordBytes <= 0 {
		o.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if o.MaxOpsPerChange <= 0 {
		o.MaxOpsPerChange = DefaultMaxOpsPerChange
	}
	if o.MaxOpsPerRecord <= 0 {
		o.MaxOpsPerRecord = DefaultMaxOpsPerRecord
	}
	if o.CompactEvery <= 0 {
		o.CompactEvery = DefaultCompactEvery
	}
	if o.StoreTimeout <= 0 {
		o.StoreTimeout = DefaultStoreTimeout
	}
	if o.MaxCompactions <= 0 {
		o.MaxCompactions = DefaultMaxCompactions
	}
	if o.AppendRetries <= 0 {
		o.AppendRetries = DefaultAppendRetries
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
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
	Loads          uint64 // records loaded from the store (cold, or reloaded)
	// Watch counts what the watch on other processes' writes saw (zero
	// when the store is not a store.Watcher).
	Watch WatchStats
}
