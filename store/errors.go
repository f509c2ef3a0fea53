package store

import "errors"

// Errors returned by every Store implementation. Implementations wrap them
// with context; callers test with errors.Is.
var (
	// ErrNotFound is returned by Load when the record has never been written.
	ErrNotFound = errors.New("store: record not found")

	// ErrConflict is returned by Append when the sequence number is not the
	// next one (another writer took it first), and by SaveSnapshot when the
	// snapshot claims a seq beyond the log.
	ErrConflict = errors.New("store: sequence already taken")

	// ErrCompacted is returned by ReadLog when the requested entries were
	// folded into a snapshot and removed from the log.
	ErrCompacted = errors.New("store: log entries compacted")

	// ErrTooLarge is returned when an entry or snapshot exceeds what the
	// backend can hold.
	ErrTooLarge = errors.New("store: item too large")

	// ErrUnavailable is returned when the backend is failing (throttled,
	// unreachable, timed out) and the call may succeed later. Wrapped errors
	// that are not ErrUnavailable are treated as unavailable too by callers,
	// but this one says so explicitly.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrClosed is returned by calls made after Close.
	ErrClosed = errors.New("store: closed")
	// ErrNotSupported is returned by an operation the backend cannot serve
	// as configured (a DynamoDB table without the deleted index cannot list
	// deleted records).
	ErrNotSupported = errors.New("store: not supported")

	// ErrInvalidKey is returned by Key.Validate, and by every Store method
	// given a key or collection that breaks the protocol's rules (nothing is
	// read or written then).
	ErrInvalidKey = errors.New("store: invalid key")

	// ErrInvalidCursor is returned by Feed for a cursor that is not of the
	// form that store's Feed produces (garbled, truncated, or from another
	// backend).
	ErrInvalidCursor = errors.New("store: invalid feed cursor")
)
