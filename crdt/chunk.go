package crdt

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
)

// Chunk framing: magic (4 bytes), checksum (4 bytes), chunk type (1 byte),
// body length (ULEB128), body. The checksum is the first 4 bytes of the
// SHA-256 over type, length and body, which for a change is its hash (for a
// compressed change, the hash of the uncompressed form).
const (
	chunkDocument         = 0
	chunkChange           = 1
	chunkCompressedChange = 2
)

var chunkMagic = []byte{0x85, 0x6f, 0x4a, 0x83}

// Limits bound what one change may cost. The zero value means the defaults.
//
// Automerge's run-length columns let a few bytes describe millions of
// operations (a "decompression bomb"), while every operation other than a
// deletion costs memory for as long as the record lives (Automerge keeps
// overwritten values), in the server and in every browser. So the bound is an
// allocation budget tied to the bytes a client sends: a change may hold at
// most OpFloor + OpsPerByte × (its inflated size) operations other than
// deletions. A pasted text costs at least a byte per character, so pastes of
// any size fit; a few hundred bytes describing a million values do not.
// Deletions are bounded by what they delete (Index checks that each deletes
// something that exists, once), so a range deletion of a long text is one
// small change. MaxOps caps every change, deletions included.
type Limits struct {
	MaxChunkBytes int // inflated size of one change; DefaultMaxChunkBytes
	MaxOps        int // operations of one change; DefaultMaxOps
	OpFloor       int // budget every change has; DefaultOpFloor
	OpsPerByte    int // budget per byte of change; DefaultOpsPerByte
}

// Default limits of a change.
const (
	// DefaultMaxChunkBytes is the largest change, after inflation, that
	// ParseChanges accepts: 16 MiB holds a paste of four million ASCII
	// characters, and bounds the memory a crafted compressed chunk takes.
	DefaultMaxChunkBytes = 16 << 20
	// DefaultMaxOps caps the operations of one change: 4,194,304.
	DefaultMaxOps = 1 << 22
	// DefaultOpFloor is the allocation budget of every change, however
	// small its bytes: 65,536 operations.
	DefaultOpFloor = 1 << 16
	// DefaultOpsPerByte is the allocation budget per byte of change.
	DefaultOpsPerByte = 2
)

func (l Limits) withDefaults() Limits {
	if l.MaxChunkBytes <= 0 {
		l.MaxChunkBytes = DefaultMaxChunkBytes
	}
	if l.MaxOps <= 0 {
		l.MaxOps = DefaultMaxOps
	}
	if l.OpFloor <= 0 {
		l.OpFloor = DefaultOpFloor
	}
	if l.OpsPerByte <= 0 {
		l.OpsPerByte = DefaultOpsPerByte
	}
	return l
}

// budget is the allocation budget of a change whose inflated body has n bytes.
func (l Limits) budget(n int) int { return l.OpFloor + l.OpsPerByte*n }

// ParseChanges validates b as one or more concatenated change chunks and
// returns them. Each chunk is checked for magic, checksum, chunk type (change
// or compressed change), length, and a body that parses in full: header and
// every operation, canonically encoded; b must hold nothing else. It is pure
// Go and safe on any input. Errors wrap ErrInvalidChange and say what is wrong
// and where; a chunk over the limits also wraps ErrChunkTooLarge.
//
// What operations refer to (objects, elements, predecessors, in the change
// and in the record's history) is checked when the change is added to the
// record's Index.
func ParseChanges(b []byte, lim Limits) ([]Change, error) {
	lim = lim.withDefaults()
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: no chunks", ErrInvalidChange)
	}
	var out []Change
	for off := 0; off < len(b); {
		c, n, err := parseChange(b[off:], lim)
		if err != nil {
			return nil, fmt.Errorf("%w: chunk %d at offset %d: %w", ErrInvalidChange, len(out), off, err)
		}
		out = append(out, c)
		off += n
	}
	return out, nil
}

// Split is ParseChanges with the default limits.
func Split(b []byte) ([]Change, error) { return ParseChanges(b, Limits{}) }

// chunk is one chunk's framing, with the body of a change inflated.
type chunk struct {
	typ  byte
	body []byte // uncompressed body
	raw  []byte // the chunk as received (aliasing the input)
	hash Hash   // changes: the change hash
}

// readChunk reads the chunk at the start of b. maxBody bounds the body,
// after inflation for compressed changes.
func readChunk(b []byte, maxBody int) (chunk, error) {
	if len(b) < 4 || !bytes.Equal(b[:4], chunkMagic) {
		return chunk{}, errors.New("bad magic bytes")
	}
	if len(b) < 9 {
		return chunk{}, errors.New("truncated header")
	}
	r := &reader{b: b, off: 9}
	typ := b[8]
	n, err := r.uleb()
	if err != nil {
		return chunk{}, fmt.Errorf("body length: %w", err)
	}
	if n > uint64(maxBody) {
		return chunk{}, fmt.Errorf("%w: body of %d bytes, limit %d", ErrChunkTooLarge, n, maxBody)
	}
	body, err := r.bytes(n)
	if err != nil {
		return chunk{}, fmt.Errorf("body of %d bytes, %d left: %w", n, r.rest(), errTruncated)
	}
	c := chunk{typ: typ, body: body, raw: b[:r.off]}
	var checksum [4]byte
	copy(checksum[:], b[4:8])

	// hashed is type, length and body of the (uncompressed) chunk.
	var hashed []byte
	switch typ {
	case chunkChange, chunkDocument:
		hashed = b[8:r.off]
	case chunkCompressedChange:
		inflated, err := inflate(body, maxBody)
		if err != nil {
			return chunk{}, err
		}
		hashed = appendUleb([]byte{chunkChange}, uint64(len(inflated)))
		hashed = append(hashed, inflated...)
		c.body = inflated
	default:
		return chunk{}, fmt.Errorf("unknown chunk type %d", typ)
	}
	c.hash = Hash(sha256.Sum256(hashed))
	if !bytes.Equal(c.hash[:4], checksum[:]) {
		return chunk{}, fmt.Errorf("checksum % x, want % x", checksum, c.hash[:4])
	}
	return c, nil
}

