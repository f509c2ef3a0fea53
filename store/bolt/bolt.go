package bolt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/dynamerge/dynamerge/store"
)

// Default store settings, used for zero fields of Options.
const (
	// DefaultLockTimeout is how long Open waits for another holder of the
	// file to let go before failing with ErrLocked.
	DefaultLockTimeout = time.Second
	// DefaultMaxBatchSize bounds how many Appends share one transaction, so
	// that one commit's memory and latency stay bounded under a burst.
	DefaultMaxBatchSize = 256
	// DefaultMaxBatchBytes bounds the change bytes of one transaction
	// (16 MiB): a commit holds them all in memory and its fsync writes them
	// all, so a burst of large entries must not make one huge commit that
	// every small Append behind it waits for.
	DefaultMaxBatchBytes = 16 << 20
	// DefaultMaxValueSize is the largest entry or snapshot accepted (64 MiB);
	// larger ones give store.ErrTooLarge. bbolt itself allows up to 2 GiB,
	// but a value lives whole in memory during its transaction.
	DefaultMaxValueSize = 64 << 20
	// DefaultFileMode is the permission of a newly created database file;
	// records are users' data, so only the owner may read them.
	DefaultFileMode os.FileMode = 0o600
)

// Errors of this package, besides the store sentinels.
var (
	// ErrLocked is returned by Open when another process (or another Open in
	// this one) holds the database file.
	ErrLocked = errors.New("bolt: database file is held by another open store")
	// ErrClosed is store.ErrClosed, returned by calls made after Close.
	ErrClosed = store.ErrClosed
)

// Options configures Open. The zero value (and nil) means every default.
type Options struct {
	// LockTimeout is how long Open waits for the file lock. Defaults to
	// DefaultLockTimeout (1 s); negative means do not wait at all.
	LockTimeout time.Duration
	// MaxBatchSize is the most Appends committed in one transaction.
	// Defaults to DefaultMaxBatchSize (256); 1 disables group commit.
	MaxBatchSize int
	// MaxBatchBytes stops adding Appends to a transaction once their change
	// bytes reach it (an entry larger than it is committed alone). Defaults
	// to DefaultMaxBatchBytes (16 MiB).
	MaxBatchBytes int
	// MaxValueSize is the largest entry or snapshot, in bytes. Defaults to
	// DefaultMaxValueSize (64 MiB); at most bbolt.MaxValueSize (2 GiB).
	MaxValueSize int
	// FileMode is the permission of a newly created file. Defaults to
	// DefaultFileMode (0600).
	FileMode os.FileMode
}

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.LockTimeout == 0 {
		r.LockTimeout = DefaultLockTimeout
	}
	if r.MaxBatchSize <= 0 {
		r.MaxBatchSize = DefaultMaxBatchSize
	}
	if r.MaxBatchBytes <= 0 {
		r.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if r.MaxValueSize <= 0 {
		r.MaxValueSize = DefaultMaxValueSize
	}
	r.MaxValueSize = min(r.MaxValueSize, bbolt.MaxValueSize)
	if r.FileMode == 0 {
		r.FileMode = DefaultFileMode
	}
	return r
}

// Store is a store.Store in one bbolt file. Create it with Open.
type Store struct {
	db   *bbolt.DB
	opts Options

	queue chan *appendOp // unbuffered: a send succeeds only into the committer's hands
	quit  chan struct{}  // closed by Close: stops the committer and new Appends
	done  chan struct{}  // closed when the committer has exited

	closeOnce sync.Once
	closeErr  error

	commits, appends atomic.Uint64 // see Stats
}

// Stats counts the work of the Append committer since Open.
type Stats struct {
	// Commits is the number of transactions (each committed with fsync)
	// that carried Appends; Appends/Commits is the mean group-commit batch
	// size.
	Commits uint64
	// Appends is the number of Appends committed, conflicts included.
	Appends uint64
}

// Stats returns the committer's counters, for metrics and benchmarks.
func (s *Store) Stats() Stats {
	return Stats{Commits: s.commits.Load(), Appends: s.appends.Load()}
}

var _ store.Store = (*Store)(nil)

// Open opens the store in the file at path, creating the file and its parent
// directories when missing. opts may be nil. It fails with an error wrapping
// ErrLocked when the file is held by another Open, here or in another
// process, for longer than Options.LockTimeout.
func Open(path string, opts *Options) (*Store, error) {
	o := opts.withDefaults()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	timeout := o.LockTimeout
	if timeout < 0 {
		// bbolt treats 0 as "wait forever"; the shortest real wait is one
		// lock attempt followed by its retry interval.
		timeout = time.Nanosecond
	}
	db, err := bbolt.Open(path, o.FileMode, &bbolt.Options{
		Timeout: timeout,
		// The hashmap freelist stays fast as the file grows and fragments;
		// compaction deletes log entries all the time.
		FreelistType: bbolt.FreelistMapType,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("bolt: open %s: gave up after %v: %w", path, o.LockTimeout, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	err = db.Update(initLayout)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	s := &Store{
		db:    db,
		opts:  o,
		queue: make(chan *appendOp),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go s.commitLoop()
	return s, nil
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.db.Path() }

// Ping checks that the database is open and readable.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: ping: %w", err)
	}
	return s.view("ping", func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("bucket %s missing", name)
			}
		}
		return nil
	})
}

// Close stops accepting Appends, lets the committer finish the transaction
// in flight (its Appends get their real outcome), and closes the file.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.quit)
		<-s.done
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("bolt: close: %w", err)
		}
	})
	return s.closeErr
}

// update runs fn in a write transaction and wraps its error with op,
// translating a closed database into ErrClosed.
func (s *Store) update(op string, fn func(tx *bbolt.Tx) error) error {
	select {
	case <-s.quit:
		return fmt.Errorf("bolt: %s: %w", op, ErrClosed)
	default:
	}
	err := s.db.Update(fn)
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		err = ErrClosed
	}
	if err != nil {
		return fmt.Errorf("bolt: %s: %w", op, err)
	}
	return nil
}

// Backup writes a consistent copy of the whole database to w, which can be
// opened with Open like the original. It runs in one read transaction, so
// the store keeps serving (Appends included) meanwhile; a plain file copy
// is only safe while no write is in flight.
func (s *Store) Backup(ctx context.Context, w io.Writer) (int64, error) {
	var n int64
	err := s.view("backup", func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// view runs fn in a read transaction and wraps its error with op,
// translating a closed database into ErrClosed.
func (s *Store) view(op string, fn func(tx *bbolt.Tx) error) error {
	select {
	case <-s.quit:
		return fmt.Errorf("bolt: %s: %w", op, ErrClosed)
	default:
	}
	err := s.db.View(fn)
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		err = ErrClosed
	}
	if err != nil {
		return fmt.Errorf("bolt: %s: %w", op, err)
	}
	return nil
}
