// Package engine merges and persists records: the heart of the server. It
// knows no HTTP.
//
// # Hot records
//
// A record the engine has touched recently is kept in memory as its
// crdt.Index (every change by hash, runs of ops, the raw bytes of the
// changes after its snapshot), its log seq and its snapshot. Deltas are
// computed from the index in O(delta). A crdt.Doc, the materialized
// document, is built only for what needs one (the JSON view and its
// conflicts, a snapshot, a plain-JSON write or a restore),
// once per record at a time, and dropped first when memory is short. Hot
// records and documents live in an LRU bounded by CacheBytes.
//
// # Writes
//
// Pushes are parsed within the change limits (crdt.ParseChanges) and
// validated by a crdt.Tx against the record's index under a read lock, so
// validation of one record never waits for another's and no document is
// needed. Each record has at most one writer at a time; pushes
// that arrive while a write is in flight are group-committed together in the
// next store.Append. A push is answered only once its Append returned nil, so
// every acknowledged change is durable. When another process took the next
// seq first (store.ErrConflict), the writer reads the log tail, merges it and
// retries.
//
// Changes the engine makes itself (SetDeleted, PutJSON, PatchJSON, Restore)
// are built on the record's document by its own actor, one at a time per
// record, and then take the same path as a push.
//
// # Attribution and history
//
// Every write carries its caller (DocRequest.By for pushes; the by of
// SetDeleted and the engine's other own changes), and the append stores,
// per change, who first pushed it and when the entry was accepted
// (store.Entry.By, At): a group commit mixes callers, so attribution is
// per change. A change already in the record is not written again, so it
// keeps its first attribution. Compaction hands the attribution of the
// entries it folds to the store with the snapshot (Snapshot.Attribution).
// History and Attribution read it: on the first request for a record they
// read the rows compactions kept (store.ReadAttribution), add the tail's
// entries, and keep the record's history in acceptance order in memory
// (20 bytes per change) while it is hot; every entry merged since extends
// it. Pages are O(limit); the cursor names the last change listed, so
// pages do not move when changes arrive.
//
// # Background work
//
// After a write, a record whose log holds more than CompactEvery changes since
// its snapshot is compacted in the background: the record's document is
// materialized and saved as an Automerge document chunk, the new snapshot. Subscribers get an Event after
// every durable write.
//
// # Events
//
// An Event of this engine's own write carries the entry it appended
// (Event.Changes) when that is at most MaxEventChangeBytes, so followers
// holding its dependencies apply it instead of pulling. Every subscriber
// gets the same bytes and the same encoding (Event.Encoded): a change is
// encoded for the wire once, however many streams it goes to.
//
// # Other processes
//
// Several processes may share one store. Every read of a hot record first
// reads the log tail (store.ReadLog), so no request is ever answered from a
// stale copy, whatever else happens. When the store is also a store.Watcher
// (store/dynamo, through DynamoDB Streams), the engine watches it from Open
// to Close: each Change another process made is published to subscribers,
// and a record cached here that is behind is refreshed in the background
// (at most maxRemoteRefreshes at once; a record not cached is left for its
// next request to load). Changes are deduplicated by record and seq against
// what the engine already published, so its own writes, which the stream
// reports too, reach subscribers once, and repeats or older seqs not at all.
// A watch that cannot start or breaks is retried with backoff and logged.
// When it may have missed changes (the store reports a gap, or a broken
// watch restarts), every subscription is closed, so that clients resubscribe
// and sync rather than wait for events that will never come. WatchStats
// counts what the watch did.
package engine
