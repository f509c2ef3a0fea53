// Package client is the Go client of the dynamerge sync protocol
// (PROTOCOL.md), used by Go backends, the end-to-end tests and the
// benchmarks.
//
// # Calls
//
// Client has one method per endpoint: Sync (POST /v1/sync), Get (the JSON
// view, with time travel and conflicts), Create, Put, MergePatch, JSONPatch
// and Restore (plain-JSON writes), Delete and Undelete, Feed (paging
// through a collection) and Events (Server-Sent Events). Every error answer of the server is an *Error with
// the HTTP status, the protocol's code, the message and Retry-After; test
// codes with IsCode and retry when Error.Temporary says so. Per-document
// errors of a sync are in DocResult.Err, with Status 0.
//
// # Replicas
//
// Replica keeps one record as a local automerge-go document and syncs it:
// it pushes the changes committed (Replica.Commit) since the server last
// acknowledged a push, kept as they were made so a push costs what changed
// however long the history; applies what the server sends back; and, when
// the server answers missing_deps, resends its whole history once. Edits
// committed on the document directly are found by a walk of the history
// since the server's heads. Push sends without merging the answer (a
// writer that does not read), Fork starts a second device from a copy,
// Apply takes in server changes that arrived another way. SyncAll syncs
// many replicas in one request. ApplyEvents applies the changes events
// carry (one, or several that queued up, in one merge) when the replica
// holds their dependencies, so a follower skips the sync; when it reports
// false, Sync as before. The benchmarks' clients are Replicas. The client trusts its server: it applies the server's
// change bytes with automerge-go directly, which a server must never do with
// a client's.
package client
