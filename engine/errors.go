package engine

import (
	"errors"

	"github.com/dynamerge/dynamerge/crdt"
)

// Errors returned by the engine, per document (DocResult.Err) or per call.
// The server maps each to a protocol error code; test them with errors.Is.
var (
	// ErrInvalidChange: bytes that are not valid Automerge change chunks, or
	// that automerge refused ("invalid_change").
	ErrInvalidChange = crdt.ErrInvalidChange
	// ErrMissingDeps: a pushed change depends on a change the record does
	// not have ("missing_deps").
	ErrMissingDeps = crdt.ErrMissingDeps
	// ErrTooLarge: a change or record over the configured limits ("too_large").
	ErrTooLarge = errors.New("engine: too large")
	// ErrNotFound: the record has never been written ("not_found").
	ErrNotFound = errors.New("engine: record not found")
	// ErrUnknownHeads: JSON was asked for heads the record does not have
	// (400/404).
	ErrUnknownHeads = errors.New("engine: unknown heads")
	// ErrUnavailable: the store is failing; the client keeps its changes and
	// retries ("unavailable", 503).
	ErrUnavailable = errors.New("engine: store unavailable")
	// ErrGone: the record was purged, and the request belongs to (or
	// reads) its purged history ("gone", 410).
	ErrGone = errors.New("engine: record purged")
	// ErrInvalidWrite: a plain-JSON write or restore the record cannot
	// take: not a JSON object, a reserved key, a malformed patch or one
	// that does not apply, unknown heads to restore ("bad_request", 400).
	ErrInvalidWrite = crdt.ErrInvalidWrite
	// ErrPreconditionFailed: the record's view no longer has the ETag of
	// the write's If-Match ("precondition_failed", 412).
	ErrPreconditionFailed = errors.New("engine: precondition failed")
	// ErrTestFailed: a "test" operation of a JSON Patch failed
	// ("conflict", 409).
	ErrTestFailed = errors.New("engine: JSON Patch test failed")
	// ErrDeleted: a write to a deleted record other than undelete and
	// restore ("deleted", 404).
	ErrDeleted = errors.New("engine: record deleted")
	// ErrClosed: the engine is shutting down (503).
	ErrClosed = errors.New("engine: closed")
)
