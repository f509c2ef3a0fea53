package bolt

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/dynamerge/dynamerge/store"
)

// DeletedBefore lists deleted records from the deleted index, as described
// by store.Store: a read of the records deleted before `before` and no more,
// however many records the file holds.
func (s *Store) DeletedBefore(ctx context.Context, before time.Time, limit int) ([]store.DeletedRecord, error) {
	op := "list deleted records"
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: %s: %w", op, err)
	}
	if limit <= 0 {
		limit = store.DefaultFeedLimit
	}
	end := deletedKey(before, store.Key{})
	var out []store.DeletedRecord
	err := s.view(op, func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketDeleted).Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k, end) < 0 && len(out) < limit; k, _ = c.Next() {
			key, err := parseRecordKey(k[8:])
			if err != nil {
				return fmt.Errorf("%w: deleted index: %v", errCorrupt, err)
			}
			m, err := getMeta(tx, key)
			if err != nil {
				return err
			}
			if m == nil {
				return fmt.Errorf("%w: deleted index lists %s, which has no meta", errCorrupt, key)
			}
			out = append(out, store.DeletedRecord{Key: key, Seq: m.Seq, DeletedAt: m.DeletedAt})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Purge removes a deleted record's history in one transaction, as described
// by store.Store: a crash leaves the record either whole or purged.
func (s *Store) Purge(ctx context.Context, key store.Key, seq uint64, roots []string) error {
	op := fmt.Sprintf("purge %s at seq %d", key, seq)
	if err := key.Validate(); err != nil {
		return fmt.Errorf("bolt: %s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: %s: %w", op, err)
	}
	return s.update(op, func(tx *bbolt.Tx) error {
		m, err := getMeta(tx, key)
		if err != nil {
			return err
		}
		switch {
		case m == nil:
			return store.ErrNotFound
		case m.Seq != seq:
			return fmt.Errorf("%w: record is at seq %d", store.ErrConflict, m.Seq)
		case m.DeletedAt.IsZero():
			return fmt.Errorf("%w: record is not deleted", store.ErrConflict)
		case m.Purged:
			return fmt.Errorf("%w: record is purged already", store.ErrConflict)
		}
		if err := deleteLog(tx, key, seq); err != nil {
			return err
		}
		if err := deleteRange(tx.Bucket(bucketAttr), logPrefix(key), nil); err != nil {
			return fmt.Errorf("delete attribution %s: %w", key, err)
		}
		if err := tx.Bucket(bucketSnap).Delete(recordKey(key)); err != nil {
			return fmt.Errorf("delete snapshot: %w", err)
		}
		if err := tx.Bucket(bucketDeleted).Delete(deletedKey(m.DeletedAt, key)); err != nil {
			return fmt.Errorf("delete deleted %s: %w", key, err)
		}
		if err := moveToFeedEnd(tx, key, m, time.Now().UTC()); err != nil {
			return err
		}
		m.Seq++ // a writer that missed the purge conflicts on its next append
		m.PurgedSeq, m.SnapSeq, m.Purged = m.Seq, 0, true
		m.Roots = append(m.Roots, roots...)
		m.Heads, m.Size = nil, 0
		if err := tx.Bucket(bucketMeta).Put(recordKey(key), m.encode()); err != nil {
			return fmt.Errorf("put meta: %w", err)
		}
		return nil
	})
}
