// Package benchmarks measures dynamerge: what it costs and what it saves
// its users from. It has two parts.
//
// # The suite (make bench, make bench-full)
//
// cmd/dynabench is the benchmark suite a user or a reviewer runs with one
// command. It builds ./cmd/dynamerge and starts real servers as
// subprocesses on 127.0.0.1 — dynamerge on bbolt and on DynamoDB Local
// (started with scripts/dynamodb-local.sh when none is given, skipped with a
// note when it cannot be), the last-writer-wins baseline of lww/ on the
// same two stores, and automerge-repo's own sync server (peer/, Node) —
// drives them over HTTP (WebSocket for the peer) and writes results.json,
// report.html with SVG charts (gonum.org/v1/plot) and a summary table:
//
//	make bench                         # quick: a few minutes on 2 cores
//	make bench-full                    # the sizes: long
//	make bench BENCH_ARGS="-stores bolt -scenarios lost-updates,breadth -seed 42"
//	make bench BENCH_ARGS="-stores bolt -scenarios large-text -large-text-changes 2000"
//
// Scenarios: lost-updates (the same offline edits through dynamerge and
// through timestamp last-writer-wins; edits made versus edits present),
// breadth (N clients on M records), hot-record (writers typing into one
// record, with and without group commit: remote latency, store writes and
// DynamoDB write units per change), long-history (one-change sync and cold
// load on records with 100 to 100k changes), offline-storm (clients with
// piles of offline changes reconnecting at once: time to converge, wire
// bytes ÷ change bytes, retries), peer-comparison (breadth and
// hot-record against automerge-repo, with ratios dynamerge ÷ peer) and
// large-text (records of a realistic size, side by side with
// automerge-repo on the same work: one 1,000,000-character paste; two
// writers typing 10,000 changes, 100,000 in full, into one text while an
// observer follows; then a new client's first pull of the record, on
// dynamerge also after a restart. It reports push latency p50/p99, server
// RSS and bytes per op of history, first-pull time and bytes, and each
// ratio to the peer; -large-text-changes sets the typing count) and fanout
// (every client follows every record and writes the ones it owns, so each
// change goes to every other client: deliveries per second, per-receiver
// latency, server CPU per delivery and per change, beside automerge-repo
// doing the same). -server-repo builds the server from another checkout,
// so the same scenarios measure a version before and after a change. Every
// run ends with a convergence check and records a failure loudly.
// Server CPU and peak RSS are read from /proc for the server process tree.
//
// # The Go benchmarks (make bench-go)
//
// The Benchmark functions of this package measure the sync core in one
// process: a real server (the
// engine on a bbolt store in a temporary directory, behind the echo HTTP API
// on an httptest server at 127.0.0.1) driven over HTTP by the Go client. The
// benchmarks report figures, not pass/fail, but each one first checks that
// every replica converged with the server (same heads, nothing left to pull)
// and fails loudly otherwise: a fast wrong number is worse than none.
//
// Nothing here runs in `make test`: the scenarios are Benchmark functions,
// and the package's Tests (of the helpers) take about a second.
//
// # Running
//
// Everything, bounded by time (about 3 minutes, most of it building the
// 100k-change history):
//
//	go test -run='^$' -bench=. -benchtime=3s -timeout=30m ./benchmarks/
//
// One scenario at a time (the load benchmarks bounded by count, which also
// bounds the replicas they keep in memory):
//
//	go test -run='^$' -bench='Sync_History' -benchtime=3s ./benchmarks/
//	go test -run='^$' -bench='Throughput' -benchtime=3000x ./benchmarks/
//	go test -run='^$' -bench='HotRecord' -benchtime=3000x ./benchmarks/
//
// Prefer a duration for the history benchmarks: a count of 1000 turns into
// hours if a sync ever costs seconds (see the engine's cache limits below). Flags of the package go after
// -args: -seed=N replays the throughput run's random record choices (the seed
// is logged); -hotmerge makes the hot-record clients merge every answer;
// -workermem=BYTES and -cachebytes=BYTES override the engine's worker memory
// bound and hot-record cache bound (engine.Options.Workers.MemoryBytes and
// CacheBytes) to tell a limit that is too small for a record from a slow
// engine. `make bench-go BENCHTIME=3s` runs these with the other packages'
// benchmarks.
//
// The client and the server share this process and the machine's cores, so
// client-side work (automerge-go in the replicas) is paid from the server's
// CPU budget; note the load average next to any figure.
//
// # Scenarios
//
// BenchmarkSync_History100, _History10K, _History100K: one sync that pushes
// one change and pulls one, on a hot record with that many changes of
// history. The history is generated once per process (100k changes take
// automerge-go 5–10 s) and pushed through the server in batches of 10,000;
// two peers holding all of it then take turns to edit and sync. The peers
// push their new change by hash rather than asking automerge-go for the
// changes since the server's heads (which walks the whole history, in the
// client), so the figures show the server's cost. Invariant 5 (cost follows
// the delta) holds when p50-ms stays flat from 100 to 100k. cold-load-ms is
// the first sync of the record after a fresh engine is opened on the same
// store (workers already running): store load, snapshot, and the document
// loaded in a worker.
//
// BenchmarkThroughput_64Clients1000Records: 64 clients, each with its own
// client.Client and a set of client.Replica over 1,000 records (made the
// first time the client picks a record, with an untimed pull), each
// operation one edit of a random record and its sync. Latencies include the
// client's own automerge-go work.
//
// BenchmarkHotRecord_64Clients_GroupCommit and _NoGroupCommit
// (engine.Options.NoGroupCommit): 64 clients editing and syncing one record.
// By default a client claims the server's last heads and drops the answer
// during the run (the server still computes and sends the delta), because
// merging the 63 other clients' changes on every sync would spend the shared
// cores on client work; every client merges everything at the end, before
// the convergence check. -hotmerge merges on every sync instead.
//
// # Metrics
//
//   - ns/op: wall time per operation (per sync in the history benchmarks;
//     per change across all 64 clients in the load benchmarks).
//   - changes/s: changes pushed and acknowledged per second of wall time.
//   - p50-ms, p99-ms: nearest-rank percentiles of the sync round trips.
//   - cold-load-ms: see above.
//   - store-writes/change: store Appends (counted by CountingStore) per
//     change; below 1 means group commit put several pushes in one write.
//   - fsyncs/change: bbolt transactions that carried Appends per change
//     (bolt.Store.Stats); bbolt also groups Appends of different records.
//   - store-reads/change: store Load and ReadLog calls per change (the
//     engine checks a hot record's log tail once per sync).
//   - rss-MB: resident memory of this process (server and clients) plus the
//     engine's worker processes, at the end; worker-rss-MB is the workers'
//     part. automerge-go memory is C memory, invisible to the Go heap.
//   - pulled-B/sync: change bytes the server sent per sync.
//   - replicas: client replicas made during the throughput run.
package benchmarks
