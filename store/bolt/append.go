package bolt

import (
	"context"
	"fmt"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/dynamerge/dynamerge/store"
)

// appendOp is one Append waiting for the committer.
type appendOp struct {
	key   store.Key
	entry store.Entry
	meta  store.AppendMeta
	// result is the Append's own outcome inside the transaction: nil or a
	// conflict. It is only reported once the transaction has committed.
	result error
	done   chan error // buffered: the committer never blocks on a caller
}

// Append adds e to the record's log as described by store.Store. It returns
// once the transaction holding e has been committed and fsynced. Appends from
// concurrent goroutines, for any records, share transactions (see the package
// documentation); a conflicting one never affects the others.
//
// ctx is honoured until the committer takes the Append; from then on Append
// waits for the outcome, which takes one commit, so that a caller never
// leaves with its bytes still in a transaction or with an unknown result.
func (s *Store) Append(ctx context.Context, key store.Key, e store.Entry, m store.AppendMeta) error {
	if err := s.checkAppend(ctx, key, e); err != nil {
		return fmt.Errorf("bolt: append %s seq %d: %w", key, e.Seq, err)
	}
	op := &appendOp{key: key, entry: e, meta: m, done: make(chan error, 1)}
	select {
	case s.queue <- op:
	case <-s.quit:
		return fmt.Errorf("bolt: append %s seq %d: %w", key, e.Seq, ErrClosed)
	case <-ctx.Done():
		return fmt.Errorf("bolt: append %s seq %d: %w", key, e.Seq, ctx.Err())
	}
	if err := <-op.done; err != nil {
		return fmt.Errorf("bolt: append %s seq %d: %w", key, e.Seq, err)
	}
	return nil
}

// checkAppend refuses, before any queueing, what can never be written.
func (s *Store) checkAppend(ctx context.Context, key store.Key, e store.Entry) error {
	if err := key.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(e.Changes) > s.opts.MaxValueSize {
		return fmt.Errorf("%w: entry of %d bytes, limit %d", store.ErrTooLarge, len(e.Changes), s.opts.MaxValueSize)
	}
	if e.Seq == 0 {
		return fmt.Errorf("%w: seq 0 (sequences start at 1)", store.ErrConflict)
	}
	select {
	case <-s.quit:
		return ErrClosed
	default:
		return nil
	}
}

// commitLoop is the committer: it takes one Append, adds every Append
// already waiting (up to MaxBatchSize Appends or MaxBatchBytes of changes),
// and commits them in one transaction.
// Appends that arrive during the commit wait for the next one, so batches
// grow with load and a lone Append is committed at once.
func (s *Store) commitLoop() {
	defer close(s.done)
	batch := make([]*appendOp, 0, s.opts.MaxBatchSize)
	for {
		var size int
		select {
		case op := <-s.queue:
			batch = append(batch, op)
			size = len(op.entry.Changes)
		case <-s.quit:
			return
		}
	gather:
		for len(batch) < s.opts.MaxBatchSize && size < s.opts.MaxBatchBytes {
			select {
			case op := <-s.queue:
				batch = append(batch, op)
				size += len(op.entry.Changes)
			default:
				break gather
			}
		}
		s.commit(batch)
		clear(batch) // drop references to callers' bytes
		batch = batch[:0]
	}
}

// commit writes batch in one transaction and reports to each op. When the
// transaction fails as a whole (an op hit a storage error, or the commit
// itself failed), every op is retried in a transaction of its own, so that
// one bad Append cannot fail the others of its batch.
func (s *Store) commit(batch []*appendOp) {
	now := time.Now().UTC()
	err := s.db.Update(func(tx *bbolt.Tx) error {
		for _, op := range batch {
			res, err := applyAppend(tx, op, now)
			if err != nil {
				return err
			}
			op.result = res
		}
		return nil
	})
	switch {
	case err == nil:
		s.commits.Add(1)
		s.appends.Add(uint64(len(batch)))
		for _, op := range batch {
			op.done <- op.result
		}
	case len(batch) == 1:
		batch[0].done <- err
	default:
		for _, op := range batch {
			s.commit([]*appendOp{op})
		}
	}
}

