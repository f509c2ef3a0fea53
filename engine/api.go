package engine

import (
	"log/slog"
	"sync"
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
	// DefaultMaxEventChangeBytes bounds the change bytes an Event carries:
	// a typed character or a form field is a few hundred bytes, so nearly
	// every live edit rides in its event and followers need no pull; a
	// paste larger than this is announced without its bytes, and followers
	// pull it as before, so no event (held by every subscriber's buffer,
	// 4/3 larger once base64-encoded) grows without bound.
	DefaultMaxEventChangeBytes = 64 << 10
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
	// MaxEventChangeBytes bounds the change bytes an Event carries (see
	// DefaultMaxEventChangeBytes); a negative value sends none.
	MaxEventChangeBytes int
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
	if o.MaxEventChangeBytes == 0 {
		o.MaxEventChangeBytes = DefaultMaxEventChangeBytes
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
	// Changes, when not nil, are the change chunks that moved the record to
	// Heads (the log entry this engine just wrote), at most
	// Options.MaxEventChangeBytes. A subscriber holding their dependencies
	// applies them and need not pull. Events of other processes' writes
	// carry none: the store's stream tells heads, not bytes, and reading
	// the log for every event would cost what the pulls it saves cost.
	// Every subscriber's Event shares the same bytes: never modify them.
	Changes []byte

	shared *sharedEncoding // one per published event, shared by its copies
}

// sharedEncoding holds the wire encoding of one published event, made by
// the first subscriber that needs it and reused by every other.
type sharedEncoding struct {
	once sync.Once
	b    []byte
	err  error
}

// Encoded returns encode(ev), calling encode once for all the subscribers
// this event was published to: a change fanned out to a thousand event
// streams is encoded (its bytes base64'd into JSON) once, not a thousand
// times. encode must depend on the event alone, and the bytes it returns
// are shared: never modify them.
func (ev Event) Encoded(encode func(Event) ([]byte, error)) ([]byte, error) {
	if ev.shared == nil {
		return encode(ev)
	}
	ev.shared.once.Do(func() { ev.shared.b, ev.shared.err = encode(ev) })
	return ev.shared.b, ev.shared.err
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
