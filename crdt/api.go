package crdt

// SKELETON: the exported API other packages build against. The crdt helper
// fills in the bodies (and may move them into files by concern); signatures
// stay as they are.

import (
	"encoding/hex"
	"errors"
	"fmt"
)

// Errors returned by this package.
var (
	// ErrInvalidChange is returned when bytes are not valid Automerge change
	// chunks: bad magic, checksum, chunk type, truncation, trailing bytes, or
	// a change body that does not parse in full.
	ErrInvalidChange = errors.New("crdt: invalid change")

	// ErrMissingDeps is returned by Doc.Apply when a change depends on a
	// change the document does not have.
	ErrMissingDeps = errors.New("crdt: missing dependencies")
)

// Hash is the SHA-256 hash that identifies an Automerge change.
type Hash [32]byte

// String returns the hash as 64 lowercase hex digits, as Automerge JS prints it.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash parses 64 lowercase hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 64 {
		return h, fmt.Errorf("crdt: hash %q: want 64 hex digits", s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return h, fmt.Errorf("crdt: hash %q: want lowercase hex", s)
		}
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("crdt: hash %q: %w", s, err)
	}
	return h, nil
}

// ParseHashes parses a list of hashes (see ParseHash).
func ParseHashes(ss []string) ([]Hash, error) {
	hs := make([]Hash, 0, len(ss))
	for _, s := range ss {
		h, err := ParseHash(s)
		if err != nil {
			return nil, err
		}
		hs = append(hs, h)
	}
	return hs, nil
}

// HashStrings formats hashes with Hash.String.
func HashStrings(hs []Hash) []string {
	ss := make([]string, len(hs))
	for i, h := range hs {
		ss[i] = h.String()
	}
	return ss
}

// Change is one validated Automerge change chunk.
type Change struct {
	Hash    Hash
	Deps    []Hash
	Actor   []byte
	Seq     uint64 // the actor's sequence number, from 1
	StartOp uint64
	Time    int64 // milliseconds since the Unix epoch, 0 if unset
	Message string
	Ops     int    // number of operations in the change
	Raw     []byte // the chunk exactly as received (header included)
}

// Split validates b as one or more concatenated change chunks and returns
// them. Each chunk is checked for magic, checksum, chunk type (change or
// compressed change), length, and a body that parses in full (header and
// every operation column); b must hold nothing else. It never touches
// automerge-go, so it is safe on untrusted input. Errors wrap
// ErrInvalidChange and say what is wrong and where.
func Split(b []byte) ([]Change, error) { return nil, nil }

// Join concatenates the raw chunks of changes.
func Join(changes []Change) []byte {
	n := 0
	for _, c := range changes {
		n += len(c.Raw)
	}
	out := make([]byte, 0, n)
	for _, c := range changes {
		out = append(out, c.Raw...)
	}
	return out
}

// Doc is a record's Automerge document (automerge-go). Never give it bytes a
// client sent inside the serving process: automerge-go can abort the process
// on crafted input. Only crdt/worker does, in child processes.
type Doc struct{}

// NewDoc returns an empty document.
func NewDoc() *Doc { return &Doc{} }

// LoadDoc loads a saved document (a snapshot).
func LoadDoc(data []byte) (*Doc, error) { return &Doc{}, nil }

// Apply applies changes (validated by Split). It checks afterwards that every
// change is in the document: a change whose dependencies are missing gives
// ErrMissingDeps, one that automerge dropped gives ErrInvalidChange. On error
// the document may hold part of the changes: discard it.
func (d *Doc) Apply(changes []Change) error { return nil }

// Save returns the whole document, compacted.
func (d *Doc) Save() []byte { return nil }

// Heads returns the document's heads, sorted.
func (d *Doc) Heads() []Hash { return nil }

// Changes returns every change of the document, dependencies first.
func (d *Doc) Changes() ([]Change, error) { return nil, nil }

// JSON returns the document as plain JSON at heads (nil for the current
// heads): text as strings, counters as numbers, bytes as base64 strings,
// timestamps as RFC 3339 strings.
func (d *Doc) JSON(heads []Hash) ([]byte, error) { return nil, nil }
