package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/dynamerge/dynamerge/store"
)

func testLoadMissing(t *testing.T, s store.Store) {
	_, err := s.Load(t.Context(), key("missing"))
	wantErr(t, "Load(missing)", err, store.ErrNotFound)

	// Another record existing changes nothing, even one whose id extends it.
	mustAppend(t, s, key("missing2"), 1)
	_, err = s.Load(t.Context(), key("missing"))
	wantErr(t, "Load(missing) beside missing2", err, store.ErrNotFound)
}

func testAppendSequence(t *testing.T, s store.Store) {
	k := key("seq")
	mustAppendRange(t, s, k, 1, 3)
	checkRecord(t, s, k, 0, nil, 3)
	got, err := s.ReadLog(t.Context(), k, 0)
	if err != nil {
		t.Fatalf("ReadLog(0) = %v", err)
	}
	checkEntries(t, got, k, 1, 3)
}

func testAppendWrongSeq(t *testing.T, s store.Store) {
	k := key("wrong")
	mustAppendRange(t, s, k, 1, 2)
	for _, seq := range []uint64{0, 1, 2, 4, 100} {
		t.Run(fmt.Sprintf("seq%d", seq), func(t *testing.T) {
			e := store.Entry{Seq: seq, Changes: []byte("must not be written")}
			m := store.AppendMeta{Heads: []string{head(k, 999, 0)}, Size: 1}
			wantErr(t, fmt.Sprintf("Append(seq %d) at seq 2", seq), s.Append(t.Context(), k, e, m), store.ErrConflict)
			checkRecord(t, s, k, 0, nil, 2) // nothing written
		})
	}
	// The failed appends did not touch the feed either.
	items, _ := readFeed(t, s, testCollection, "", 0)
	if len(items) == 0 || !equalHeads(items[len(items)-1].Heads, metaFor(k, 2).Heads) {
		t.Fatalf("feed after conflicts = %+v, want %s with the heads of seq 2", items, k.ID)
	}

	// A gap on a record that does not exist yet creates nothing.
	fresh := key("wrong-fresh")
	err := s.Append(t.Context(), fresh, store.Entry{Seq: 2, Changes: []byte("x")}, metaFor(fresh, 2))
	wantErr(t, "Append(seq 2) of a new record", err, store.ErrConflict)
	_, err = s.Load(t.Context(), fresh)
	wantErr(t, "Load after a refused first Append", err, store.ErrNotFound)
	items, _ = readFeed(t, s, testCollection, "", 0)
	if _, ok := ids(items)[fresh.ID]; ok {
		t.Fatalf("feed lists %s after a refused Append", fresh.ID)
	}
}

