package store

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestEntryAttribution_RoundTrip(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 8000, time.UTC)
	for _, by := range [][]string{{"alice"}, {"alice", "alice", "bob", "", "", "alice"}, {""}, nil} {
		b := EncodeEntryAttribution(by, at)
		got, gotAt, err := DecodeEntryAttribution(b, 100)
		if err != nil || !slices.Equal(got, by) || !gotAt.Equal(at) {
			t.Fatalf("round trip of %q = %q %v %v", by, got, gotAt, err)
		}
	}
	if got, want := len(EncodeEntryAttribution([]string{"alice"}, at)), 1+8+1+1+5; got > want {
		t.Fatalf("a lone push's attribution takes %d bytes, want at most %d", got, want)
	}
	b := EncodeEntryAttribution([]string{"a", "a", "a"}, at)
	if _, _, err := DecodeEntryAttribution(b, 2); err == nil {
		t.Fatal("a run longer than the entry's changes decoded")
	}
	// Cut inside the header or inside a name: refused.
	for _, cut := range [][]byte{nil, b[:1], b[:len(b)-1]} {
		if _, _, err := DecodeEntryAttribution(cut, 100); err == nil {
			t.Fatalf("%d bytes of %d decoded", len(cut), len(b))
		}
	}
}

func TestRows_RoundTripChunkMerge(t *testing.T) {
	var rows []Attributed
	at := time.UnixMicro(1_700_000_000_123_456).UTC()
	for seq := uint64(1); seq <= 40; seq++ {
		for i := range int(seq % 4) {
			rows = append(rows, Attributed{Seq: seq, Hash: fmt.Sprintf("%064x", seq*10+uint64(i)), By: fmt.Sprint("u", i), At: at.Add(time.Duration(seq) * time.Second)})
		}
	}
	chunks := ChunkRows(rows, 600) // several per chunk, entries split
	if len(chunks) < 5 {
		t.Fatalf("%d chunks", len(chunks))
	}
	var decoded []RowChunk
	for _, c := range chunks {
		b, err := EncodeRows(c.Rows, c.First)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 600 {
			t.Fatalf("chunk of %d bytes over 600", len(b))
		}
		got, first, err := DecodeRows(b)
		if err != nil || first != c.First {
			t.Fatalf("DecodeRows: %v (first %d, want %d)", err, first, c.First)
		}
		decoded = append(decoded, RowChunk{Seq: got[0].Seq, First: first, Rows: got})
	}
	// Overlapping chunks (another compaction's) are merged away.
	overlap := append(slices.Clone(decoded[:3]), decoded...)
	slices.SortStableFunc(overlap, func(a, b RowChunk) int {
		if a.Seq != b.Seq {
			return int(a.Seq) - int(b.Seq)
		}
		return a.First - b.First
	})
	merged := MergeRows(overlap)
	if len(merged) != len(rows) {
		t.Fatalf("merged %d rows, want %d", len(merged), len(rows))
	}
	for i := range rows {
		if merged[i].Seq != rows[i].Seq || merged[i].Hash != rows[i].Hash || merged[i].By != rows[i].By || !merged[i].At.Equal(rows[i].At) {
			t.Fatalf("row %d = %+v, want %+v", i, merged[i], rows[i])
		}
	}
	if _, err := EncodeRows([]Attributed{{Seq: 1, Hash: "xyz"}}, 0); err == nil {
		t.Fatal("a bad hash encoded")
	}
	b, _ := EncodeRows(rows[:3], 0)
	for i := range len(b) - 1 {
		if _, _, err := DecodeRows(b[:i]); err == nil {
			t.Fatalf("%d of %d bytes decoded", i, len(b))
		}
	}
}
