package crdt

import (
	"errors"
	"math"
)

// LEB128 errors, wrapped into ErrInvalidChange by the parsers.
var (
	errTruncated = errors.New("truncated")
	errOverlong  = errors.New("non-minimal LEB128")
	errOverflow  = errors.New("LEB128 overflows 64 bits")
)

// reader reads Automerge's primitive encodings from a byte slice. LEB128
// values must be minimal: Automerge's Rust core refuses overlong encodings,
// and a change we accept must re-encode to the same bytes (its hash) when a
// saved document is loaded, so only canonical forms are accepted.
type reader struct {
	b   []byte
	off int
}

func (r *reader) done() bool { return r.off >= len(r.b) }

func (r *reader) rest() int { return len(r.b) - r.off }

func (r *reader) uleb() (uint64, error) {
	var v uint64
	for i := 0; ; i++ {
		if r.off >= len(r.b) {
			return 0, errTruncated
		}
		c := r.b[r.off]
		r.off++
		if i == 9 && c > 1 {
			return 0, errOverflow
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if c == 0 && i > 0 {
				return 0, errOverlong
			}
			return v, nil
		}
	}
}

func (r *reader) sleb() (int64, error) {
	var v int64
	start := r.off
	for i := 0; ; i++ {
		if r.off >= len(r.b) {
			return 0, errTruncated
		}
		if i == 10 {
			return 0, errOverflow
		}
		c := r.b[r.off]
		r.off++
		v |= int64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if 7*(i+1) < 64 && c&0x40 != 0 {
				v |= -1 << (7 * (i + 1))
			}
			if i == 9 && c != 0 && c != 0x7f {
				return 0, errOverflow
			}
			if slebLen(v) != r.off-start {
				return 0, errOverlong
			}
			return v, nil
		}
	}
}

// bytes returns the next n bytes (aliasing the input).
func (r *reader) bytes(n uint64) ([]byte, error) {
	if n > uint64(r.rest()) {
		return nil, errTruncated
	}
	b := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return b, nil
}

// appendUleb appends the minimal ULEB128 encoding of v.
func appendUleb(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// appendSleb appends the minimal SLEB128 encoding of v.
func appendSleb(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func slebLen(v int64) int {
	n := 1
	for {
		c := v & 0x7f
		v >>= 7
		if v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0 {
			return n
		}
		n++
	}
}

// checkedAdd adds a delta to an absolute value, refusing int64 overflow.
func checkedAdd(a, d int64) (int64, bool) {
	if d > 0 && a > math.MaxInt64-d || d < 0 && a < math.MinInt64-d {
		return 0, false
	}
	return a + d, true
}
