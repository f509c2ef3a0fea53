package store

import "context"

// Change tells that a record's log reached Seq: the Append of entry Seq
// returned nil somewhere, in this process or in any other sharing the
// backend.
type Change struct {
	Key Key
	// Seq is the seq of the entry that was appended.
	Seq uint64
	// Heads are the record's heads after that entry (AppendMeta.Heads of the
	// Append: hex change hashes, sorted).
	Heads []string
	// Deleted is AppendMeta.Deleted of the Append.
	Deleted bool
	// Gap, when true, says that changes may have been missed before this one
	// (the watcher lost its place in the backend's change stream and had to
	// skip ahead). Key, Seq and Heads are zero then. A consumer that keeps
	// state derived from Changes must treat every record as possibly changed.
	Gap bool
}

// Watcher is implemented by stores that several processes share and that can
// tell each process about the appends made by all of them (store/dynamo
// does, through DynamoDB Streams). It is optional: a single-process store
// such as store/bolt need not implement it, because the engine already tells
// its subscribers about the writes it makes itself. Check for it with a type
// assertion: st.(store.Watcher).
//
// The contract, which every implementation documents how it meets:
//
//   - Coverage: every Append that returns nil after Watch has returned is
//     reported, whichever process made it, including the watching process's
//     own appends (the backend does not know who wrote; consumers that
//     already know about their own writes drop them by Key and Seq). Appends
//     that completed before Watch was called are not reported.
//   - At least once: a Change may be delivered more than once (after a
//     reconnect the watcher resumes from the last position it is sure of, and
//     other writes to a record, such as a new snapshot, may repeat the latest
//     Seq). Consumers keep the highest Seq seen per record.
//   - Lag: Changes arrive after the Append returned, typically within a
//     second, but there is no upper bound: while the backend is unreachable
//     the watcher retries with backoff and catches up afterwards. Nothing may
//     depend on a Change for correctness; the log read with ReadLog is the
//     truth.
//   - Order: Changes of one record arrive in the order of their Seq, except
//     for repeats. Changes of different records are not ordered.
//   - Losses: when the watcher cannot resume where it stood (the backend
//     trimmed its change stream past that point, or the stream was replaced),
//     it delivers a Change with Gap set and goes on from the oldest point
//     still available.
//   - Back-pressure: a consumer that does not receive makes the watcher wait;
//     nothing is dropped to keep up.
//   - End: the channel is closed when ctx is done or the store is closed,
//     after the watcher's goroutines have stopped.
type Watcher interface {
	// Watch starts watching every record of the store and returns once it is
	// in place, so that appends made after it returns are reported. It
	// returns an error, and no channel, when the backend cannot be watched
	// (not reachable, or not set up for it: a DynamoDB table without Streams,
	// say); the caller may call Watch again later. Each call is an
	// independent watch.
	Watch(ctx context.Context) (<-chan Change, error)
}
