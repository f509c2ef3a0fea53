// Package e2e holds the end-to-end tests of dynamerge: they drive the whole
// stack (client → HTTP → server → engine → worker processes → store) the way
// a deployment does, and check the invariants of DESIGN.md from the outside.
//
// # Tests
//
//   - TestConvergence: seeded, randomised sessions of many replicas editing a
//     few shared records offline and online, with duplicated and reordered
//     pushes and server restarts; at the end every replica, the server's JSON
//     view and the stored log agree, and every acknowledged change is there.
//     The edits mix map fields, lists and counters with text: typing, pastes
//     of thousands of characters and range deletions, made concurrently by
//     peers that share one text object. Replay a failure with -seed; scale
//     with -sessions (make soak runs 10,000).
//   - TestCrashRecovery: the real binary, SIGKILLed at random moments under
//     load and restarted on the same bolt file; no acknowledged change is lost.
//     Scale with -kills (make soak runs 100).
//   - TestPoisonIsolation: crafted changes that abort automerge-go are refused
//     as invalid_change while other clients keep syncing without an error.
//   - TestMultiProcessDynamo: three server processes on one DynamoDB Local
//     table, clients spread across them editing shared and hot records; a
//     change made through one process reaches the others' /v1/events within
//     the deadline (through DynamoDB Streams), one process is SIGKILLed
//     midway, and every replica converges with no acknowledged change lost.
//     Skipped without DYNAMERGE_DYNAMODB_ENDPOINT (make test sets it).
//   - TestDifferentialServer: every mutated change the server accepts loads in
//     Automerge JS with the same heads (needs Node and `make deps`, or
//     DYNAMERGE_SKIP_NODE=1 to skip).
//
// Long variants run with -long; everything long is skipped under -short.
//
// The package has no non-test code besides this file.
package e2e
