package worker

import (
	"errors"
	"fmt"

	"github.com/dynamerge/dynamerge/crdt"
)

// Errors returned by Pool methods.
var (
	// ErrPoison is returned when a request killed a worker twice, once in
	// isolation on a fresh worker: the input is refused. It wraps
	// crdt.ErrInvalidChange, so that callers map it to invalid_change.
	ErrPoison = fmt.Errorf("worker: input crashed the worker: %w", crdt.ErrInvalidChange)
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("worker: pool closed")
	// ErrUnavailable is returned while a worker cannot be started (its
	// command fails, or it dies before its handshake): the pool backs off
	// instead of spinning and fails requests at once with this error,
	// wrapping the cause. It is temporary: map it to 503.
	ErrUnavailable = errors.New("worker: no worker available")
)

// remoteError is an error a worker reported, with the crdt sentinel it
// wrapped on the worker's side, if any.
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

// answerErr turns an error answer into an error.
func answerErr(m *message) error {
	switch m.Status {
	case statusInvalid:
		return &remoteError{m.Err, crdt.ErrInvalidChange}
	case statusMissingDeps:
		return &remoteError{m.Err, crdt.ErrMissingDeps}
	case statusError:
		return &remoteError{m.Err, nil}
	}
	return fmt.Errorf("worker: unexpected answer status %d", m.Status)
}
