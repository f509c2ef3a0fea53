// Package bolt is the embedded store.Store, on go.etcd.io/bbolt: zero set-up,
// one file, one process at a time. It is the default for development and for
// single-server deployments; store/dynamo is the multi-instance one.
//
// # Durability and group commit
//
// Every Append is committed with fsync before it returns (bbolt's default;
// NoSync is never set), so an acknowledged entry survives a crash at any
// instant: bbolt is crash-consistent, the file is always one committed
// transaction or the next.
//
// One fsync per Append would cap a store at a few thousand appends per
// second, so Appends go through a single committer goroutine: while one
// transaction is committing, the Appends that arrive queue up, and the next
// transaction carries all of them (up to Options.MaxBatchSize and
// Options.MaxBatchBytes), whatever record they are for. A lone Append pays
// no added delay. bbolt's own
// DB.Batch is not used: it waits MaxBatchDelay before every batch that is not
// full, which a lone writer pays on each call, and a function that fails
// makes it re-run that call alone; here a conflict is a result, not a failed
// transaction, so conflicting Appends never undo the others of their batch.
//
// # Layout
//
// Keys use "/" as the separator: collections and ids cannot contain it
// (store.Key.Validate), so no key is a prefix of another record's keys.
// Numbers are 8-byte big-endian so that byte order is numeric order.
//
//	bucket "info"  "layout"                     → "1", the layout version
//	bucket "info"  "feed/<collection>"          → the collection's last change number
//	bucket "log"   <collection>/<id>/<seq>      → change bytes of one entry
//	bucket "meta"  <collection>/<id>            → record meta (see below)
//	bucket "snap"  <collection>/<id>            → snapshot bytes (its seq is in meta)
//	bucket "feed"  <collection>/<change number> → <id>
//	bucket "logattr" <collection>/<id>/<seq>    → attribution of the entry (see below)
//	bucket "attr"  <collection>/<id>/<seq>/<first> → attribution rows compactions kept
//
// Record meta is a version byte (1) followed by uvarints: seq (highest log
// seq), snapshot seq (0 for none; log entries at or below it are gone), size,
// updatedAt (Unix nanoseconds), the record's current change number in "feed",
// and the heads (count, then length-prefixed strings).
//
// The change number counts the Appends of one collection (the info
// bucket's "feed/<collection>"), taken in the transaction of each Append,
// so it only grows; a cursor tells its reader nothing of other collections'
// writes. (Files written when it was the "feed" bucket's global sequence
// continue from their largest number; that sequence is still kept at least
// every key.) An Append
// deletes the record's previous feed key and writes the new one, so each
// record appears once per collection, ordered by its last change, and a feed
// cursor is simply the change number of the last item seen. Numbers are
// assigned under bbolt's single writer and readers only ever see committed
// transactions, so a reader never sees a number before all smaller ones are
// in place: a cursor never skips a change.
//
// SaveSnapshot writes the snapshot, raises the meta's snapshot seq and
// deletes the log entries it covers, all in one transaction.
//
// # Attribution
//
// Who pushed each change and when it was accepted (store.Entry.By and At)
// is written by the Append's own transaction under the entry's log key in
// "logattr" (store.EncodeEntryAttribution: a version byte, the time in Unix
// µs, then runs of (count, pusher); 11 bytes plus the pusher's name for a
// lone push, so no extra fsync or transaction). SaveSnapshot moves it, with
// each change's hash, into "attr" (store.EncodeRows: about 42 bytes per
// change, one value per 256 KB of rows, keyed by the seq of its first row
// and that row's place in its entry, so values sort in acceptance order),
// in the same transaction that deletes the entries, so no attribution is
// ever lost between the two. A purge deletes both for the purged history.
// Records written before attribution existed have neither, and files of
// either kind open with either version: the buckets are created on open.
//
// # One process
//
// bbolt holds an exclusive flock on the file while it is open. A second Open
// of the same file, from this process or another, fails after
// Options.LockTimeout with an error wrapping ErrLocked instead of hanging.
package bolt
