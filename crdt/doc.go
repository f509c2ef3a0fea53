// Package crdt holds dynamerge records as Automerge documents.
//
// # Change bytes
//
// Clients send Automerge change chunks. Split validates them in pure Go, in
// full (framing, checksum, header, every operation column), and strictly:
// it accepts only what Automerge itself writes, in canonical form, so that
// a change the server accepts loads in Automerge JS with the same hash, also
// after the document has been saved and loaded again. Split never calls
// automerge-go and is safe on any input.
//
// # Documents
//
// Doc wraps automerge-go: apply changes, save, heads, history, and the
// document's JSON view. Doc.Apply first checks each change against the
// document's history (seq, start op, and that every object, element and
// predecessor it names exists and fits), which Split alone cannot see. automerge-go can abort the whole process on crafted
// changes, so a Doc only ever sees client bytes inside the worker processes
// of crdt/worker.
package crdt
