// Package amjs runs the official Automerge JS (@automerge/automerge 3.5 in
// Node, tools/node/oracle.mjs) as a test oracle for the Go code: it makes
// seeded random editing histories with the real JS API, and says what
// Automerge JS makes of any bytes — heads, the JSON view, conflicts, marks,
// decoded changes, the view at old heads, and whether it accepts a change.
// Only tests and benchmarks import it.
//
// # Use
//
//	js := amjs.Start(t) // one Node process per test binary, shared
//	c, err := js.Random(seed, amjs.RandomOptions{Profile: amjs.ProfileText})
//	res, err := js.Load(bytes)
//
// Start fails the test, saying to run `make deps`, when Node or the npm
// package is missing; with DYNAMERGE_SKIP_NODE=1 it skips the test instead.
// Every method is safe for concurrent use: requests are serialised over the
// one process. If the process dies, the request in flight fails and the
// next one starts a new process.
//
// # Errors
//
// A request Automerge JS refuses (bytes it throws on, heads it lacks) or a
// generator failure returns an error wrapping ErrRefused with Automerge's
// message. Check is the exception: refusing is its answer, so it returns
// CheckResult.OK false and a nil error. Other errors mean the process
// failed.
//
// # Conventions
//
// Views are tools/node/plain.mjs's JSON, the conventions of crdt.Doc.JSON:
// text and immutable strings as strings, counters as numbers, bytes as
// standard base64, timestamps as Date.prototype.toISOString, NaN and
// infinities as null, integers exact (uint64 and int64 beyond 2^53
// included), object keys sorted by code point, compact. Hashes are sorted
// lowercase hex. Text positions (marks) are UTF-16 code units, as in
// Automerge JS.
//
// # Protocol
//
// oracle.mjs reads one JSON request per line on stdin and writes one JSON
// answer per request on stdout, in order; tools/node/README.md lists the
// commands. The Go types of this package mirror the answers.
package amjs
