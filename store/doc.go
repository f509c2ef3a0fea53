// Package store defines where records live: a small interface over a durable
// change-log and snapshots, implemented by store/bolt (embedded, one file) and
// store/dynamo (DynamoDB). Policy (caching, group commit of pushes, compaction,
// retries on conflict) lives above it, in engine: a Store only keeps bytes and
// enforces the one rule that makes concurrent writers safe.
//
// # Records, log and snapshots
//
// A record, addressed by a Key (collection and id), is an Automerge document
// kept as an append-only change-log plus, optionally, one snapshot. Log
// entries are numbered 1, 2, 3, … without gaps, and Append is a conditional
// write: an entry lands only under the next free number, so of any number of
// writers racing for a number exactly one wins and the others get ErrConflict,
// re-read the log, merge and retry. The log is the truth; a snapshot (a saved
// document covering entries up to its Seq) only makes loading cheaper, and
// once it is saved the entries it covers may be removed (ReadLog below them
// then gives ErrCompacted).
//
// # Attribution
//
// An Append also keeps who pushed each of its changes and when it was
// accepted (Entry.By, Entry.At), beside the entry and in the same write, so
// it costs no extra request. SaveSnapshot gets the same facts, with each
// change's hash, for the entries it lets the store remove
// (Snapshot.Attribution) and keeps them before it removes any;
// ReadAttribution returns them. Together they survive compaction: the
// history a record shows never loses its "by" and "at".
//
// # The feed
//
// Every Append also moves the record to the end of its collection's feed,
// which is how a new device discovers records it has never heard of: a client
// that pages through Feed from the empty cursor until More is false has seen
// every record that existed when it started, and later calls with its last
// cursor show every record changed since.
//
// # Errors
//
// Implementations return the sentinels of errors.go wrapped with context;
// callers test them with errors.Is. Any other error means the backend failed
// and the call may be retried.
//
// # Conformance
//
// storetest.Run is one suite of every contract above; each implementation
// runs it against a fresh store per case.
package store
