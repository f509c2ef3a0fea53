// Package mutate corrupts Automerge change chunks in controlled ways, for
// tests that feed crafted input to a parser or to automerge-go.
//
// # Chunk layout
//
// An Automerge chunk is magic (4 bytes, 85 6f 4a 83), checksum (4 bytes),
// chunk type (1 byte), body length (ULEB128) and body. The checksum is the
// first 4 bytes of SHA-256 over type, length and body; the full SHA-256 is
// the change hash. A corruption whose checksum is not fixed is refused by
// any parser at once, so the interesting mutations are the ones that fix it:
// Flip does.
package mutate

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Magic is the 4-byte prefix of every Automerge chunk.
var Magic = [4]byte{0x85, 0x6f, 0x4a, 0x83}

// Chunk types.
const (
	TypeDocument         = 0
	TypeChange           = 1
	TypeCompressedChange = 2
)

// headerFixed is the length of magic plus checksum.
const headerFixed = 8

// ErrFraming is returned by Header and Chunks when bytes are not framed as
// Automerge chunks.
var ErrFraming = errors.New("mutate: bad chunk framing")

// Header returns the chunk type, the offset of the body and the body length
// declared by the chunk starting at b[0]. It checks the magic and that the
// declared length fits in b; it does not check the checksum.
func Header(b []byte) (typ byte, bodyStart, bodyLen int, err error) {
	if len(b) < headerFixed+2 {
		return 0, 0, 0, fmt.Errorf("%w: %d bytes is shorter than a header", ErrFraming, len(b))
	}
	if [4]byte(b[:4]) != Magic {
		return 0, 0, 0, fmt.Errorf("%w: bad magic % x", ErrFraming, b[:4])
	}
	typ = b[headerFixed]
	n, k := binary.Uvarint(b[headerFixed+1:])
	if k <= 0 {
		return 0, 0, 0, fmt.Errorf("%w: bad body length", ErrFraming)
	}
	bodyStart = headerFixed + 1 + k
	if n > uint64(len(b)-bodyStart) {
		return 0, 0, 0, fmt.Errorf("%w: body of %d bytes, only %d left", ErrFraming, n, len(b)-bodyStart)
	}
	return typ, bodyStart, int(n), nil
}

// Chunks splits concatenated chunks by their headers. It checks framing only
// (magic, declared lengths, no trailing bytes), not checksums or bodies. The
// returned slices alias b.
func Chunks(b []byte) ([][]byte, error) {
	var out [][]byte
	for off := 0; off < len(b); {
		_, start, n, err := Header(b[off:])
		if err != nil {
			return nil, fmt.Errorf("chunk at offset %d: %w", off, err)
		}
		out = append(out, b[off:off+start+n])
		off += start + n
	}
	return out, nil
}

// Checksum returns the checksum the chunk should carry: the first 4 bytes of
// its Hash.
func Checksum(chunk []byte) [4]byte {
	h := Hash(chunk)
	return [4]byte(h[:4])
}

// Hash returns SHA-256 over the chunk's type, length and body, the change
// hash of a change chunk. If the declared length is wrong (runs past the end
// of chunk), it hashes what is there, which is what a corrupted chunk
// needs to have its checksum fixed.
func Hash(chunk []byte) [32]byte {
	if len(chunk) <= headerFixed {
		return sha256.Sum256(nil)
	}
	end := len(chunk)
	if n, k := binary.Uvarint(chunk[headerFixed+1:]); k > 0 && n <= uint64(len(chunk)) {
		if e := headerFixed + 1 + k + int(n); e <= len(chunk) {
			end = e
		}
	}
	return sha256.Sum256(chunk[headerFixed:end])
}

// FixChecksum returns a copy of chunk with its checksum recomputed.
func FixChecksum(chunk []byte) []byte {
	out := append([]byte(nil), chunk...)
	if len(out) < headerFixed {
		return out
	}
	sum := Checksum(out)
	copy(out[4:8], sum[:])
	return out
}

// Flip returns a copy of an uncompressed change chunk with byte pos XORed
// with xor and the checksum recomputed, so that the corruption gets past the
// checksum check and reaches the body parser. Flipping a checksum byte is
// therefore undone by the fix-up; flipping the length byte makes the checksum
// cover whatever the new length declares, as far as the chunk goes. It panics
// if pos is out of range, like an index expression.
func Flip(chunk []byte, pos int, xor byte) []byte {
	out := append([]byte(nil), chunk...)
	out[pos] ^= xor
	return FixChecksum(out)
}

// Truncate returns a copy of the first n bytes of chunk with its checksum
// recomputed over what is left.
func Truncate(chunk []byte, n int) []byte {
	return FixChecksum(chunk[:n])
}
