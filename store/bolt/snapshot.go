package bolt

import (
	"bytes"
	"context"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/dynamerge/dynamerge/store"
)

// SaveSnapshot stores snap and removes the log entries it covers, in one
// transaction, as described by store.Store: a crash leaves either the old
// snapshot with the entries or the new snapshot without them, never a gap.
func (s *Store) SaveSnapshot(ctx context.Context, key store.Key, snap store.Snapshot) error {
	op := fmt.Sprintf("save snapshot %s seq %d", key, snap.Seq)
	if err := key.Validate(); err != nil {
		return fmt.Errorf("bolt: %s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: %s: %w", op, err)
	}
	if len(snap.Data) > s.opts.MaxValueSize {
		return fmt.Errorf("bolt: %s: %w: snapshot of %d bytes, limit %d", op, store.ErrTooLarge, len(snap.Data), s.opts.MaxValueSize)
	}
	// Snapshots are rare and off the hot path: a transaction of their own,
	// not the Append committer.
	return s.update(op, func(tx *bbolt.Tx) error {
		m, err := getMeta(tx, key)
		if err != nil {
			return err
		}
		var seq, snapSeq uint64
		if m != nil {
			// Entries up to a purge are gone: a snapshot of them (a
			// compaction that raced the purge) must not bring them back.
			seq, snapSeq = m.Seq, m.floor()
		}
		if snap.Seq > seq {
			return fmt.Errorf("%w: snapshot beyond the log, which ends at seq %d", store.ErrConflict, seq)
		}
		if snap.Seq <= snapSeq {
			return nil // an equal or newer snapshot is already there
		}
		if err := tx.Bucket(bucketSnap).Put(recordKey(key), bytes.Clone(snap.Data)); err != nil {
			return fmt.Errorf("put snapshot: %w", err)
		}
		if err := putRows(tx, key, snap.Attribution); err != nil {
			return err
		}
		if err := deleteLog(tx, key, snap.Seq); err != nil {
			return err
		}
		m.SnapSeq = snap.Seq
		if err := tx.Bucket(bucketMeta).Put(recordKey(key), m.encode()); err != nil {
			return fmt.Errorf("put meta: %w", err)
		}
		return nil
	})
}

// maxRowBytes bounds one value of bucket "attr".
const maxRowBytes = 256 << 10

// putRows keeps the attribution rows of the entries a snapshot compacts.
// Rows are keyed by where they start, so a compaction that covers rows
// another one kept already writes the same keys again (or overlapping
// ones, which ReadAttribution merges).
func putRows(tx *bbolt.Tx, key store.Key, rows []store.Attributed) error {
	for _, c := range store.ChunkRows(rows, maxRowBytes) {
		v, err := store.EncodeRows(c.Rows, c.First)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketAttr).Put(attrKey(key, c.Seq, c.First), v); err != nil {
			return fmt.Errorf("put attribution %s seq %d: %w", key, c.Seq, err)
		}
	}
	return nil
}

// deleteLog removes the record's log entries with seq <= through, and
// their attribution.
func deleteLog(tx *bbolt.Tx, key store.Key, through uint64) error {
	for _, b := range [][]byte{bucketLog, bucketLogAttr} {
		if err := deleteRange(tx.Bucket(b), logPrefix(key), logKey(key, through)); err != nil {
			return fmt.Errorf("delete %s %s: %w", b, key, err)
		}
	}
	return nil
}

// deleteRange removes the keys under prefix up to end, inclusive.
func deleteRange(b *bbolt.Bucket, prefix, end []byte) error {
	c := b.Cursor()
	// Deleting through the cursor moves it to the next key; seeking again
	// after each delete is the pattern bbolt documents as safe.
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && (end == nil || bytes.Compare(k, end) <= 0); k, _ = c.Seek(prefix) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}
