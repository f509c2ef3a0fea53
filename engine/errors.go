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
	// ErrClosed: the engine is shutting down (503).
	ErrClosed = errors.New("engine: closed")
)
