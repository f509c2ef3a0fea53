// Package dynamo is the production store.Store, on one Amazon DynamoDB table
// (github.com/aws/aws-sdk-go-v2/service/dynamodb). Any number of dynamerge
// processes may share the table: every write that could race is
// conditional, and no process keeps state another cannot read.
//
// The layout (keys, items, attributes) is in layout.go and, for people, in
// schema/dynamodb.md; the table definition in TableDefinition and in
// schema/cloudformation.yaml.
//
// # Appends
//
// Append of an entry that fits one item is two single-item writes, not a
// transaction (which bills every item twice): after a consistent read of
// the meta item (the record must be at the seq before, so seqs stay
// gap-free), it puts the log item on condition that it does not exist —
// the claim of the seq, and the commit point: from then on every read
// returns the entry — and then updates the meta item (seq, heads, feed
// index keys, the stream image) on condition that its seq is still the one
// before. A lone push costs 4 write units with the feed index (16 as a
// transaction on DynamoDB Local).
//
// A crash between the two writes leaves at most one entry per record past
// the meta's seq. Its log item carries what the meta update writes, so
// anyone completes it identically (rollForward): the next writer before it
// claims the next seq, a SaveSnapshot that includes it, a Purge that finds
// it (and refuses to discard it: its transaction puts a marker at the next
// log item only if nothing is there),
// and any reader once it is older than PendingGrace. Reads return it at
// once: ReadLog queries the log and the meta item in one Query, Load reads
// the log past the meta's seq. A purge that commits between a writer's read
// and its put leaves that put under the tombstone's seq, where no read
// looks; the writer's meta update then fails and it answers
// store.ErrConflict, so nothing acknowledged is ever discarded.
//
// An entry of more than one item stays one TransactWriteItems of its log
// items and the meta update: a cancellation is read reason by reason
// (ConditionalCheckFailed is store.ErrConflict, TransactionConflict is
// retried a few times with jitter, throttling is store.ErrUnavailable).
//
// # Unknown outcomes
//
// A timeout, a lost response or an SDK retry that fails after an earlier
// attempt landed leave an Append's outcome unknown. An SDK retry of a put
// that landed fails its condition on our own item, which the failure
// returns (ReturnValuesOnConditionCheckFailure): same hash, the put landed.
// The SDK gives each transaction attempt an idempotency token
// (ClientRequestToken), so its own retries never apply one twice. After any
// other error, Append reads the entry's first log item and compares its
// SHA-256 with its own: equal means the write landed (Append goes on),
// another hash is store.ErrConflict, none is store.ErrUnavailable — and if
// that write lands later, the caller's retry of the same entry finds it
// (same hash) and another entry gets ErrConflict, and the engine finds the
// changes in the log by hash. A meta update that keeps failing leaves the
// entry stored and returned by every read, and is store.ErrUnavailable.
// Nothing is lost or duplicated either way.
//
// # Size limits
//
// Items hold at most ChunkSize (350,000) payload bytes, under DynamoDB's
// 400 KB item limit. A larger entry spans up to 10 items of one transaction
// (MaxEntrySize, 3.5 MB, under the 4 MB transaction limit); a larger one is
// store.ErrTooLarge and nothing is written. Snapshots have no size limit:
// their chunks are written before the meta item points at them.
//
// # Other processes' writes
//
// Store is a store.Watcher (streams.go): it reads the table's DynamoDB
// Stream of new meta-item images, so that each process learns within about
// a second of the appends made by every other one, for live events and to
// refresh its cache. Correctness never depends on it: every read checks the
// log tail.
//
// Streams serves a shard to about two readers at five calls a second, so
// past a handful of processes set Options.Fanout (fanout.go): processes
// registered in the table (peers.go) send each other their appends over
// HTTP (FanoutHandler serves them), and one process at a time reads the
// stream under a lease kept in the table (lease.go), resuming from the
// previous holder's checkpoint, and passes on what it reads.
//
// # Feed shards
//
// The collection feed is a global secondary index whose partition key is
// the collection; a table may spread each collection over several keys
// (RaiseFeedShards, feedshards.go), which Feed reads in parallel and merges,
// so that one collection is not capped by one index partition.
//
// # Deadlines
//
// Every DynamoDB call runs under the caller's context bounded by
// Options.CallTimeout, so none can hang a record's writer.
package dynamo
