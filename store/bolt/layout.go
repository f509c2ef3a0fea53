package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/dynamerge/dynamerge/store"
	"github.com/dynamerge/dynamerge/store/internal/wire"
)

// Bucket names; see the package documentation for what each holds.
var (
	bucketInfo = []byte("info")
	bucketLog  = []byte("log")
	bucketMeta = []byte("meta")
	bucketSnap = []byte("snap")
	bucketFeed = []byte("feed")
	// bucketDeleted indexes the records deleted and not purged, by when:
	// deletedKey → nothing. The purge sweep reads it in order.
	bucketDeleted = []byte("deleted")
	// bucketLogAttr holds the attribution of each log entry, under the
	// entry's log key (store.EncodeEntryAttribution), written and removed
	// with the entry.
	bucketLogAttr = []byte("logattr")
	// bucketAttr holds the attribution rows compactions kept, packed
	// (store.EncodeRows), under attrKey.
	bucketAttr = []byte("attr")

	allBuckets = [][]byte{bucketInfo, bucketLog, bucketMeta, bucketSnap, bucketFeed, bucketDeleted, bucketLogAttr, bucketAttr}
)

// The "info" bucket's "layout" key holds the layout version of the file, so
// that a later version of this package can recognise (and migrate) files of
// this one, and this one refuses files it does not understand.
var (
	infoLayout    = []byte("layout")
	layoutVersion = []byte("1")
)

// ErrLayout is returned by Open for a file written in a layout this version
// does not know, or one that is not a dynamerge store.
var ErrLayout = errors.New("bolt: unknown file layout")

// initLayout creates the buckets of a new file and checks the layout of an
// existing one.
func initLayout(tx *bbolt.Tx) error {
	if info := tx.Bucket(bucketInfo); info != nil {
		if v := info.Get(infoLayout); !bytes.Equal(v, layoutVersion) {
			return fmt.Errorf("%w: layout %q, this version reads %q", ErrLayout, v, layoutVersion)
		}
	} else if n := countBuckets(tx); n != 0 {
		return fmt.Errorf("%w: %d buckets but no layout version: not a dynamerge store", ErrLayout, n)
	}
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return tx.Bucket(bucketInfo).Put(infoLayout, layoutVersion)
}

func countBuckets(tx *bbolt.Tx) int {
	n := 0
	_ = tx.ForEach(func([]byte, *bbolt.Bucket) error { n++; return nil })
	return n
}

// errCorrupt marks data in the file that this code did not write the way it
// reads it: a bug or a damaged file, never a caller's mistake.
var errCorrupt = errors.New("bolt: corrupt data")

// recordKey is "<collection>/<id>", the key of meta and snap.
func recordKey(k store.Key) []byte { return []byte(k.String()) }

// parseRecordKey is the inverse of recordKey (collections hold no "/").
func parseRecordKey(b []byte) (store.Key, error) {
	col, id, ok := bytes.Cut(b, []byte("/"))
	k := store.Key{Collection: string(col), ID: string(id)}
	if !ok {
		return k, fmt.Errorf("record key %q", b)
	}
	return k, k.Validate()
}

// logPrefix is "<collection>/<id>/", under which a record's log entries sort
// by seq. The trailing "/" keeps id "a" from matching id "ab".
func logPrefix(k store.Key) []byte {
	b := make([]byte, 0, len(k.Collection)+len(k.ID)+2+8)
	b = append(b, k.Collection...)
	b = append(b, '/')
	b = append(b, k.ID...)
	return append(b, '/')
}

// logKey is logPrefix followed by seq, big-endian.
func logKey(k store.Key, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(logPrefix(k), seq)
}

// attrKey is logPrefix followed by the seq of a chunk's first row and its
// place in that entry, both big-endian: chunks sort in acceptance order.
func attrKey(k store.Key, seq uint64, first int) []byte {
	return binary.BigEndian.AppendUint32(logKey(k, seq), uint32(first))
}

// logSeq returns the seq of a key under prefix.
func logSeq(prefix, key []byte) (uint64, error) {
	if len(key) != len(prefix)+8 || !bytes.HasPrefix(key, prefix) {
		return 0, fmt.Errorf("%w: log key %q", errCorrupt, key)
	}
	return binary.BigEndian.Uint64(key[len(prefix):]), nil
}

// feedPrefix is "<collection>/", under which the feed sorts by change number.
func feedPrefix(collection string) []byte {
	b := make([]byte, 0, len(collection)+1+8)
	b = append(b, collection...)
	return append(b, '/')
}

// feedCounterKey is the info bucket's key for the last change number given
// out in collection: "feed/<collection>".
func feedCounterKey(collection string) []byte { return []byte("feed/" + collection) }

// feedKey is feedPrefix followed by the change number, big-endian.
func feedKey(collection string, n uint64) []byte {
	return binary.BigEndian.AppendUint64(feedPrefix(collection), n)
}