// testAppendRace has N writers claim the same seq at once, round after
// round: exactly one must win each round, and its bytes must be the ones
// stored.
func testAppendRace(t *testing.T, s store.Store) {
	const writers, rounds = 16, 3
	k := key("race")
	for seq := uint64(1); seq <= rounds; seq++ {
		var (
			start = make(chan struct{})
			wg    sync.WaitGroup
			errs  = make([]error, writers)
		)
		for w := range writers {
			wg.Go(func() {
				<-start
				e := store.Entry{Seq: seq, Changes: payload(k, seq*1000+uint64(w), 100)}
				errs[w] = s.Append(t.Context(), k, e, metaFor(k, seq))
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for w, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("seq %d: writers %d and %d both won", seq, winner, w)
			case err == nil:
				winner = w
			case !errors.Is(err, store.ErrConflict):
				t.Fatalf("seq %d: writer %d: %v, want nil or ErrConflict", seq, w, err)
			}
		}
		if winner < 0 {
			t.Fatalf("seq %d: no writer won", seq)
		}
		got, err := s.ReadLog(t.Context(), k, seq-1)
		if err != nil {
			t.Fatalf("ReadLog(%d) = %v", seq-1, err)
		}
		if len(got) != 1 || got[0].Seq != seq || !bytes.Equal(got[0].Changes, payload(k, seq*1000+uint64(winner), 100)) {
			t.Fatalf("seq %d: log holds %v, want the winner's (writer %d) entry alone", seq, seqs(got), winner)
		}
	}
}

func testAppendCancelled(t *testing.T, s store.Store) {
	k := key("cancelled")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.Append(ctx, k, store.Entry{Seq: 1, Changes: payload(k, 1, 100)}, metaFor(k, 1))
	wantErr(t, "Append with a cancelled context", err, context.Canceled)
	_, err = s.Load(t.Context(), k)
	wantErr(t, "Load after a cancelled Append", err, store.ErrNotFound)
}

// testKeysDistinct writes records whose keys share prefixes, which a
// backend concatenating key parts could confuse.
func testKeysDistinct(t *testing.T, s store.Store) {
	keys := []store.Key{
		{Collection: "c", ID: "a"},
		{Collection: "c", ID: "ab"},
		{Collection: "c", ID: "a-b"},
		{Collection: "c", ID: "a_"},
		{Collection: "c", ID: "A"},
		{Collection: "ca", ID: "a"},
		{Collection: "c-a", ID: "a"},
		{Collection: "c_", ID: "a"},
	}
	for i, k := range keys {
		mustAppendRange(t, s, k, 1, uint64(i+1))
	}
	for i, k := range keys {
		checkRecord(t, s, k, 0, nil, uint64(i+1))
	}
	// A snapshot of one compacts that one alone.
	snap := []byte("snapshot of c/a")
	if err := s.SaveSnapshot(t.Context(), keys[0], store.Snapshot{Seq: 1, Data: snap}); err != nil {
		t.Fatalf("SaveSnapshot(%s) = %v", keys[0], err)
	}
	checkRecord(t, s, keys[0], 1, snap, 1)
	for i, k := range keys[1:] {
		checkRecord(t, s, k, 0, nil, uint64(i+2))
	}
}

func testAppendLarge(t *testing.T, s store.Store) {
	k := key("large")
	sizes := []int{3 << 20, 1 << 20, 1}
	for i, n := range sizes {
		seq := uint64(i + 1)
		if err := s.Append(t.Context(), k, store.Entry{Seq: seq, Changes: payload(k, seq, n)}, metaFor(k, seq)); err != nil {
			t.Fatalf("Append(seq %d, %d bytes) = %v", seq, n, err)
		}
	}
	check := func(what string, got []store.Entry) {
		t.Helper()
		if len(got) != len(sizes) {
			t.Fatalf("%s: %d entries, want %d", what, len(got), len(sizes))
		}
		for i, n := range sizes {
			seq := uint64(i + 1)
			if got[i].Seq != seq || !bytes.Equal(got[i].Changes, payload(k, seq, n)) {
				t.Fatalf("%s: entry %d (seq %d, %d bytes) differs from the %d bytes of seq %d", what, i, got[i].Seq, len(got[i].Changes), n, seq)
			}
		}
	}
	rec := mustLoad(t, s, k)
	check("Load", rec.Entries)
	got, err := s.ReadLog(t.Context(), k, 0)
	if err != nil {
		t.Fatalf("ReadLog = %v", err)
	}
	check("ReadLog", got)

	big := payload(k, 99, 2<<20)
	if err := s.SaveSnapshot(t.Context(), k, store.Snapshot{Seq: 2, Data: big}); err != nil {
		t.Fatalf("SaveSnapshot(2 MiB) = %v", err)
	}
	rec = mustLoad(t, s, k)
	if rec.Snapshot == nil || rec.Snapshot.Seq != 2 || !bytes.Equal(rec.Snapshot.Data, big) {
		t.Fatalf("Load after a 2 MiB snapshot: snapshot differs")
	}
	if len(rec.Entries) != 1 || rec.Entries[0].Seq != 3 || !bytes.Equal(rec.Entries[0].Changes, payload(k, 3, 1)) {
		t.Fatalf("Load after a 2 MiB snapshot: entries %v, want seq 3", seqs(rec.Entries))
	}
}

func testAppendAfterSnapshot(t *testing.T, s store.Store) {
	k := key("after-snap")
	mustAppendRange(t, s, k, 1, 3)
	snap := []byte("doc@2")
	if err := s.SaveSnapshot(t.Context(), k, store.Snapshot{Seq: 2, Data: snap}); err != nil {
		t.Fatalf("SaveSnapshot = %v", err)
	}
	for _, seq := range []uint64{0, 1, 2, 3, 5} {
		err := s.Append(t.Context(), k, store.Entry{Seq: seq, Changes: []byte("no")}, metaFor(k, seq))
		wantErr(t, fmt.Sprintf("Append(seq %d) at seq 3 after a snapshot at 2", seq), err, store.ErrConflict)
	}
	mustAppend(t, s, k, 4)
	checkRecord(t, s, k, 2, snap, 4)
}

func testReadLogAfter(t *testing.T, s store.Store) {
	k := key("readlog")
	mustAppendRange(t, s, k, 1, 5)
	for _, after := range []uint64{0, 1, 2, 4, 5, 6, 1000} {
		t.Run(fmt.Sprintf("after%d", after), func(t *testing.T) {
			got, err := s.ReadLog(t.Context(), k, after)
			if err != nil {
				t.Fatalf("ReadLog(%d) = %v", after, err)
			}
			checkEntries(t, got, k, after+1, 5)
		})
	}
}

func testReadLogMissing(t *testing.T, s store.Store) {
	for _, after := range []uint64{0, 3} {
		got, err := s.ReadLog(t.Context(), key("nothing"), after)
		if err != nil || len(got) != 0 {
			t.Fatalf("ReadLog(missing, %d) = %v, %v; want empty, nil", after, seqs(got), err)
		}
	}
}

func testReadLogCompacted(t *testing.T, s store.Store) {
	k := key("compacted")
	mustAppendRange(t, s, k, 1, 5)
	if err := s.SaveSnapshot(t.Context(), k, store.Snapshot{Seq: 3, Data: []byte("doc@3")}); err != nil {
		t.Fatalf("SaveSnapshot = %v", err)
	}
	for _, after := range []uint64{0, 1, 2} {
		got, err := s.ReadLog(t.Context(), k, after)
		// SaveSnapshot "may" remove entries: a store that kept them must
		// still return them whole; one that removed them must say so.
		if err == nil {
			checkEntries(t, got, k, after+1, 5)
			continue
		}
		wantErr(t, fmt.Sprintf("ReadLog(%d) below a snapshot at 3", after), err, store.ErrCompacted)
	}
	for _, after := range []uint64{3, 4, 5} {
		got, err := s.ReadLog(t.Context(), k, after)
		if err != nil {
			t.Fatalf("ReadLog(%d) at or above the snapshot = %v", after, err)
		}
		checkEntries(t, got, k, after+1, 5)
	}
}

func testSnapshotLoad(t *testing.T, s store.Store) {
	k := key("snap")
	mustAppendRange(t, s, k, 1, 4)
	tests := []struct {
		seq  uint64
		data []byte
	}{
		{2, []byte("doc@2\x00\xff")},
		{4, []byte("doc@4")}, // covering the whole log: Load gives no entries
	}
	for _, tt := range tests {
		if err := s.SaveSnapshot(t.Context(), k, store.Snapshot{Seq: tt.seq, Data: tt.data}); err != nil {
			t.Fatalf("SaveSnapshot(%d) = %v", tt.seq, err)
		}
		checkRecord(t, s, k, tt.seq, tt.data, 4)
	}
}

func testSnapshotOlder(t *testing.T, s store.Store) {
	k := key("snap-older")
	mustAppendRange(t, s, k, 1, 4)
	newer := []byte("doc@3")
	if err := s.SaveSnapshot(t.Context(), k, store.Snapshot{Seq: 3, Data: newer}); err != nil {
		t.Fatalf("SaveSnapshot(3) = %v", err)
	}
	for _, seq := range []uint64{0, 2, 3} {
		if err := s.SaveSnapshot(t.Context(), k, store.Snapshot{Seq: seq, Data: []byte("stale")}); err != nil {
			t.Fatalf("SaveSnapshot(%d) under a snapshot at 3 = %v, want nil (ignored)", seq, err)
		}
		checkRecord(t, s, k, 3, newer, 4)
	}
}

func testSnapshotBeyond(t *testing.T, s store.Store) {
	k := key("snap-beyond")
	mustAppendRange(t, s, k, 1, 2)
	err := s.SaveSnapshot(t.Context(), k, store.Snapshot{Seq: 3, Data: []byte("doc@3")})
	wantErr(t, "SaveSnapshot(3) at seq 2", err, store.ErrConflict)
	checkRecord(t, s, k, 0, nil, 2)

	missing := key("snap-missing")
	err = s.SaveSnapshot(t.Context(), missing, store.Snapshot{Seq: 1, Data: []byte("doc@1")})
	wantErr(t, "SaveSnapshot(1) of a missing record", err, store.ErrConflict)
	_, err = s.Load(t.Context(), missing)
	wantErr(t, "Load after a refused snapshot", err, store.ErrNotFound)
}

func testSnapshotIdempotent(t *testing.T, s store.Store) {
	k := key("snap-twice")
	mustAppendRange(t, s, k, 1, 3)
	snap := store.Snapshot{Seq: 2, Data: []byte("doc@2")}
	for i := range 2 {
		if err := s.SaveSnapshot(t.Context(), k, snap); err != nil {
			t.Fatalf("SaveSnapshot #%d = %v", i+1, err)
		}
		checkRecord(t, s, k, 2, snap.Data, 3)
	}
}

func testInvalidKey(t *testing.T, s store.Store) {
	bad := []store.Key{
		{Collection: "Bad", ID: "x"},
		{Collection: "c/d", ID: "x"},
		{Collection: "c", ID: "a/b"},
		{Collection: "c", ID: ""},
		{Collection: "", ID: "x"},
	}
	for _, k := range bad {
		t.Run(fmt.Sprintf("%q", k.String()), func(t *testing.T) {
			_, err := s.Load(t.Context(), k)
			wantErr(t, "Load", err, store.ErrInvalidKey)
			_, err = s.ReadLog(t.Context(), k, 0)
			wantErr(t, "ReadLog", err, store.ErrInvalidKey)
			err = s.Append(t.Context(), k, store.Entry{Seq: 1, Changes: []byte("x")}, store.AppendMeta{})
			wantErr(t, "Append", err, store.ErrInvalidKey)
			err = s.SaveSnapshot(t.Context(), k, store.Snapshot{Seq: 1, Data: []byte("x")})
			wantErr(t, "SaveSnapshot", err, store.ErrInvalidKey)
		})
	}
	for _, c := range []string{"", "Bad", "c/d", "c\x00"} {
		_, err := s.Feed(t.Context(), c, "", 10)
		wantErr(t, fmt.Sprintf("Feed(%q)", c), err, store.ErrInvalidKey)
	}
	// Nothing was written under any spelling.
	for _, c := range []string{"c", "bad"} {
		if items, _ := readFeed(t, s, c, "", 0); len(items) != 0 {
			t.Fatalf("feed %s lists %+v after invalid writes", c, items)
		}
	}
}

func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping = %v", err)
	}
}