// parseChange parses and validates the change chunk at the start of b and
// returns it with its length in bytes.
func parseChange(b []byte, lim Limits) (Change, int, error) {
	ch, err := readChunk(b, lim.MaxChunkBytes)
	if err != nil {
		return Change{}, 0, err
	}
	if ch.typ == chunkDocument {
		return Change{}, 0, errors.New("document chunk where a change was expected")
	}
	c, err := checkChangeBody(ch.body, lim)
	if err != nil {
		return Change{}, 0, err
	}
	c.Hash = ch.hash
	c.Raw = bytes.Clone(ch.raw)
	return c, len(ch.raw), nil
}

// checkChangeBody parses an uncompressed change body and reads every op,
// canonically, within the limits.
func checkChangeBody(body []byte, lim Limits) (Change, error) {
	cb, err := parseChangeBody(body)
	if err != nil {
		return Change{}, err
	}
	budget := lim.budget(len(body))
	ops, err := newOpReader(cb, lim.MaxOps, true)
	if err == nil && ops.n-ops.dels > budget {
		err = fmt.Errorf("%w: %d operations other than deletions in %d bytes, budget %d", errTooManyOps, ops.n-ops.dels, len(body), budget)
	}
	if err != nil {
		if errors.Is(err, errTooManyOps) {
			return Change{}, fmt.Errorf("%w: %w", ErrChunkTooLarge, err)
		}
		return Change{}, err
	}
	var op Op
	for ops.i < ops.n {
		if err := ops.next(&op); err != nil {
			return Change{}, fmt.Errorf("operations: %w", err)
		}
	}
	if err := ops.finish(); err != nil {
		return Change{}, fmt.Errorf("operations: %w", err)
	}
	return Change{
		Deps: cb.deps, Actor: bytes.Clone(cb.actors[0]), Seq: cb.seq, StartOp: cb.startOp,
		Time: cb.time, Message: cb.message, Ops: ops.n, Budget: ops.n - ops.dels,
	}, nil
}

// readOps streams the operations of a change that ParseChanges accepted.
// Actor indices are into actors, the change's table (0 is its own actor).
func (c *Change) readOps(fn func(op *Op, actors [][]byte) error) error {
	if c.ops != nil {
		return c.walkOps(fn)
	}
	ch, err := readChunk(c.Raw, max(DefaultMaxChunkBytes, 64*len(c.Raw)))
	if err != nil {
		return fmt.Errorf("%w: change %s: %w", ErrInvalidChange, c.Hash, err)
	}
	cb, err := parseChangeBody(ch.body)
	if err != nil {
		return fmt.Errorf("%w: change %s: %w", ErrInvalidChange, c.Hash, err)
	}
	// Validated already: the op count is known, and predecessors were
	// bounded when it was parsed.
	ops, err := newOpReaderPreds(cb, c.Ops, math.MaxInt32, false)
	if err != nil {
		return fmt.Errorf("%w: change %s: %w", ErrInvalidChange, c.Hash, err)
	}
	var op Op
	for ops.i < ops.n {
		if err := ops.next(&op); err != nil {
			return fmt.Errorf("%w: change %s: %w", ErrInvalidChange, c.Hash, err)
		}
		if err := fn(&op, cb.actors); err != nil {
			return err
		}
	}
	return nil
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

// walkOps calls fn with the change's decoded ops, presented as a parsed
// change would: actor indices into a table with the change's actor first.
func (c *Change) walkOps(fn func(op *Op, actors [][]byte) error) error {
	// The document's table, with the change's actor swapped to the front.
	actors := slices.Clone(c.opActors)
	actors[0], actors[c.opOwn] = actors[c.opOwn], actors[0]
	swap := func(id OpID) OpID {
		switch {
		case id.IsZero():
		case id.Actor == c.opOwn:
			id.Actor = 0
		case id.Actor == 0:
			id.Actor = c.opOwn
		}
		return id
	}
	var op Op
	for i := range c.ops {
		op = c.ops[i]
		op.ID, op.Obj = swap(op.ID), swap(op.Obj)
		if !op.Key.IsMap {
			op.Key.Elem = swap(op.Key.Elem)
		}
		op.Pred = op.Pred[:0:0]
		for _, p := range c.ops[i].Pred {
			op.Pred = append(op.Pred, swap(p))
		}
		if err := fn(&op, actors); err != nil {
			return err
		}
	}
	return nil
}
