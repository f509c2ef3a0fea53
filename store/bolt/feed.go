package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strconv"

	bbolt "go.etcd.io/bbolt"

	"github.com/dynamerge/dynamerge/store"
)

// Feed returns the collection's records changed after cursor, oldest change
// first, as described by store.Store. The cursor is the change number of the
// last item returned, in decimal; see the package documentation.
func (s *Store) Feed(ctx context.Context, collection, cursor string, limit int) (store.FeedPage, error) {
	op := fmt.Sprintf("feed %s after %q", collection, cursor)
	if !store.ValidCollection(collection) {
		return store.FeedPage{}, fmt.Errorf("bolt: %s: %w: collection %q", op, store.ErrInvalidKey, collection)
	}
	after, err := parseCursor(cursor)
	if err != nil {
		return store.FeedPage{}, fmt.Errorf("bolt: %s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return store.FeedPage{}, fmt.Errorf("bolt: %s: %w", op, err)
	}
	if limit <= 0 {
		limit = store.DefaultFeedLimit
	}
	page := store.FeedPage{Cursor: formatCursor(after)}
	err = s.view(op, func(tx *bbolt.Tx) error {
		prefix := feedPrefix(collection)
		metas := tx.Bucket(bucketMeta)
		c := tx.Bucket(bucketFeed).Cursor()
		for k, v := c.Seek(feedKey(collection, after+1)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(page.Items) == limit {
				page.More = true
				break
			}
			if len(k) != len(prefix)+8 {
				return fmt.Errorf("%w: feed key %q", errCorrupt, k)
			}
			key := store.Key{Collection: collection, ID: string(v)}
			mv := metas.Get(recordKey(key))
			if mv == nil {
				return fmt.Errorf("%w: feed lists %s, which has no meta", errCorrupt, key)
			}
			m, err := decodeMeta(mv)
			if err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			page.Items = append(page.Items, store.FeedItem{ID: key.ID, Heads: m.Heads, UpdatedAt: m.UpdatedAt, Deleted: !m.DeletedAt.IsZero(), Purged: m.Purged})
			page.Cursor = formatCursor(binary.BigEndian.Uint64(k[len(prefix):]))
		}
		return nil
	})
	if err != nil {
		return store.FeedPage{}, err
	}
	return page, nil
}

func formatCursor(n uint64) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatUint(n, 10)
}

func parseCursor(cursor string) (uint64, error) {
	if cursor == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(cursor, 10, 64)
	// Only the canonical form, as formatCursor writes it, is accepted.
	if err != nil || n == 0 || cursor[0] == '0' || cursor[0] == '+' {
		return 0, fmt.Errorf("%w: %q", store.ErrInvalidCursor, cursor)
	}
	return n, nil
}

// nextFeedNo takes the next change number of collection in tx. Numbers
// count per collection, so that a feed cursor, which is one of them, tells
// its reader how many writes its own collection saw and nothing of the
// others' (issue 18: one global sequence showed every tenant the whole
// server's write rate). The counter lives in the info bucket; a collection
// without one (a file written before it existed) starts after the largest
// number its feed holds, so older cursors stay valid.
//
// The feed bucket's own sequence still advances with every number handed
// out, and stays at least the largest key, so that a version of this
// package that numbers globally can open the file again without reusing a
// key.
func nextFeedNo(tx *bbolt.Tx, collection string) (uint64, error) {
	info, feed := tx.Bucket(bucketInfo), tx.Bucket(bucketFeed)
	ck := feedCounterKey(collection)
	var last uint64
	if v := info.Get(ck); v != nil {
		if len(v) != 8 {
			return 0, fmt.Errorf("%w: feed counter of %s: %d bytes", errCorrupt, collection, len(v))
		}
		last = binary.BigEndian.Uint64(v)
	} else {
		// The collection's last key: the one before "<collection>0", the
		// first key past every "<collection>/…" ('0' follows '/').
		prefix := feedPrefix(collection)
		c := feed.Cursor()
		k, _ := c.Seek([]byte(collection + "0"))
		if k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		if k != nil && bytes.HasPrefix(k, prefix) {
			if len(k) != len(prefix)+8 {
				return 0, fmt.Errorf("%w: feed key %q", errCorrupt, k)
			}
			last = binary.BigEndian.Uint64(k[len(prefix):])
		}
	}
	n := last + 1
	if err := info.Put(ck, binary.BigEndian.AppendUint64(nil, n)); err != nil {
		return 0, fmt.Errorf("put feed counter %s: %w", collection, err)
	}
	if feed.Sequence() < n {
		if err := feed.SetSequence(n); err != nil {
			return 0, fmt.Errorf("feed sequence: %w", err)
		}
	} else if _, err := feed.NextSequence(); err != nil {
		return 0, fmt.Errorf("feed sequence: %w", err)
	}
	return n, nil
}
