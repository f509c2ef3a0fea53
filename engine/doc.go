// Package engine merges and persists records: the heart of the server. It
// knows no HTTP.
//
// # Hot records
//
// A record the engine has touched recently is kept in memory as pure Go: its
// change graph (crdt.Graph: every change by hash, with its raw bytes), its log
// seq, its snapshot and the log entries after it. Deltas are computed from the
// graph in O(delta), never by automerge-go, whose Changes(heads) walks the
// whole history. Hot records live in an LRU bounded by CacheBytes, counting
// Go-side bytes plus the workers' RSS.
//
// # Writes
//
// The serving process never runs automerge-go on client bytes: pushes are
// split and checked in pure Go (crdt.Split, dependencies against the graph),
// then validated against the record's real document in an isolated worker
// process (crdt/worker). Each record has at most one writer at a time; pushes
// that arrive while a write is in flight are group-committed together in the
// next store.Append. A push is answered only once its Append returned nil, so
// every acknowledged change is durable. When another process took the next
// seq first (store.ErrConflict), the writer reads the log tail, merges it and
// retries.
//
// # Background work
//
// After a write, a record whose log holds more than CompactEvery changes since
// its snapshot is compacted in the background: the worker saves the document
// and the engine stores it as the new snapshot. Subscribers get an Event after
// every durable write.
package engine
