package benchmarks

import (
	"context"
	"sync/atomic"

	"github.com/dynamerge/dynamerge/store"
)

// CountingStore wraps a store.Store and counts its calls, so that a benchmark
// can report store writes and reads per change whatever the backend. It adds
// no behaviour of its own.
type CountingStore struct {
	store.Store

	loads, readLogs, appends, appendErrors, snapshots atomic.Uint64
}

var _ store.Store = (*CountingStore)(nil)

// NewCountingStore returns s wrapped with zeroed counters.
func NewCountingStore(s store.Store) *CountingStore { return &CountingStore{Store: s} }

// StoreCounts is a snapshot of a CountingStore's counters.
type StoreCounts struct {
	Loads        uint64 // Load calls
	ReadLogs     uint64 // ReadLog calls
	Appends      uint64 // Append calls, failed ones included
	AppendErrors uint64 // Append calls that returned an error (ErrConflict and others)
	Snapshots    uint64 // SaveSnapshot calls
}

// Sub returns the counts of c that happened after before.
func (c StoreCounts) Sub(before StoreCounts) StoreCounts {
	return StoreCounts{
		Loads:        c.Loads - before.Loads,
		ReadLogs:     c.ReadLogs - before.ReadLogs,
		Appends:      c.Appends - before.Appends,
		AppendErrors: c.AppendErrors - before.AppendErrors,
		Snapshots:    c.Snapshots - before.Snapshots,
	}
}

// Counts returns the counters now.
func (s *CountingStore) Counts() StoreCounts {
	return StoreCounts{
		Loads:        s.loads.Load(),
		ReadLogs:     s.readLogs.Load(),
		Appends:      s.appends.Load(),
		AppendErrors: s.appendErrors.Load(),
		Snapshots:    s.snapshots.Load(),
	}
}

// Load counts and forwards.
func (s *CountingStore) Load(ctx context.Context, key store.Key) (*store.Record, error) {
	s.loads.Add(1)
	return s.Store.Load(ctx, key)
}

// ReadLog counts and forwards.
func (s *CountingStore) ReadLog(ctx context.Context, key store.Key, after uint64) ([]store.Entry, error) {
	s.readLogs.Add(1)
	return s.Store.ReadLog(ctx, key, after)
}

// Append counts and forwards.
func (s *CountingStore) Append(ctx context.Context, key store.Key, e store.Entry, meta store.AppendMeta) error {
	s.appends.Add(1)
	err := s.Store.Append(ctx, key, e, meta)
	if err != nil {
		s.appendErrors.Add(1)
	}
	return err
}

// SaveSnapshot counts and forwards.
func (s *CountingStore) SaveSnapshot(ctx context.Context, key store.Key, snap store.Snapshot) error {
	s.snapshots.Add(1)
	return s.Store.SaveSnapshot(ctx, key, snap)
}
