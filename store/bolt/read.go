package bolt

import (
	"bytes"
	"context"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/dynamerge/dynamerge/store"
)

// Load returns the record's snapshot and the log entries after it, or
// store.ErrNotFound, as described by store.Store. One read transaction, so
// the snapshot and the entries are always of the same moment.
func (s *Store) Load(ctx context.Context, key store.Key) (*store.Record, error) {
	op := "load " + key.String()
	if err := checkRead(ctx, key); err != nil {
		return nil, fmt.Errorf("bolt: %s: %w", op, err)
	}
	rec := &store.Record{Key: key}
	err := s.view(op, func(tx *bbolt.Tx) error {
		m, err := getMeta(tx, key)
		if err != nil {
			return err
		}
		if m == nil {
			return store.ErrNotFound
		}
		rec.Seq = m.Seq
		rec.DeletedAt, rec.UpdatedAt = m.DeletedAt, m.UpdatedAt
		rec.Purged, rec.Roots = m.Purged, m.Roots
		if m.SnapSeq > 0 {
			data := tx.Bucket(bucketSnap).Get(recordKey(key))
			if data == nil {
				return fmt.Errorf("%w: snapshot at seq %d missing", errCorrupt, m.SnapSeq)
			}
			rec.Snapshot = &store.Snapshot{Seq: m.SnapSeq, Data: bytes.Clone(data)}
		}
		rec.Entries, err = readLog(tx, key, m, m.floor())
		return err
	})
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// ReadLog returns the entries with Seq > after, as described by store.Store.
func (s *Store) ReadLog(ctx context.Context, key store.Key, after uint64) ([]store.Entry, error) {
	op := fmt.Sprintf("read log %s after %d", key, after)
	if err := checkRead(ctx, key); err != nil {
		return nil, fmt.Errorf("bolt: %s: %w", op, err)
	}
	var entries []store.Entry
	err := s.view(op, func(tx *bbolt.Tx) error {
		m, err := getMeta(tx, key)
		if err != nil || m == nil {
			return err
		}
		if after < m.floor() && after < m.Seq {
			return fmt.Errorf("%w: entries up to seq %d are in the snapshot or purged", store.ErrCompacted, m.floor())
		}
		entries, err = readLog(tx, key, m, after)
		return err
	})
	if err != nil {
		return nil, err
	}
	return entries, nil
}

func checkRead(ctx context.Context, key store.Key) error {
	if err := key.Validate(); err != nil {
		return err
	}
	return ctx.Err()
}

// getMeta returns the record's meta, or nil when it has never been written.
func getMeta(tx *bbolt.Tx, key store.Key) (*meta, error) {
	v := tx.Bucket(bucketMeta).Get(recordKey(key))
	if v == nil {
		return nil, nil
	}
	m, err := decodeMeta(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return m, nil
}

// readLog copies the entries after `after` (>= m.SnapSeq) out of tx and
// checks that they run gap-free up to m.Seq: a hole would be silent data
// loss, so it is reported as corruption rather than returned.
func readLog(tx *bbolt.Tx, key store.Key, m *meta, after uint64) ([]store.Entry, error) {
	if after >= m.Seq {
		return nil, nil
	}
	entries := make([]store.Entry, 0, m.Seq-after)
	prefix := logPrefix(key)
	c := tx.Bucket(bucketLog).Cursor()
	attrs := tx.Bucket(bucketLogAttr)
	want := after + 1
	for k, v := c.Seek(logKey(key, want)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		seq, err := logSeq(prefix, k)
		if err != nil {
			return nil, err
		}
		if seq != want {
			return nil, fmt.Errorf("%w: %s: log has seq %d where %d belongs", errCorrupt, key, seq, want)
		}
		e := store.Entry{Seq: seq, Changes: bytes.Clone(v)}
		if a := attrs.Get(k); a != nil {
			if e.By, e.At, err = store.DecodeEntryAttribution(a, len(v)); err != nil {
				return nil, fmt.Errorf("%w: %s seq %d: %v", errCorrupt, key, seq, err)
			}
		}
		entries = append(entries, e)
		want++
	}
	if want != m.Seq+1 {
		return nil, fmt.Errorf("%w: %s: log ends at seq %d, meta says %d", errCorrupt, key, want-1, m.Seq)
	}
	return entries, nil
}

// ReadAttribution returns the rows compactions kept, as described by
// store.Store: one cursor walk over the record's keys in bucket "attr".
func (s *Store) ReadAttribution(ctx context.Context, key store.Key) ([]store.Attributed, error) {
	op := "read attribution " + key.String()
	if err := checkRead(ctx, key); err != nil {
		return nil, fmt.Errorf("bolt: %s: %w", op, err)
	}
	var chunks []store.RowChunk
	err := s.view(op, func(tx *bbolt.Tx) error {
		prefix := logPrefix(key)
		c := tx.Bucket(bucketAttr).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			rows, first, err := store.DecodeRows(v)
			if err != nil {
				return fmt.Errorf("%w: %s: %v", errCorrupt, key, err)
			}
			if len(rows) > 0 {
				chunks = append(chunks, store.RowChunk{Seq: rows[0].Seq, First: first, Rows: rows})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return store.MergeRows(chunks), nil
}
