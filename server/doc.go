// Package server is the HTTP API of dynamerge (PROTOCOL.md), on echo, on top
// of an engine.Engine.
//
// # Endpoints
//
//   - POST /v1/sync: exchange Automerge changes for one or many records.
//   - GET /v1/collections/{collection}/docs/{id}: a record as plain JSON,
//     with an ETag, ?heads= time travel and ?conflicts=true.
//   - POST …/docs, PUT and PATCH …/docs/{id}, POST …/restore: plain-JSON
//     writes and restore (each one change made by the engine); DELETE and
//     POST …/undelete.
//   - GET /v1/collections/{collection}/feed: the records changed after a cursor.
//   - GET /v1/events: Server-Sent Events, one per changed record.
//   - GET /healthz, /readyz, /metrics: operations (Prometheus text).
//   - GET /: the demo app (Options.Assets) or a built-in page.
//
// # Errors
//
// Every error answer is {"error":{"code","message"}} with one of the
// protocol's codes; errors.go is the one place that maps domain errors
// (engine, crdt, store, Authorizer) to a status and a code. Internal errors
// are logged with the request ID and answered "internal" without detail.
//
// # Decisions
//
//   - Unknown JSON fields in a sync request are ignored (the protocol grows by
//     new optional fields); wrong types, bad base64, bad hashes are 400
//     bad_request; a bad collection or id anywhere is 400 invalid_id and
//     nothing of the request is stored.
//   - More than MaxDocsPerSync docs, or a body over MaxBodyBytes: 413
//     too_large.
//   - If the store fails for any doc of a sync, the whole request is 503
//     unavailable with Retry-After: the client resends the batch, and the
//     docs that did land are recognised by hash (retries are idempotent).
//   - Every sync entry carries "heads" and "changes" ("" when nothing is
//     missing); "error" only when the doc failed.
//   - /v1/sync speaks gzip both ways (compress.go): request bodies with
//     Content-Encoding gzip are inflated under the same MaxBodyBytes (a
//     bomb is 413 having inflated no more than the cap); answers of at least
//     1 KiB are gzipped (level 1: the CPU matters more than the last bytes)
//     for clients that accept it.
//   - An SSE event of a write of this process carries its changes (up to the
//     engine's MaxEventChangeBytes), encoded once for every stream
//     (engine.Event.Encoded); a stream writes the events queued for it
//     together, with one flush.
//
// # Lifecycle
//
// New builds the server; Start or Serve listen; Shutdown stops accepting,
// ends SSE streams and waits for in-flight requests; then the caller closes
// the engine.
package server