// testParallel has many goroutines write many records at once, each reading
// its own writes back as it goes.
func testParallel(t *testing.T, s store.Store) {
	const workers, perWorker, lastSeq = 16, 4, 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for seq := uint64(1); seq <= lastSeq; seq++ {
				for r := range perWorker {
					k := key(fmt.Sprintf("par-%d-%d", w, r))
					if err := s.Append(t.Context(), k, store.Entry{Seq: seq, Changes: payload(k, seq, 100)}, metaFor(k, seq)); err != nil {
						errs <- fmt.Errorf("Append(%s, %d): %w", k, seq, err)
						return
					}
					got, err := s.ReadLog(t.Context(), k, seq-1)
					if err != nil || len(got) != 1 || !bytes.Equal(got[0].Changes, payload(k, seq, 100)) {
						errs <- fmt.Errorf("ReadLog(%s, %d) right after its Append = %v entries, %v", k, seq-1, seqs(got), err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	items, _ := readFeed(t, s, testCollection, "", 7)
	feed := ids(items)
	for w := range workers {
		for r := range perWorker {
			k := key(fmt.Sprintf("par-%d-%d", w, r))
			checkRecord(t, s, k, 0, nil, lastSeq)
			if it, ok := feed[k.ID]; !ok || !equalHeads(it.Heads, metaFor(k, lastSeq).Heads) {
				t.Fatalf("feed item of %s = %+v (listed: %v), want the heads of seq %d", k, it, ok, lastSeq)
			}
		}
	}
	if got, want := len(feed), workers*perWorker; got != want {
		t.Fatalf("feed lists %d records, want %d", got, want)
	}
}

func testClose(t *testing.T, s store.Store) {
	mustAppend(t, s, key("close"), 1)
	for i := range 2 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close #%d = %v, want nil", i+1, err)
		}
	}
}
