package crdt

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// Column decoding. Operation columns use three encodings (see the Automerge
// binary format spec, "Column encodings"):
//
//   - RLE: runs of (SLEB count, ...): count > 0 repeats one value, count < 0
//     is a literal run of -count values, count 0 is a run of ULEB-many nulls.
//   - delta: RLE of SLEB differences from the previous non-null value.
//   - boolean: ULEB run lengths, alternating false/true, starting with false.
//
// Every decoder also re-encodes what it decoded with the encoder of
// Automerge's Rust core (which Automerge JS runs as WebAssembly) and insists
// on the same bytes. A saved document does not keep change bytes: loading it
// rebuilds every change from its operations and recomputes the hashes. A
// change in a non-canonical encoding would therefore get another hash after
// a save and load, and the document's heads would no longer be the ones
// clients hold. Canonical-only input rules that out.

var (
	errNonCanonical = errors.New("non-canonical column encoding")
	errTooManyOps   = errors.New("too many values in column")
)

// opt is a value that may be null.
type opt[T comparable] struct {
	v  T
	ok bool
}

// rleCodec reads and writes one value of an RLE column.
type rleCodec[T comparable] struct {
	read  func(*reader) (T, error)
	write func([]byte, T) []byte
}

var (
	ulebCodec = rleCodec[uint64]{
		read:  (*reader).uleb,
		write: appendUleb,
	}
	slebCodec = rleCodec[int64]{
		read:  (*reader).sleb,
		write: appendSleb,
	}
	strCodec = rleCodec[string]{
		read: func(r *reader) (string, error) {
			n, err := r.uleb()
			if err != nil {
				return "", err
			}
			b, err := r.bytes(n)
			if err != nil {
				return "", err
			}
			if !utf8.Valid(b) {
				return "", errors.New("string is not valid UTF-8")
			}
			return string(b), nil
		},
		write: func(b []byte, s string) []byte {
			return append(appendUleb(b, uint64(len(s))), s...)
		},
	}
)

// decodeRLE decodes an RLE column of at most limit values and checks that it
// is canonically encoded.
func decodeRLE[T comparable](data []byte, c rleCodec[T], limit int) ([]opt[T], error) {
	r := &reader{b: data}
	var out []opt[T]
	for !r.done() {
		n, err := r.sleb()
		if err != nil {
			return nil, err
		}
		switch {
		case n > 0:
			if n > int64(limit-len(out)) {
				return nil, errTooManyOps
			}
			v, err := c.read(r)
			if err != nil {
				return nil, err
			}
			for i := int64(0); i < n; i++ {
				out = append(out, opt[T]{v, true})
			}
		case n < 0:
			if n == math.MinInt64 || -n > int64(limit-len(out)) {
				return nil, errTooManyOps
			}
			for i := int64(0); i < -n; i++ {
				v, err := c.read(r)
				if err != nil {
					return nil, err
				}
				out = append(out, opt[T]{v, true})
			}
		default:
			k, err := r.uleb()
			if err != nil {
				return nil, err
			}
			if k > uint64(limit-len(out)) {
				return nil, errTooManyOps
			}
			for i := uint64(0); i < k; i++ {
				out = append(out, opt[T]{})
			}
		}
	}
	if !bytes.Equal(encodeRLE(out, c), data) {
		return nil, errNonCanonical
	}
	return out, nil
}

// encodeRLE is the RLE encoder of Automerge's Rust core
// (columnar/encoding/rle.rs): repeat runs of two or more equal values,
// literal runs otherwise, null runs; a column of nulls only is empty.
func encodeRLE[T comparable](vals []opt[T], c rleCodec[T]) []byte {
	var out []byte
	i := 0
	if len(vals) > 0 {
		allNull := true
		for _, v := range vals {
			if v.ok {
				allNull = false
				break
			}
		}
		if allNull {
			return nil
		}
	}
	var lit []T
	flushLit := func() {
		if len(lit) > 0 {
			out = appendSleb(out, -int64(len(lit)))
			for _, v := range lit {
				out = c.write(out, v)
			}
			lit = lit[:0]
		}
	}
	for i < len(vals) {
		j := i + 1
		for j < len(vals) && vals[j] == vals[i] {
			j++
		}
		n := j - i
		switch {
		case !vals[i].ok:
			flushLit()
			out = appendUleb(append(out, 0), uint64(n))
		case n >= 2:
			flushLit()
			out = c.write(appendSleb(out, int64(n)), vals[i].v)
		default:
			lit = append(lit, vals[i].v)
		}
		i = j
	}
	flushLit()
	return out
}

// decodeDelta decodes a delta column into absolute values, which must stay
// within [0, MaxInt64]: every delta column of a change holds op counters.
func decodeDelta(data []byte, limit int) ([]opt[int64], error) {
	deltas, err := decodeRLE(data, slebCodec, limit)
	if err != nil {
		return nil, err
	}
	abs := int64(0)
	for i, d := range deltas {
		if !d.ok {
			continue
		}
		v, ok := checkedAdd(abs, d.v)
		if !ok || v < 0 {
			return nil, fmt.Errorf("delta column value out of range at %d", i)
		}
		abs = v
		deltas[i].v = v
	}
	return deltas, nil
}

// decodeBool decodes a boolean column and checks its canonical encoding
// (Rust's BooleanEncoder: only the first run may be empty).
func decodeBool(data []byte, limit int) ([]bool, error) {
	r := &reader{b: data}
	var out []bool
	val := false
	for first := true; !r.done(); first = false {
		n, err := r.uleb()
		if err != nil {
			return nil, err
		}
		if n == 0 && !first {
			return nil, errNonCanonical
		}
		if n > uint64(limit-len(out)) {
			return nil, errTooManyOps
		}
		for i := uint64(0); i < n; i++ {
			out = append(out, val)
		}
		val = !val
	}
	if len(data) > 0 && len(out) == 0 {
		// A lone zero run: the encoder writes nothing for no values.
		return nil, errNonCanonical
	}
	return out, nil
}

// uintsToInts turns decoded ULEB values into int64, refusing values above
// MaxInt64 (no actor index, counter or group size gets near that).
func uintsToInts(vals []opt[uint64]) ([]opt[int64], error) {
	out := make([]opt[int64], len(vals))
	for i, v := range vals {
		if v.ok && v.v > math.MaxInt64 {
			return nil, fmt.Errorf("value %d out of range at %d", v.v, i)
		}
		out[i] = opt[int64]{int64(v.v), v.ok}
	}
	return out, nil
}
