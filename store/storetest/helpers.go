package storetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/dynamerge/dynamerge/store"
)

// testCollection is the collection most cases write to.
const testCollection = "storetest"

func key(id string) store.Key { return store.Key{Collection: testCollection, ID: id} }

// payload returns n bytes that depend only on (k, seq, n): entries can be
// checked byte for byte without being kept, and any two differ. They are
// random-looking, with NULs and high bytes, as Automerge chunks are.
func payload(k store.Key, seq uint64, n int) []byte {
	seed := sha256.Sum256(binary.BigEndian.AppendUint64([]byte(k.String()), seq))
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(seed).Read(b) // ChaCha8.Read never fails
	return b
}

// head returns a head-like hex hash for (k, seq, i).
func head(k store.Key, seq uint64, i int) string {
	h := sha256.Sum256(binary.BigEndian.AppendUint64([]byte(k.String()), seq<<8|uint64(i)))
	return hex.EncodeToString(h[:])
}

// metaFor is the AppendMeta the helpers write with entry seq of k.
func metaFor(k store.Key, seq uint64) store.AppendMeta {
	return store.AppendMeta{Heads: []string{head(k, seq, 0)}, Size: int64(seq) * 100}
}

// mustAppend appends the standard 100-byte payload of (k, seq).
func mustAppend(tb testing.TB, s store.Store, k store.Key, seq uint64) {
	tb.Helper()
	if err := s.Append(tb.Context(), k, store.Entry{Seq: seq, Changes: payload(k, seq, 100)}, metaFor(k, seq)); err != nil {
		tb.Fatalf("Append(%s, seq %d) = %v, want nil", k, seq, err)
	}
}

// mustAppendRange appends seq from..to of k.
func mustAppendRange(tb testing.TB, s store.Store, k store.Key, from, to uint64) {
	tb.Helper()
	for seq := from; seq <= to; seq++ {
		mustAppend(tb, s, k, seq)
	}
}

// checkEntries checks that got holds exactly the standard payloads of k for
// seq from..to (none when from > to).
func checkEntries(tb testing.TB, got []store.Entry, k store.Key, from, to uint64) {
	tb.Helper()
	var want int
	if to >= from {
		want = int(to - from + 1)
	}
	if len(got) != want {
		tb.Fatalf("%s: got %d entries (%v), want seq %d..%d", k, len(got), seqs(got), from, to)
	}
	for i, e := range got {
		seq := from + uint64(i)
		if e.Seq != seq {
			tb.Fatalf("%s: entry %d has seq %d, want %d (all: %v)", k, i, e.Seq, seq, seqs(got))
		}
		if !bytes.Equal(e.Changes, payload(k, seq, 100)) {
			tb.Fatalf("%s: entry seq %d: %d bytes differ from what was appended", k, seq, len(e.Changes))
		}
	}
}

func seqs(es []store.Entry) []uint64 {
	s := make([]uint64, len(es))
	for i, e := range es {
		s[i] = e.Seq
	}
	return s
}

// mustLoad loads k, which must exist.
func mustLoad(tb testing.TB, s store.Store, k store.Key) *store.Record {
	tb.Helper()
	rec, err := s.Load(tb.Context(), k)
	if err != nil {
		tb.Fatalf("Load(%s) = %v, want nil", k, err)
	}
	if rec.Key != k {
		tb.Fatalf("Load(%s).Key = %v", k, rec.Key)
	}
	return rec
}

// checkRecord checks a whole Load: snapshot (seq and data, or none when
// snapSeq is 0) and the standard entries after it up to seq.
func checkRecord(tb testing.TB, s store.Store, k store.Key, snapSeq uint64, snapData []byte, seq uint64) {
	tb.Helper()
	rec := mustLoad(tb, s, k)
	if got, want := rec.Seq, seq; got != want {
		tb.Fatalf("Load(%s).Seq = %d, want %d", k, got, want)
	}
	switch {
	case snapSeq == 0 && rec.Snapshot != nil:
		tb.Fatalf("Load(%s).Snapshot = seq %d, want none", k, rec.Snapshot.Seq)
	case snapSeq != 0 && rec.Snapshot == nil:
		tb.Fatalf("Load(%s).Snapshot = nil, want seq %d", k, snapSeq)
	case snapSeq != 0 && rec.Snapshot.Seq != snapSeq:
		tb.Fatalf("Load(%s).Snapshot.Seq = %d, want %d", k, rec.Snapshot.Seq, snapSeq)
	case snapSeq != 0 && !bytes.Equal(rec.Snapshot.Data, snapData):
		tb.Fatalf("Load(%s).Snapshot.Data: %d bytes, differ from the %d saved", k, len(rec.Snapshot.Data), len(snapData))
	}
	checkEntries(tb, rec.Entries, k, snapSeq+1, seq)
}

// wantErr fails unless errors.Is(err, target).
func wantErr(tb testing.TB, what string, err, target error) {
	tb.Helper()
	if !errors.Is(err, target) {
		tb.Fatalf("%s = %v, want %v", what, err, target)
	}
}

// readFeed follows the feed of collection from cursor with page size limit
// until More is false, and returns every item in order (duplicates kept)
// and the last cursor. It checks the page-size bound on the way.
func readFeed(tb testing.TB, s store.Store, collection, cursor string, limit int) ([]store.FeedItem, string) {
	tb.Helper()
	var items []store.FeedItem
	for pages := 0; ; pages++ {
		if pages > 10000 {
			tb.Fatalf("feed %s: still More after %d pages", collection, pages)
		}
		page, err := s.Feed(tb.Context(), collection, cursor, limit)
		if err != nil {
			tb.Fatalf("Feed(%s, %q, %d) = %v", collection, cursor, limit, err)
		}
		if limit > 0 && len(page.Items) > limit {
			tb.Fatalf("Feed(%s, %q, %d) gave %d items", collection, cursor, limit, len(page.Items))
		}
		items = append(items, page.Items...)
		cursor = page.Cursor
		if !page.More {
			return items, cursor
		}
	}
}

// lastOrder returns the ids of items, each at the position of its last
// occurrence: the order of last change, whatever duplicates a backend gives.
func lastOrder(items []store.FeedItem) []string {
	var ids []string
	for i, it := range items {
		later := slices.ContainsFunc(items[i+1:], func(o store.FeedItem) bool { return o.ID == it.ID })
		if !later {
			ids = append(ids, it.ID)
		}
	}
	return ids
}

// ids returns the set of ids in items.
func ids(items []store.FeedItem) map[string]store.FeedItem {
	m := make(map[string]store.FeedItem, len(items))
	for _, it := range items {
		m[it.ID] = it // the last one wins: the freshest heads
	}
	return m
}
