package crdt

import "errors"

// Errors returned by this package.
var (
	// ErrInvalidChange is returned when bytes are not valid Automerge change
	// chunks: bad magic, checksum, chunk type, truncation, trailing bytes, or
	// a change body that does not parse in full.
	ErrInvalidChange = errors.New("crdt: invalid change")

	// ErrMissingDeps is returned by Doc.Apply when a change depends on a
	// change the document does not have.
	ErrMissingDeps = errors.New("crdt: missing dependencies")

	// ErrChunkTooLarge is returned (wrapped together with ErrInvalidChange)
	// by ParseChanges when a chunk, once inflated, is over the size
	// limit, or holds more than MaxOps operations.
	ErrChunkTooLarge = errors.New("crdt: change too large")
)
