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
