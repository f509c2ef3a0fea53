// Package crdt is Automerge's binary format and op set in pure Go: what the
// server needs to accept changes without an Automerge document, and to
// build one only when something asks for it. No cgo, no I/O.
//
// # Change bytes
//
// Clients send Automerge change chunks. ParseChanges validates them in
// full (framing, checksum, header, every operation column) and strictly: it
// accepts only what Automerge itself writes, in canonical form, so that a
// change the server accepts loads in Automerge JS with the same hash, also
// after the document has been saved and loaded again. Its Limits bound what
// a change may cost by its size on the wire, so bombs are refused before
// they cost memory. EncodeChange writes changes byte for byte as Automerge.
//
// # Index and Tx
//
// An Index is the compact record of one document that the write path
// validates against: every change (hash, dependencies, actor, seq, op
// range) and runs of alike operations, not one entry per operation. A Tx
// checks changes against it (dependencies, seq chain, start op, and that
// every object, element and predecessor a change names exists in its causal
// past and fits), then commits them in one step or not at all.
//
// # Documents
//
// Doc is the op set materialized: maps, lists, text, counters, conflicts,
// marks, deletions, in Automerge's order. It answers the JSON view (also at
// past heads), its conflicts and Save; LoadDoc and LoadRecord read
// document chunks, as Automerge.save writes them. ChangeToJSON,
// ChangeToMergePatch and ChangeToHeads make the one change that turns a
// document into a JSON object, applies a merge patch, or brings back its
// state at past heads, as an Automerge JS transaction
// would write it (plain-JSON writes and restore). Everything here is checked against Automerge
// JS 3.5 (golden data, random histories through internal/amjs).
package crdt
