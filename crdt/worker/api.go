// SKELETON: the exported API other packages build against. The worker helper
// fills in the bodies; signatures stay as they are (additions are fine).
package worker

import (
	"context"
	"errors"
	"log/slog"
)

// EnvWorker is the environment variable that turns a process started by a
// Pool into a worker.
const EnvWorker = "DYNAMERGE_WORKER"

// Errors returned by Pool methods.
var (
	// ErrPoison is returned when a request killed a worker twice, once in
	// isolation on a fresh worker: the input is refused. It wraps
	// crdt.ErrInvalidChange.
	ErrPoison = errors.New("worker: input crashed the worker")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("worker: pool closed")
)

// Main runs the process as a worker and exits if EnvWorker is set; otherwise
// it returns at once. Call it first in main() and in TestMain of every
// package whose tests start a Pool.
func Main() {}

// Base is the full state of a record at Seq, sent to a worker that does not
// hold the record's document: a saved document (may be nil) plus change
// chunks after it (may be nil).
type Base struct {
	Seq      uint64
	Snapshot []byte
	Changes  []byte
}

// BaseFunc returns the record's full state at the seq the caller asked for.
type BaseFunc func() (Base, error)

// Options configures a Pool. A zero Options means defaults.
type Options struct {
	// Procs is the number of worker processes. Defaults to DefaultProcs.
	Procs int
	// Command starts a worker; defaults to the running executable with
	// EnvWorker=1 in its environment.
	Command []string
	// MemoryBytes bounds the RSS of all workers together; each worker evicts
	// its least recently used documents to stay under its share. Defaults to
	// DefaultMemoryBytes.
	MemoryBytes int64
	Logger      *slog.Logger
}

// Default pool settings.
const (
	DefaultProcs       = 2
	DefaultMemoryBytes = 1 << 30
)

// Pool runs Automerge work in child processes, records sharded across them by
// key. A worker that dies is replaced; the request that was running on it is
// retried once on a fresh worker, and refused with ErrPoison if it kills that
// one too. Other requests are retried transparently.
type Pool struct{}

// NewPool starts the workers.
func NewPool(opts Options) (*Pool, error) { return &Pool{}, nil }

// Apply applies change chunks to the record's document, which must be at
// fromSeq (if the worker holds it at another seq, or not at all, it asks base
// for the state at fromSeq). On success the document is at toSeq. All or
// nothing: on error the worker drops the document. Errors: crdt.ErrInvalidChange
// (automerge refused a change, or dropped one), crdt.ErrMissingDeps, ErrPoison.
func (p *Pool) Apply(ctx context.Context, key string, fromSeq, toSeq uint64, base BaseFunc, changes []byte) error {
	return nil
}

// JSON returns the record's JSON view at heads (nil for the current heads)
// and the heads it reflects.
func (p *Pool) JSON(ctx context.Context, key string, seq uint64, base BaseFunc, heads []string) (json []byte, at []string, err error) {
	return nil, nil, nil
}

// Save returns the record's document at seq, saved (for snapshots).
func (p *Pool) Save(ctx context.Context, key string, seq uint64, base BaseFunc) ([]byte, error) {
	return nil, nil
}

// Changes returns every change chunk of a saved document, concatenated, in
// an order where dependencies come first.
func (p *Pool) Changes(ctx context.Context, snapshot []byte) ([]byte, error) { return nil, nil }

// Evict drops the record's document from whichever worker holds it.
func (p *Pool) Evict(key string) {}

// RSS returns the resident memory of all workers together, in bytes.
func (p *Pool) RSS() int64 { return 0 }

// Close stops the workers.
func (p *Pool) Close() error { return nil }
