package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/store"
)

// attrAt is the acceptance time the attribution cases give entry seq:
// whole microseconds, as the stores keep them.
func attrAt(seq uint64) time.Time {
	return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(seq) * time.Millisecond).Add(7 * time.Microsecond)
}

// attrBy is who pushed change i of entry seq in the attribution cases.
func attrBy(seq uint64, i int) string {
	if i%3 == 2 {
		return "" // without authentication
	}
	return fmt.Sprintf("user-%d", (int(seq)+i)%2)
}

// attributedEntry is entry seq of k with n changes and their attribution.
func attributedEntry(k store.Key, seq uint64, n int) store.Entry {
	// At least a byte per change, as real change chunks have many.
	e := store.Entry{Seq: seq, Changes: payload(k, seq, max(100, n)), At: attrAt(seq)}
	for i := range n {
		e.By = append(e.By, attrBy(seq, i))
	}
	return e
}

// rowsOf is what a compaction of entries from..to (each of n changes) keeps.
func rowsOf(k store.Key, from, to uint64, n int) []store.Attributed {
	var rows []store.Attributed
	for seq := from; seq <= to; seq++ {
		for i := range n {
			rows = append(rows, store.Attributed{Seq: seq, Hash: head(k, seq, i), By: attrBy(seq, i), At: attrAt(seq)})
		}
	}
	return rows
}

func checkEntryAttribution(tb testing.TB, got []store.Entry, k store.Key, n int) {
	tb.Helper()
	for _, e := range got {
		want := attributedEntry(k, e.Seq, n)
		if !slices.Equal(e.By, want.By) || !e.At.Equal(want.At) {
			tb.Fatalf("%s entry %d: by %q at %v, want by %q at %v", k, e.Seq, e.By, e.At, want.By, want.At)
		}
	}
}

func readAttribution(tb testing.TB, s store.Store, k store.Key) []store.Attributed {
	tb.Helper()
	rows, err := s.ReadAttribution(tb.Context(), k)
	if err != nil {
		tb.Fatalf("ReadAttribution(%s) = %v", k, err)
	}
	return rows
}

func checkRows(tb testing.TB, got, want []store.Attributed) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("ReadAttribution: %d rows, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Seq != w.Seq || g.Hash != w.Hash || g.By != w.By || !g.At.Equal(w.At) {
			tb.Fatalf("ReadAttribution row %d = %+v, want %+v", i, g, w)
		}
	}
}

// testAttributionEntries: an entry's attribution comes back with it from
// Load and ReadLog; one appended without it comes back without it.
func testAttributionEntries(t *testing.T, s store.Store) {
	ctx := t.Context()
	k := key("attributed")
	before := time.Now()
	for seq := uint64(1); seq <= 3; seq++ {
		if err := s.Append(ctx, k, attributedEntry(k, seq, 4), metaFor(k, seq)); err != nil {
			t.Fatalf("Append(%d) = %v", seq, err)
		}
	}
	rec := mustLoad(t, s, k)
	checkEntries(t, rec.Entries, k, 1, 3)
	checkEntryAttribution(t, rec.Entries, k, 4)
	if rec.UpdatedAt.Before(before.Add(-time.Minute)) || rec.UpdatedAt.After(time.Now().Add(time.Minute)) {
		t.Fatalf("Load.UpdatedAt = %v, want about %v", rec.UpdatedAt, before)
	}
	entries, err := s.ReadLog(ctx, k, 1)
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, entries, k, 2, 3)
	checkEntryAttribution(t, entries, k, 4)

	legacy := key("unattributed")
	mustAppend(t, s, legacy, 1)
	rec = mustLoad(t, s, legacy)
	if e := rec.Entries[0]; e.By != nil || !e.At.IsZero() {
		t.Fatalf("entry appended without attribution came back by %q at %v", e.By, e.At)
	}
	if rows := readAttribution(t, s, legacy); len(rows) != 0 {
		t.Fatalf("ReadAttribution of a record never compacted = %d rows, want none", len(rows))
	}
	if rows := readAttribution(t, s, key("never-written")); len(rows) != 0 {
		t.Fatalf("ReadAttribution of a missing record = %d rows", len(rows))
	}
}

