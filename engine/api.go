package engine

import (
	"log/slog"
	"time"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/store"
)

// Default engine settings.
const (
	DefaultCacheBytes = 512 << 20
	// DefaultMaxChangeBytes bounds one change chunk on the wire: 16 MiB
	// holds a paste of a million characters of any script.
	DefaultMaxChangeBytes = 16 << 20
	// DefaultMaxRecordBytes bounds the change bytes of one record: about
	// 14 million one-keystroke changes (about 140 bytes each as Automerge JS
	// writes them), so a note typed into for years stays writable. It is
	// not what the record costs to hold: compaction keeps a document chunk
	// of a small part of that, and the index 87 bytes a change.
	DefaultMaxRecordBytes = 2 << 30
	// DefaultRecordOpFloor and the per-byte allowance of crdt.Limits make
	// the allocation budget of a record: its operations other than
	// deletions may number at most DefaultRecordOpFloor plus
	// crdt.DefaultOpsPerByte per byte of its changes. Real edits (a pasted
	// character costs a byte, a typed one a change of a hundred) never
	// reach it; changes that describe millions of operations in a few
	// bytes do, after a few of them.
	DefaultRecordOpFloor = 1 << 20

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
	Store store.Store
	// CacheBytes bounds the memory of hot records: their indexes, the
	// change bytes and snapshots they hold, and their materialized
	// documents.
	CacheBytes     int64
	MaxChangeBytes int   // one change chunk, as sent
	MaxRecordBytes int64 // all change bytes of one record
	// Limits bounds what one change may cost (crdt.Limits: its inflated
	// size and an allocation budget of operations per byte). A push over
	// them is refused ErrTooLarge; records already stored are still
	// served.
	Limits crdt.Limits
	// RecordOpFloor is the allocation budget every record has beyond its
	// bytes' (see DefaultRecordOpFloor).
	RecordOpFloor int64
	// MaxRecordOps, when positive, caps the operations of a record's
	// history, deletions included, on top of the allocation budget.
	MaxRecordOps int64

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
	// PurgeAfter, when positive, is how long a deleted record keeps its
	// history: the engine purges records deleted for longer, within
	// PurgeInterval(PurgeAfter) after. Zero never purges.
	PurgeAfter time.Duration
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
	if o.RecordOpFloor <= 0 {
		o.RecordOpFloor = DefaultRecordOpFloor
	}
	if o.Limits.MaxChunkBytes <= 0 {
		// A change may inflate to what a client may send.
		o.Limits.MaxChunkBytes = max(o.MaxChangeBytes, crdt.DefaultMaxChunkBytes)
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
	// By is who pushes them: the token subject, "" when the server runs
	// without authentication. The record keeps it as the attribution of
	// every change it did not have yet (PROTOCOL.md, history).
	By string
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
	Key     store.Key
	Heads   []crdt.Hash
	Deleted bool // the record is deleted at Heads
}

// Stats are counters and gauges for metrics.
type Stats struct {
	CachedRecords  int
	CacheBytes     int64  // bytes of hot records, documents included
	CachedDocs     int    // hot records with a materialized document
	Purges         uint64 // records purged by this engine
	ChangesMerged  uint64
	BytesMerged    uint64
	StoreWrites    uint64
	StoreErrors    uint64
	StoreConflicts uint64
	Compactions    uint64
	Loads          uint64 // records loaded from the store (cold, or reloaded)
	Materialized   uint64 // documents built (for JSON views and snapshots)
	// Watch counts what the watch on other processes' writes saw (zero
	// when the store is not a store.Watcher).
	Watch WatchStats
}