// applyAppend writes op in tx. It returns the op's result (nil, or a
// conflict that writes nothing) apart from err, a storage failure that must
// abort the transaction.
func applyAppend(tx *bbolt.Tx, op *appendOp, now time.Time) (result, err error) {
	metas, logs := tx.Bucket(bucketMeta), tx.Bucket(bucketLog)
	rk := recordKey(op.key)
	m := &meta{}
	if v := metas.Get(rk); v != nil {
		if m, err = decodeMeta(v); err != nil {
			return nil, fmt.Errorf("%s: %w", op.key, err)
		}
	}
	if op.entry.Seq != m.Seq+1 {
		return fmt.Errorf("%w: record is at seq %d", store.ErrConflict, m.Seq), nil
	}
	// bbolt keeps the value slices until the commit; the caller's Changes
	// stay untouched because Append waits for the commit.
	if err := logs.Put(logKey(op.key, op.entry.Seq), op.entry.Changes); err != nil {
		return nil, fmt.Errorf("put log %s seq %d: %w", op.key, op.entry.Seq, err)
	}
	if op.entry.By != nil || !op.entry.At.IsZero() {
		attr := store.EncodeEntryAttribution(op.entry.By, op.entry.At)
		if err := tx.Bucket(bucketLogAttr).Put(logKey(op.key, op.entry.Seq), attr); err != nil {
			return nil, fmt.Errorf("put log attribution %s seq %d: %w", op.key, op.entry.Seq, err)
		}
	}
	if err := moveToFeedEnd(tx, op.key, m, now); err != nil {
		return nil, err
	}
	m.Seq = op.entry.Seq
	m.Size = op.meta.Size
	m.Heads = slices.Clone(op.meta.Heads)
	if m.Purged {
		// A new history: the tombstone's deletion is not its own.
		m.Purged, m.DeletedAt = false, time.Time{}
	}
	if err := setDeleted(tx, op.key, m, op.meta.Deleted, now); err != nil {
		return nil, err
	}
	if err := metas.Put(rk, m.encode()); err != nil {
		return nil, fmt.Errorf("put meta %s: %w", op.key, err)
	}
	return nil, nil
}

// setDeleted records whether the record is deleted after an append, and
// keeps the deleted index in step: an entry from when it first became
// deleted until it is undeleted or purged.
func setDeleted(tx *bbolt.Tx, key store.Key, m *meta, deleted bool, now time.Time) error {
	idx := tx.Bucket(bucketDeleted)
	switch {
	case deleted && m.DeletedAt.IsZero():
		m.DeletedAt = now
		if err := idx.Put(deletedKey(now, key), nil); err != nil {
			return fmt.Errorf("put deleted %s: %w", key, err)
		}
	case !deleted && !m.DeletedAt.IsZero():
		if err := idx.Delete(deletedKey(m.DeletedAt, key)); err != nil {
			return fmt.Errorf("delete deleted %s: %w", key, err)
		}
		m.DeletedAt = time.Time{}
	}
	return nil
}

// moveToFeedEnd moves the record to the end of its collection's feed, as
// changed at now.
func moveToFeedEnd(tx *bbolt.Tx, key store.Key, m *meta, now time.Time) error {
	feed := tx.Bucket(bucketFeed)
	if m.FeedNo != 0 {
		if err := feed.Delete(feedKey(key.Collection, m.FeedNo)); err != nil {
			return fmt.Errorf("delete feed %s: %w", key, err)
		}
	}
	n, err := nextFeedNo(tx, key.Collection)
	if err != nil {
		return err
	}
	if err := feed.Put(feedKey(key.Collection, n), []byte(key.ID)); err != nil {
		return fmt.Errorf("put feed %s: %w", key, err)
	}
	m.FeedNo, m.UpdatedAt = n, now
	return nil
}