// testAttributionCompaction: the rows a snapshot carries survive the
// removal of its entries; overlapping rows kept by two compactions (two
// processes that each had their own tail) come back once; an older
// snapshot's rows do not duplicate anything.
func testAttributionCompaction(t *testing.T, s store.Store) {
	ctx := t.Context()
	k := key("compacted")
	for seq := uint64(1); seq <= 6; seq++ {
		if err := s.Append(ctx, k, attributedEntry(k, seq, 2), metaFor(k, seq)); err != nil {
			t.Fatal(err)
		}
	}
	snap := func(seq, from uint64) {
		t.Helper()
		err := s.SaveSnapshot(ctx, k, store.Snapshot{Seq: seq, Data: []byte(fmt.Sprint("snap", seq)), Attribution: rowsOf(k, from, seq, 2)})
		if err != nil {
			t.Fatalf("SaveSnapshot(%d) = %v", seq, err)
		}
	}
	snap(3, 1)
	checkRows(t, readAttribution(t, s, k), rowsOf(k, 1, 3, 2))
	rec := mustLoad(t, s, k)
	checkEntries(t, rec.Entries, k, 4, 6)
	checkEntryAttribution(t, rec.Entries, k, 2)

	snap(5, 2) // a process whose tail began at 2: rows 2..3 again
	snap(4, 4) // older than the current snapshot: nothing changes
	checkRows(t, readAttribution(t, s, k), rowsOf(k, 1, 5, 2))
	if err := s.Append(ctx, k, attributedEntry(k, 7, 2), metaFor(k, 7)); err != nil {
		t.Fatal(err)
	}
	snap(7, 6)
	checkRows(t, readAttribution(t, s, k), rowsOf(k, 1, 7, 2))
}

// testAttributionLarge: rows of many changes (more than one backend item)
// come back whole and in order, also when one entry spans several items.
func testAttributionLarge(t *testing.T, s store.Store) {
	ctx := t.Context()
	k := key("many-attributed")
	const perEntry = 12000
	for seq := uint64(1); seq <= 2; seq++ {
		if err := s.Append(ctx, k, attributedEntry(k, seq, perEntry), metaFor(k, seq)); err != nil {
			t.Fatal(err)
		}
	}
	rows := rowsOf(k, 1, 2, perEntry)
	if err := s.SaveSnapshot(ctx, k, store.Snapshot{Seq: 2, Data: []byte("snap"), Attribution: rows}); err != nil {
		t.Fatal(err)
	}
	checkRows(t, readAttribution(t, s, k), rows)
}

// testAttributionPurge: a purge removes the purged history's rows; the
// new history's entries carry their own.
func testAttributionPurge(t *testing.T, s store.Store) {
	ctx := t.Context()
	k := key("purged-attributed")
	if err := s.Append(ctx, k, attributedEntry(k, 1, 1), metaFor(k, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(ctx, k, store.Snapshot{Seq: 1, Data: []byte("snap"), Attribution: rowsOf(k, 1, 1, 1)}); err != nil {
		t.Fatal(err)
	}
	m := metaFor(k, 2)
	m.Deleted = true
	if err := s.Append(ctx, k, attributedEntry(k, 2, 1), m); err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx, k, 2, []string{head(k, 1, 0)}); err != nil {
		t.Fatal(err)
	}
	if rows := readAttribution(t, s, k); len(rows) != 0 {
		t.Fatalf("ReadAttribution after a purge = %+v, want none", rows)
	}
	m = metaFor(k, 4)
	m.NewHistory = true
	if err := s.Append(ctx, k, attributedEntry(k, 4, 1), m); err != nil {
		t.Fatal(err)
	}
	rec := mustLoad(t, s, k)
	checkEntryAttribution(t, rec.Entries, k, 1)
}
