package lww

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

var boltBucket = []byte("lww")

// BoltStore keeps the baseline's records in one bbolt file, with fsync on
// every commit like dynamerge's embedded store. Concurrent Puts share
// commits through bbolt's Batch, the same group commit dynamerge gets.
type BoltStore struct{ db *bolt.DB }

var _ Store = (*BoltStore)(nil)

// OpenBolt opens (creating) the bbolt file at path.
func OpenBolt(path string) (*BoltStore, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lww: bolt %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		return nil, fmt.Errorf("lww: bolt %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(boltBucket)
		return err
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("lww: bolt %s: create bucket: %w", path, err)
	}
	return &BoltStore{db: db}, nil
}

// Put implements Store.Put in one transaction: read, compare, write.
func (s *BoltStore) Put(_ context.Context, key string, v Version) (Version, error) {
	var stored Version
	// Batch may run the function more than once; it only reads and
	// conditionally writes, so a rerun decides the same way.
	err := s.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(boltBucket)
		if cur := b.Get([]byte(key)); cur != nil {
			var old Version
			if err := json.Unmarshal(cur, &old); err != nil {
				return fmt.Errorf("decode stored %s: %w", key, err)
			}
			if !v.Stamp.After(old.Stamp) {
				stored = old
				return nil
			}
		}
		enc, err := json.Marshal(v)
		if err != nil {
			return err
		}
		stored = v
		return b.Put([]byte(key), enc)
	})
	if err != nil {
		return Version{}, fmt.Errorf("lww: bolt put %s: %w", key, err)
	}
	return stored, nil
}

// Get implements Store.Get.
func (s *BoltStore) Get(_ context.Context, key string) (Version, error) {
	var v Version
	err := s.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket(boltBucket).Get([]byte(key))
		if cur == nil {
			return ErrNotFound
		}
		return json.Unmarshal(cur, &v)
	})
	if err != nil {
		return Version{}, fmt.Errorf("lww: bolt get %s: %w", key, err)
	}
	return v, nil
}

// Close closes the file.
func (s *BoltStore) Close() error { return s.db.Close() }
