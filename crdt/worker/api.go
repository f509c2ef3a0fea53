package worker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/dynamerge/dynamerge/crdt"
)

// EnvWorker is the environment variable that turns a process started by a
// Pool into a worker.
const EnvWorker = "DYNAMERGE_WORKER"

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
	// Timeout bounds how long one request may run in a worker before the
	// worker is killed (and the request confirmed in isolation, then refused
	// with ErrPoison if it hangs again). Defaults to DefaultTimeout; negative
	// means no bound.
	Timeout time.Duration
	// Stderr receives the workers' stderr, each line prefixed with
	// "dynamerge-worker[<slot>]: ". Defaults to os.Stderr.
	Stderr io.Writer
}

// Default pool settings.
const (
	DefaultProcs       = 2
	DefaultMemoryBytes = 1 << 30
	DefaultTimeout     = 30 * time.Second
)

// NewPool starts the workers. It fails if the first of them cannot start,
// so that a misconfigured Command shows at start-up.
func NewPool(opts Options) (*Pool, error) { return newPool(opts) }

// Apply applies change chunks to the record's document, which must be at
// fromSeq (if the worker holds it at another seq, or not at all, it asks base
// for the state at fromSeq). On success the document is at toSeq. All or
// nothing: on error the worker drops the document. Errors: crdt.ErrInvalidChange
// (automerge refused a change, or dropped one), crdt.ErrMissingDeps, ErrPoison.
func (p *Pool) Apply(ctx context.Context, key string, fromSeq, toSeq uint64, base BaseFunc, changes []byte) error {
	_, err := p.do(ctx, key, &message{Op: opApply, Key: key, FromSeq: fromSeq, ToSeq: toSeq, Data: changes}, base)
	if err != nil {
		return fmt.Errorf("worker: apply %q seq %d..%d: %w", key, fromSeq, toSeq, err)
	}
	return nil
}

// JSON returns the record's JSON view at heads (nil for the current heads)
// and the heads it reflects.
func (p *Pool) JSON(ctx context.Context, key string, seq uint64, base BaseFunc, heads []string) (json []byte, at []string, err error) {
	if heads != nil {
		// Refuse bad hashes here rather than in a worker.
		if _, err := crdt.ParseHashes(heads); err != nil {
			return nil, nil, fmt.Errorf("worker: json %q: %w", key, err)
		}
		if len(heads) == 0 {
			heads = nil
		}
	}
	ans, err := p.do(ctx, key, &message{Op: opJSON, Key: key, FromSeq: seq, Heads: heads}, base)
	if err != nil {
		return nil, nil, fmt.Errorf("worker: json %q seq %d: %w", key, seq, err)
	}
	at = ans.Heads
	if at == nil {
		at = []string{}
	}
	return ans.Data, at, nil
}

// Save returns the record's document at seq, saved (for snapshots).
func (p *Pool) Save(ctx context.Context, key string, seq uint64, base BaseFunc) ([]byte, error) {
	ans, err := p.do(ctx, key, &message{Op: opSave, Key: key, FromSeq: seq}, base)
	if err != nil {
		return nil, fmt.Errorf("worker: save %q seq %d: %w", key, seq, err)
	}
	return ans.Data, nil
}

// Changes returns every change chunk of a saved document, concatenated, in
// an order where dependencies come first.
func (p *Pool) Changes(ctx context.Context, snapshot []byte) ([]byte, error) {
	ans, err := p.do(ctx, "", &message{Op: opChanges, Data: snapshot}, nil)
	if err != nil {
		return nil, fmt.Errorf("worker: changes of a %d-byte snapshot: %w", len(snapshot), err)
	}
	return ans.Data, nil
}

// Evict drops the record's document from whichever worker holds it. It does
// not wait, and does not start a worker.
func (p *Pool) Evict(key string) { p.evict(key) }

// RSS returns the resident memory of all workers together, in bytes.
func (p *Pool) RSS() int64 { return p.rss() }

// Close stops the workers. Requests in flight fail with ErrClosed; so do
// later ones. It is idempotent.
func (p *Pool) Close() error { return p.close() }
