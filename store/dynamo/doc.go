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
// Append is one TransactWriteItems: the entry's log items and an update of
// the record's meta item conditional on its seq being one less than the
// entry's. The condition is how a seq is claimed; the transaction is what
// keeps the meta item (seq, heads, the feed index keys, the stream image)
// always in step with the log, whatever crashes. A cancelled transaction is
// read reason by reason: ConditionalCheckFailed is store.ErrConflict (another
// writer took the seq; the engine merges its entry and retries), a
// TransactionConflict is retried a few times with jitter, throttling is
// store.ErrUnavailable.
//
// # Unknown outcomes
//
// A timeout, a lost response or an SDK retry that fails after an earlier
// attempt landed leave an Append's outcome unknown. The SDK gives each
// attempt an idempotency token (ClientRequestToken), so its own retries never
// apply a transaction twice. After any error other than a cancellation,
// Append reads the entry's first log item and compares its SHA-256 with its
// own: equal means the write landed (Append returns nil), another hash is
// store.ErrConflict, none is store.ErrUnavailable — and if that write lands
// later, the next Append of the seq gets ErrConflict, and the engine finds
// the changes in the log by hash. Nothing is lost or duplicated either way.
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