// meta is what the meta bucket holds per record.
type meta struct {
	Seq       uint64 // highest log seq written
	SnapSeq   uint64 // seq the snapshot covers; log entries <= it are gone
	Size      int64
	UpdatedAt time.Time
	FeedNo    uint64 // the record's current key in the feed bucket
	Heads     []string
	DeletedAt time.Time // when an append first marked it deleted; zero: not deleted
	Purged    bool      // the history was purged and nothing appended since
	PurgedSeq uint64    // log entries up to it were purged
	Roots     []string  // root changes of the purged histories
}

// floor is the seq up to which the log holds no entries (compacted into
// the snapshot, or purged).
func (m *meta) floor() uint64 { return max(m.SnapSeq, m.PurgedSeq) }

func (m *meta) lifecycle() bool {
	return !m.DeletedAt.IsZero() || m.Purged || m.PurgedSeq > 0 || len(m.Roots) > 0
}

// deletedKey orders the deleted index: when, then which record.
func deletedKey(at time.Time, key store.Key) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano())), recordKey(key)...)
}

// Meta versions: 1 has no lifecycle; 2 adds DeletedAt, the purge state and
// the purged roots. Records that were never deleted keep version 1, so
// files stay readable by older binaries until something is deleted.
const (
	metaVersion          = 1
	metaVersionLifecycle = 2
)

func (m *meta) encode() []byte {
	n := 1 + 6*binary.MaxVarintLen64
	for _, h := range m.Heads {
		n += binary.MaxVarintLen64 + len(h)
	}
	b := make([]byte, 0, n+binary.MaxVarintLen64)
	version := byte(metaVersion)
	if m.lifecycle() {
		version = metaVersionLifecycle
		for _, r := range m.Roots {
			n += binary.MaxVarintLen64 + len(r)
		}
	}
	b = append(b, version)
	b = binary.AppendUvarint(b, m.Seq)
	b = binary.AppendUvarint(b, m.SnapSeq)
	b = binary.AppendVarint(b, m.Size)
	b = binary.AppendVarint(b, m.UpdatedAt.UnixNano())
	b = binary.AppendUvarint(b, m.FeedNo)
	b = binary.AppendUvarint(b, uint64(len(m.Heads)))
	for _, h := range m.Heads {
		b = binary.AppendUvarint(b, uint64(len(h)))
		b = append(b, h...)
	}
	if version == metaVersionLifecycle {
		var del int64
		if !m.DeletedAt.IsZero() {
			del = m.DeletedAt.UnixNano()
		}
		b = binary.AppendVarint(b, del)
		var purged byte
		if m.Purged {
			purged = 1
		}
		b = append(b, purged)
		b = binary.AppendUvarint(b, m.PurgedSeq)
		b = binary.AppendUvarint(b, uint64(len(m.Roots)))
		for _, r := range m.Roots {
			b = binary.AppendUvarint(b, uint64(len(r)))
			b = append(b, r...)
		}
	}
	return b
}

// decodeMeta parses b; it copies what it keeps, so b may be bbolt's memory.
func decodeMeta(b []byte) (*meta, error) {
	d := wire.Decoder{B: b}
	version := d.Byte()
	if version != metaVersion && version != metaVersionLifecycle {
		return nil, fmt.Errorf("%w: meta version %d", errCorrupt, version)
	}
	m := &meta{
		Seq:     d.Uvarint(),
		SnapSeq: d.Uvarint(),
		Size:    d.Varint(),
	}
	m.UpdatedAt = time.Unix(0, d.Varint()).UTC()
	m.FeedNo = d.Uvarint()
	nh := d.Uvarint()
	if d.Err == nil && nh > uint64(len(d.B)) { // each head takes at least one byte
		d.Err = errors.New("head count beyond data")
	}
	if d.Err == nil && nh > 0 {
		m.Heads = make([]string, 0, nh)
	}
	for i := uint64(0); i < nh && d.Err == nil; i++ {
		m.Heads = append(m.Heads, string(d.Bytes(d.Uvarint())))
	}
	if version == metaVersionLifecycle {
		if del := d.Varint(); del != 0 {
			m.DeletedAt = time.Unix(0, del).UTC()
		}
		m.Purged = d.Byte() == 1
		m.PurgedSeq = d.Uvarint()
		nr := d.Uvarint()
		if d.Err == nil && nr > uint64(len(d.B)) {
			d.Err = errors.New("root count beyond data")
		}
		for i := uint64(0); i < nr && d.Err == nil; i++ {
			m.Roots = append(m.Roots, string(d.Bytes(d.Uvarint())))
		}
	}
	if d.Err == nil && len(d.B) != 0 {
		d.Err = fmt.Errorf("%d trailing bytes", len(d.B))
	}
	if d.Err == nil && m.PurgedSeq > m.Seq {
		d.Err = fmt.Errorf("purged seq %d beyond seq %d", m.PurgedSeq, m.Seq)
	}
	if d.Err == nil && m.SnapSeq > m.Seq {
		d.Err = fmt.Errorf("snapshot seq %d beyond seq %d", m.SnapSeq, m.Seq)
	}
	if d.Err != nil {
		return nil, fmt.Errorf("%w: meta: %v", errCorrupt, d.Err)
	}
	return m, nil
}
