package crdt

import (
	"bytes"
	"testing"
)

// opsOf reads back the ops of a parsed change, deep-copied, with the
// change's actor table.
func opsOf(tb testing.TB, c *Change) ([]Op, [][]byte) {
	tb.Helper()
	var ops []Op
	var actors [][]byte
	err := c.readOps(func(op *Op, as [][]byte) error {
		o := *op
		o.Pred = append([]OpID(nil), op.Pred...)
		o.Value.Raw = bytes.Clone(op.Value.Raw)
		ops = append(ops, o)
		actors = as
		return nil
	})
	if err != nil {
		tb.Fatalf("readOps: %v", err)
	}
	if actors == nil {
		actors = [][]byte{c.Actor}
	}
	return ops, actors
}

// TestEncodeChangeRoundTrip re-encodes every golden change (made by
// Automerge JS) from its parsed ops and requires the very same hash: the
// encoder writes what Automerge writes.
func TestEncodeChangeRoundTrip(t *testing.T) {
	for _, g := range loadGolden(t) {
		t.Run(g.name, func(t *testing.T) {
			changes, err := Split(g.changes)
			if err != nil {
				t.Fatalf("Split: %v", err)
			}
			for _, c := range changes {
				ops, actors := opsOf(t, &c)
				got, err := EncodeChange(ChangeHeader{Deps: c.Deps, Seq: c.Seq, StartOp: c.StartOp, Time: c.Time, Message: c.Message}, actors, 0, ops)
				if err != nil {
					t.Fatalf("EncodeChange: %v", err)
				}
				if got.Hash != c.Hash {
					t.Fatalf("change %s re-encodes to %s\n got % x\nwant % x", c.Hash, got.Hash, got.Raw, c.Raw)
				}
				if _, err := Split(got.Raw); err != nil {
					t.Fatalf("re-encoded change does not parse: %v", err)
				}
			}
		})
	}
}
