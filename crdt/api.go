package crdt

import (
	"encoding/hex"
	"fmt"
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

	refs []opRef // op IDs of other changes the ops refer to (set by Split)
}

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
