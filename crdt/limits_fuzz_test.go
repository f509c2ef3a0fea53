package crdt

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzSplitLimits: with a small operation bound, every input either splits
// into changes within the bound that re-join to the input, or fails with
// ErrInvalidChange (and ErrChunkTooLarge when only the bounds were
// exceeded). Run-length columns and deflated chunks make the bound the
// interesting part: the seeds include a change of 2000 ops in 128 bytes.
func FuzzSplitLimits(f *testing.F) {
	for _, name := range []string{"scalars", "nested", "compressed", "text"} {
		f.Add(goldenChanges(f, name), uint16(50))
	}
	f.Add(deflateBomb(f, 1<<16), uint16(1000))
	f.Fuzz(func(t *testing.T, b []byte, maxOps uint16) {
		limit := int(maxOps) + 1
		cs, err := ParseChanges(b, Limits{MaxChunkBytes: 1 << 20, MaxOps: limit})
		if err != nil {
			if !errors.Is(err, ErrInvalidChange) {
				t.Fatalf("error %v does not wrap ErrInvalidChange", err)
			}
			return
		}
		for _, c := range cs {
			if c.Ops > limit {
				t.Fatalf("change with %d ops passed a bound of %d", c.Ops, limit)
			}
		}
		if !bytes.Equal(Join(cs), b) {
			t.Fatal("Join(SplitLimits(b)) != b")
		}
	})
}

// FuzzTx: whatever bytes a client pushes to an empty record, the write
// path (ParseChanges with the engine's default limits, then a Tx) refuses
// them with ErrInvalidChange or ErrMissingDeps, or accepts changes that a
// document materializes without error. The seeds are issue 18's crafted
// changes (testdata/fuzz/FuzzTx): 50,000 unchained sets of one root key in
// 64 bytes, and a 98-byte change chained on it (refused: see
// TestCraftedRunLengthChanges in server).
func FuzzTx(f *testing.F) {
	for _, name := range []string{"scalars", "nested", "text"} {
		f.Add(goldenChanges(f, name))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cs, err := ParseChanges(b, Limits{MaxChunkBytes: 1 << 20})
		if err != nil {
			if !errors.Is(err, ErrInvalidChange) {
				t.Fatalf("ParseChanges error %v does not wrap ErrInvalidChange", err)
			}
			return
		}
		ix := NewIndex()
		tx := ix.Begin()
		added, err := tx.Add(cs)
		if err != nil {
			if !errors.Is(err, ErrInvalidChange) && !errors.Is(err, ErrMissingDeps) {
				t.Fatalf("Tx.Add error %v is neither ErrInvalidChange nor ErrMissingDeps", err)
			}
			return
		}
		if err := NewDoc().Apply(added); err != nil {
			t.Fatalf("changes a Tx accepted do not materialize: %v", err)
		}
	})
}
