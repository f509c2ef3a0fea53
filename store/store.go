package store

import (
	"context"
	"fmt"
	"time"

	"github.com/dynamerge/dynamerge/protocol"
)

// Key addresses one record.
type Key struct {
	Collection string
	ID         string
}

// String returns "collection/id", the form used in logs and store keys.
func (k Key) String() string { return k.Collection + "/" + k.ID }

// Entry is one item of a record's change-log: the change chunks of one
// accepted write (one push, or several pushes group-committed together).
type Entry struct {
	// Seq is the entry's position in the record's log: 1, 2, 3, … with no gaps.
	Seq uint64
	// Changes holds one or more Automerge change chunks, concatenated.
	Changes []byte
	// By holds, per change chunk of Changes in order, the token subject that
	// pushed it ("" without authentication). The store keeps it beside the
	// entry (Append) and returns it with the entry (Load, ReadLog); nil for
	// an entry stored before attribution existed.
	By []string
	// At is when the entry was accepted; zero for an entry stored before
	// attribution existed.
	At time.Time
}

// Snapshot is a saved Automerge document holding every change of the log up
// to and including Seq.
type Snapshot struct {
	Seq  uint64
	Data []byte
	// Attribution holds the rows of the changes of the log entries this
	// snapshot lets the store remove (the caller's, after its previous
	// snapshot, up to Seq), in acceptance order. SaveSnapshot keeps them
	// (ReadAttribution) before it removes any entry. Load does not return
	// them.
	Attribution []Attributed
}

// Record is what Load returns: the newest snapshot (if any) and every log
// entry after it, in order.
type Record struct {
	Key      Key
	Snapshot *Snapshot // nil when the record has no snapshot yet
	Entries  []Entry   // entries with Seq > Snapshot.Seq, ascending, gap-free
	// Seq is the highest log sequence number written (0 for none). Equal to
	// the last entry's Seq, or Snapshot.Seq when Entries is empty.
	Seq uint64
	// DeletedAt is when the store first saw the record deleted by an
	// Append (AppendMeta.Deleted), zero while it is not deleted.
	DeletedAt time.Time
	// Purged says the record's history was purged (Store.Purge) and nothing
	// was appended since: Snapshot and Entries are empty, Seq is where
	// appends continue.
	Purged bool
	// UpdatedAt is when the record was last appended to (or purged).
	UpdatedAt time.Time
	// Roots are the hashes of the root changes (those without
	// dependencies) of every history of the record that was purged: a
	// change among them belongs to a purged history. They outlive a new
	// history under the same key.
	Roots []string
}

// DeletedRecord is a record that DeletedBefore lists: deleted since
// DeletedAt, at Seq.
type DeletedRecord struct {
	Key       Key
	Seq       uint64
	DeletedAt time.Time
}

// AppendMeta is the state of the record after an append; stores keep it for
// the collection feed.
type AppendMeta struct {
	Heads []string // hex change hashes, sorted
	Size  int64    // approximate record size in bytes (sum of change bytes)
	// Deleted says the record is deleted after the append (its root
	// "$deleted" shows true). The store keeps when it first became so
	// (Record.DeletedAt), which purging counts from.
	Deleted bool
	// NewHistory says the append starts a new history of a purged record
	// (Record.Purged): its deletion time starts afresh.
	NewHistory bool
}

// FeedItem is one record in a collection feed page.
type FeedItem struct {
	ID        string
	Heads     []string
	UpdatedAt time.Time
	Deleted   bool // the record is deleted (AppendMeta.Deleted of its last Append)
	Purged    bool // the record's history was purged (Record.Purged)
}

// FeedPage is one page of a collection feed.
type FeedPage struct {
	Items []FeedItem
	// Cursor resumes the feed after the last item of this page; opaque to
	// callers. Passing it back later shows every record changed since (at
	// least once).
	Cursor string
	More   bool // more items are available right now
}

// DefaultFeedLimit is the page size Feed uses when asked for limit <= 0.
const DefaultFeedLimit = 100

