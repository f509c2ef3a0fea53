package crdt

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
)

// Chunk framing: magic (4 bytes), checksum (4 bytes), chunk type (1 byte),
// body length (ULEB128), body. The checksum is the first 4 bytes of the
// SHA-256 over type, length and body, which is also the change hash.
const (
	chunkDocument         = 0
	chunkChange           = 1
	chunkCompressedChange = 2
)

var chunkMagic = []byte{0x85, 0x6f, 0x4a, 0x83}

// Limits of Split.
const (
	// DefaultMaxChunkBytes is the largest change, after inflation, that
	// Split accepts: 16 MiB, far over any edit a person makes, small
	// enough that a crafted compressed chunk cannot exhaust memory.
	DefaultMaxChunkBytes = 16 << 20

	// MaxOps is the most operations one change may hold. Column runs let
	// a few bytes describe millions of operations (deleting a long text
	// is one run); this bounds the work of parsing and applying one change.
	MaxOps = 1 << 20
)

// Split validates b as one or more concatenated change chunks and returns
// them. Each chunk is checked for magic, checksum, chunk type (change or
// compressed change), length, and a body that parses in full (header and
// every operation column); b must hold nothing else. It never touches
// automerge-go, so it is safe on untrusted input. Errors wrap
// ErrInvalidChange and say what is wrong and where. Split refuses chunks
// over DefaultMaxChunkBytes (see SplitLimit).
func Split(b []byte) ([]Change, error) { return SplitLimit(b, DefaultMaxChunkBytes) }

// SplitLimit is Split with a limit on the size of each chunk, after
// inflation for compressed chunks. A chunk over it gives an error wrapping
// both ErrChunkTooLarge and ErrInvalidChange.
func SplitLimit(b []byte, maxChunkBytes int) ([]Change, error) {
	return SplitLimits(b, maxChunkBytes, MaxOps)
}

// SplitLimits is SplitLimit that also bounds the operations of each change
// (at most MaxOps whatever maxOps says). Run-length columns expand while
// they are decoded, so the bound is checked as they expand, before memory
// is spent on them: a change of a few hundred bytes describing millions of
// operations fails fast with ErrChunkTooLarge.
func SplitLimits(b []byte, maxChunkBytes, maxOps int) ([]Change, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: no chunks", ErrInvalidChange)
	}
	var out []Change
	for off := 0; off < len(b); {
		c, n, err := parseChunkOps(b[off:], maxChunkBytes, maxOps, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: chunk %d at offset %d: %w", ErrInvalidChange, len(out), off, err)
		}
		out = append(out, c)
		off += n
	}
	return out, nil
}

// parseChunk parses the chunk at the start of b and returns it with its
// length in bytes.
func parseChunk(b []byte, maxChunkBytes int) (Change, int, error) {
	return parseChunkOps(b, maxChunkBytes, MaxOps, nil)
}

// parseChunkOps is parseChunk with a bound on operations that also reports
// every operation to emit.
func parseChunkOps(b []byte, maxChunkBytes, maxOps int, emit func(opInfo)) (Change, int, error) {
	if len(b) < 4 || !bytes.Equal(b[:4], chunkMagic) {
		return Change{}, 0, errors.New("bad magic bytes")
	}
	r := &reader{b: b, off: 8}
	if len(b) < 9 {
		return Change{}, 0, errors.New("truncated header")
	}
	typ := b[8]
	r.off = 9
	n, err := r.uleb()
	if err != nil {
		return Change{}, 0, fmt.Errorf("body length: %w", err)
	}
	if n > uint64(maxChunkBytes) {
		return Change{}, 0, fmt.Errorf("%w: body of %d bytes, limit %d", ErrChunkTooLarge, n, maxChunkBytes)
	}
	body, err := r.bytes(n)
	if err != nil {
		return Change{}, 0, fmt.Errorf("body of %d bytes, %d left: %w", n, r.rest(), errTruncated)
	}
	raw := b[:r.off]
	var checksum [4]byte
	copy(checksum[:], b[4:8])

	// hashed is type, length and body of the (uncompressed) change.
	var hashed []byte
	switch typ {
	case chunkChange:
		hashed = b[8:r.off]
	case chunkCompressedChange:
		inflated, err := inflate(body, maxChunkBytes)
		if err != nil {
			return Change{}, 0, err
		}
		hashed = appendUleb([]byte{chunkChange}, uint64(len(inflated)))
		hashed = append(hashed, inflated...)
		body = inflated
	case chunkDocument:
		return Change{}, 0, errors.New("document chunk where a change was expected")
	default:
		return Change{}, 0, fmt.Errorf("unknown chunk type %d", typ)
	}
	hash := Hash(sha256.Sum256(hashed))
	if !bytes.Equal(hash[:4], checksum[:]) {
		return Change{}, 0, fmt.Errorf("checksum % x, want % x", checksum, hash[:4])
	}
	maxOps = max(0, min(maxOps, MaxOps, maxChunkBytes))
	c, err := parseChangeBodyOps(body, maxOps, emit)
	if err != nil {
		if errors.Is(err, errTooManyOps) {
			return Change{}, 0, fmt.Errorf("%w: %w", ErrChunkTooLarge, err)
		}
		return Change{}, 0, err
	}
	c.Hash = hash
	c.Raw = bytes.Clone(raw)
	return c, len(raw), nil
}

// inflate decompresses a raw DEFLATE stream, refusing output over limit and
// any bytes after the end of the stream.
func inflate(data []byte, limit int) ([]byte, error) {
	br := bytes.NewReader(data)
	zr := flate.NewReader(br)
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("inflate: %w", err)
	}
	if len(out) > limit {
		return nil, fmt.Errorf("%w: inflates to over %d bytes", ErrChunkTooLarge, limit)
	}
	if br.Len() != 0 {
		return nil, fmt.Errorf("inflate: %d bytes after the end of the stream", br.Len())
	}
	return out, nil
}
