package bolt

import (
	"errors"
	"slices"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
)

func TestMeta_RoundTrip(t *testing.T) {
	tests := []meta{
		{UpdatedAt: time.Unix(0, 0).UTC()},
		{Seq: 1, FeedNo: 1, UpdatedAt: time.Unix(0, 1).UTC(), Heads: []string{"a"}},
		{Seq: 1 << 60, SnapSeq: 1 << 59, Size: -1, FeedNo: 1<<64 - 1, UpdatedAt: time.Date(2026, 11, 26, 1, 2, 3, 4, time.UTC),
			Heads: []string{"", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "x"}},
		{Seq: 2, FeedNo: 2, UpdatedAt: time.Unix(5, 0).UTC(), Heads: []string{"b"}, DeletedAt: time.Unix(4, 7).UTC()},
	}
	for _, m := range tests {
		if v := m.encode()[0]; (v == metaVersionLifecycle) != !m.DeletedAt.IsZero() {
			t.Fatalf("%+v encodes as version %d", m, v)
		}
		got, err := decodeMeta(m.encode())
		if err != nil {
			t.Fatalf("decodeMeta(encode(%+v)) = %v", m, err)
		}
		if got.Seq != m.Seq || got.SnapSeq != m.SnapSeq || got.Size != m.Size || got.FeedNo != m.FeedNo ||
			!got.UpdatedAt.Equal(m.UpdatedAt) || !got.DeletedAt.Equal(m.DeletedAt) ||
			!slices.Equal(got.Heads, m.Heads) {
			t.Fatalf("round trip of %+v = %+v", m, got)
		}
	}
}

func TestMeta_Corrupt(t *testing.T) {
	good := (&meta{Seq: 3, SnapSeq: 1, FeedNo: 9, Heads: []string{"abc", "def"}}).encode()
	tests := map[string][]byte{
		"empty":             nil,
		"unknown version":   append([]byte{9}, good[1:]...),
		"truncated":         good[:len(good)-1],
		"trailing byte":     append(slices.Clone(good), 0),
		"snap beyond seq":   (&meta{Seq: 1, SnapSeq: 2}).encode(),
		"huge head count":   append(slices.Clone(good[:len(good)-8]), 0xff, 0xff, 0xff, 0x0f),
		"only version byte": {metaVersion},
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeMeta(b); !errors.Is(err, errCorrupt) {
				t.Fatalf("decodeMeta = %v, want errCorrupt", err)
			}
		})
	}
}

// CountLog counts the entries of the store's log bucket (exported to the
// external tests only).
func CountLog(tb testing.TB, s *Store) int {
	tb.Helper()
	n := 0
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketLog).ForEach(func(k, v []byte) error { n++; return nil })
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// TestNextFeedNo_Upgrade: in a file numbered by one global sequence (before
// per-collection numbers), a collection continues after the largest number
// its feed holds, so that older cursors stay valid, and the bucket sequence
// stays at least every key, so that an older version never reuses one.
func TestNextFeedNo_Upgrade(t *testing.T) {
	db, err := bbolt.Open(t.TempDir()+"/old.db", 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error {
		if err := initLayout(tx); err != nil {
			return err
		}
		feed := tx.Bucket(bucketFeed)
		for _, k := range []struct {
			collection string
			n          uint64
		}{{"todo", 50}, {"todos", 7}, {"todos", 3}, {"todos0", 100}} {
			if err := feed.Put(feedKey(k.collection, k.n), []byte("x")); err != nil {
				return err
			}
		}
		if err := feed.SetSequence(100); err != nil {
			return err
		}
		var got []uint64
		for _, c := range []string{"todos", "todos", "todo", "todos0", "new"} {
			n, err := nextFeedNo(tx, c)
			if err != nil {
				return err
			}
			got = append(got, n)
		}
		if want := []uint64{8, 9, 51, 101, 1}; !slices.Equal(got, want) {
			t.Errorf("numbers %v, want %v", got, want)
		}
		if seq := feed.Sequence(); seq < 101 {
			t.Errorf("feed sequence %d, below the largest key 101", seq)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