// Store is a durable home for records. Implementations are safe for
// concurrent use by many goroutines and, where the backend allows it, by many
// processes at once.
//
// Every method that takes a Key (or a collection) validates it first and
// returns ErrInvalidKey, touching nothing, when it breaks the protocol's
// rules: the key's parts end up inside backend keys, so a stray separator
// must never get that far. storetest.Run checks every contract below.
type Store interface {
	// Load returns the record's newest snapshot and the log entries after it.
	// It returns ErrNotFound when the record has never been written.
	Load(ctx context.Context, key Key) (*Record, error)

	// ReadLog returns the log entries with Seq > after, ascending and
	// gap-free. A record that does not exist, or has nothing after `after`,
	// gives an empty slice and no error. When entries at or below some seq
	// have been removed by compaction and `after` is below that seq, it
	// returns ErrCompacted: the caller must Load instead.
	ReadLog(ctx context.Context, key Key, after uint64) ([]Entry, error)

	// Append adds e to the record's log. e.Seq must be exactly one more than
	// the highest seq written so far (1 for a new record); otherwise, and when
	// another writer took that seq first, it returns ErrConflict and writes
	// nothing. Exactly one of any number of concurrent Appends with the same
	// seq succeeds. When Append returns nil the entry is durable, and meta
	// becomes the record's feed state (it moves to the end of its
	// collection's feed). Append is not idempotent: a retry after an unknown
	// outcome returns ErrConflict if the first attempt landed, and the caller
	// re-reads the log. A context that is already done makes Append return
	// the context's error without writing.
	Append(ctx context.Context, key Key, e Entry, meta AppendMeta) error

	// SaveSnapshot stores snap as the record's snapshot if snap.Seq is higher
	// than the current snapshot's (otherwise it does nothing and returns nil),
	// and may then remove log entries with Seq <= snap.Seq. snap.Seq must not
	// exceed the record's highest seq (ErrConflict otherwise). Idempotent.
	SaveSnapshot(ctx context.Context, key Key, snap Snapshot) error

	// ReadAttribution returns the attribution rows that compactions kept
	// (Snapshot.Attribution) for the record's current history, in
	// acceptance order, each row once however many compactions wrote it.
	// Entries still in the log carry theirs (Entry.By, Entry.At) and are not
	// included. A record without rows, or never written, gives an empty
	// slice and no error. A purge removes the rows of the purged history.
	ReadAttribution(ctx context.Context, key Key) ([]Attributed, error)

	// Feed returns up to limit records of the collection changed after
	// cursor ("" for the beginning), oldest change first, each with the Heads
	// of its latest Append. The feed holds one item per record, at its last
	// change: a record changed again after it was listed is listed again
	// later, and a page from the beginning lists it once however often it
	// changed. limit <= 0 means DefaultFeedLimit. A collection with no
	// records gives an empty page whose Cursor may be passed back later. A
	// malformed cursor gives ErrInvalidCursor.
	Feed(ctx context.Context, collection, cursor string, limit int) (FeedPage, error)

	// DeletedBefore lists up to limit records that are deleted, not yet
	// purged, and were deleted before `before`, the longest deleted first.
	// limit <= 0 means DefaultFeedLimit.
	DeletedBefore(ctx context.Context, before time.Time, limit int) ([]DeletedRecord, error)
	// Purge removes the history of a deleted record that is still at seq:
	// its log entries and snapshot go, and a tombstone remains. Load then
	// returns the record with Purged set, Roots extended by roots, and Seq
	// one more than seq, so that an Append of seq+1 made by a writer that
	// did not see the purge fails with ErrConflict; appends that start a
	// new history continue from there. The record moves to the end of its
	// collection's feed, its item Purged. When the record is past seq, not
	// deleted, or already purged, Purge returns ErrConflict and removes
	// nothing: an undelete appended before the purge always wins.
	Purge(ctx context.Context, key Key, seq uint64, roots []string) error
	// Ping checks that the store is reachable (for /readyz).
	Ping(ctx context.Context) error

	// Close releases the store's resources. In-flight calls may fail after it.
	// Closing a closed store is safe and returns nil.
	Close() error
}

// Validate reports whether k is a valid record key under the protocol's rules.
func (k Key) Validate() error {
	if !protocol.ValidCollection(k.Collection) {
		return fmt.Errorf("%w: collection %q must match %s", ErrInvalidKey, k.Collection, protocol.CollectionPattern)
	}
	if !protocol.ValidID(k.ID) {
		return fmt.Errorf("%w: id %q must match %s", ErrInvalidKey, k.ID, protocol.IDPattern)
	}
	return nil
}

// ValidCollection reports whether name is a valid collection name.
func ValidCollection(name string) bool { return protocol.ValidCollection(name) }
