package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Automerge binary chunk framing, re-implemented here on purpose: the tests
// must not trust the crdt package they are checking. A chunk is
// magic(4) checksum(4) type(1) uLEB128 length, then the body; the checksum is
// the first 4 bytes of SHA-256(type, length, body), which is also the
// change's hash.
var chunkMagic = []byte{0x85, 0x6f, 0x4a, 0x83}

// Chunk types.
const (
	chunkDocument         = 0
	chunkChange           = 1
	chunkCompressedChange = 2
)

// chunk is the position of one chunk inside a byte slice.
type chunk struct {
	start, end int // the whole chunk is b[start:end]
	body       int // offset of the first body byte
	typ        byte
}

var errFraming = errors.New("e2e: bad chunk framing")

// splitChunks returns the chunks of b, checking magic, length and checksum.
func splitChunks(b []byte) ([]chunk, error) {
	var out []chunk
	for off := 0; off < len(b); {
		if len(b)-off < 10 || !bytes.Equal(b[off:off+4], chunkMagic) {
			return nil, fmt.Errorf("%w: no magic at %d", errFraming, off)
		}
		typ := b[off+8]
		n, k := binary.Uvarint(b[off+9:])
		if k <= 0 || n > uint64(len(b)) {
			return nil, fmt.Errorf("%w: bad length at %d", errFraming, off)
		}
		body := off + 9 + k
		end := body + int(n)
		if end > len(b) {
			return nil, fmt.Errorf("%w: truncated chunk at %d", errFraming, off)
		}
		sum := sha256.Sum256(b[off+8 : end])
		if !bytes.Equal(sum[:4], b[off+4:off+8]) {
			return nil, fmt.Errorf("%w: bad checksum at %d", errFraming, off)
		}
		out = append(out, chunk{start: off, end: end, body: body, typ: typ})
		off = end
	}
	return out, nil
}
