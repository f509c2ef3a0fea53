// Package storetest is the conformance suite of store.Store: every
// implementation runs Run against fresh stores of its own, and passes it
// whole, so that the engine can rely on the contracts in store.Store whatever
// the backend.
//
// # Use
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s := open(t) // a fresh, empty store
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// open must return an empty store (or one whose collections no other call of
// open shares) and arrange for it to be closed; Run calls Close itself in the
// Close case, so Close must tolerate a second call. The suite takes a few
// seconds against bbolt on a laptop disk.
package storetest

import (
	"testing"

	"github.com/dynamerge/dynamerge/store"
)

// Run runs every conformance case as a subtest, each on a fresh store from
// open.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	cases := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Load/Missing", testLoadMissing},
		{"Append/Sequence", testAppendSequence},
		{"Append/WrongSeq", testAppendWrongSeq},
		{"Append/Race", testAppendRace},
		{"Append/CancelledContext", testAppendCancelled},
		{"Append/KeysAreDistinct", testKeysDistinct},
		{"Append/Large", testAppendLarge},
		{"Append/AfterSnapshot", testAppendAfterSnapshot},
		{"ReadLog/After", testReadLogAfter},
		{"ReadLog/Missing", testReadLogMissing},
		{"ReadLog/Compacted", testReadLogCompacted},
		{"Snapshot/LoadAfter", testSnapshotLoad},
		{"Snapshot/OlderIgnored", testSnapshotOlder},
		{"Snapshot/BeyondLog", testSnapshotBeyond},
		{"Snapshot/Idempotent", testSnapshotIdempotent},
		{"Feed/Empty", testFeedEmpty},
		{"Feed/Paging", testFeedPaging},
		{"Feed/ChangedAgain", testFeedChangedAgain},
		{"Feed/OtherCollections", testFeedOtherCollections},
		{"Feed/FollowSeesAll", testFeedFollow},
		{"Feed/Heads", testFeedHeads},
		{"Feed/InvalidCursor", testFeedInvalidCursor},
		{"Attribution/Entries", testAttributionEntries},
		{"Attribution/Compaction", testAttributionCompaction},
		{"Attribution/Large", testAttributionLarge},
		{"Attribution/Purge", testAttributionPurge},
		{"Lifecycle/Deleted", testDeleted},
		{"Lifecycle/Purge", testPurge},
		{"InvalidKey", testInvalidKey},
		{"Ping", testPing},
		{"Parallel", testParallel},
		{"Close", testClose},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.fn(t, open(t))
		})
	}
}
