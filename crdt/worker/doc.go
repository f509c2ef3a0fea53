// Package worker keeps automerge-go out of the serving process.
//
// automerge-go aborts its whole process (a Rust panic crossing cgo as
// SIGABRT, which Go cannot recover) on some crafted changes. A Pool runs
// every Automerge operation on client input in child processes — the same
// binary, started with EnvWorker set, which Main turns into a worker — so
// that such an input costs a worker, never the server.
//
// # Workers
//
// Records are sharded across workers by a hash of their key. A worker holds
// the documents of its records, each at the change-log seq it reflects, in
// an LRU bounded by its share of Options.MemoryBytes, measured as real RSS
// (automerge-go's memory is C memory, invisible to the Go heap). When a
// request finds the document missing or at another seq, the worker answers
// "need base", and the pool resends it with the record's state from the
// caller's BaseFunc.
//
// # Pipe
//
// Requests and answers are length-prefixed binary frames carrying a request
// ID, so several requests are in flight per worker; a worker processes them
// in order. A caller that gives up (context cancelled) leaves its answer to
// be read and dropped, which keeps the pipe in step.
//
// # Crashes
//
// See Pool. Every death is logged with its exit status and the worker's last
// words on stderr; workers that cannot start are retried with back-off while
// requests fail with ErrUnavailable. A worker dies with its parent
// (parent-death signal on Linux, and EOF on stdin).
package worker
