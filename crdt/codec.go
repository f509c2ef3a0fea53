package crdt

import (
	"bytes"
	"errors"
	"math"
	"unicode/utf8"
)

// Column codecs. Automerge stores operations column by column (the binary
// format spec, "Column encodings"; Rust core columnar/encoding):
//
//   - RLE: runs of (SLEB count, ...): count > 0 repeats one value, count < 0
//     is a literal run of -count values, count 0 is a run of ULEB-many nulls.
//   - delta: RLE of SLEB differences from the previous non-null value.
//   - boolean: ULEB run lengths, alternating false/true, starting with false.
//
// The decoders stream: a column is read value by value and never expanded
// into a slice, so a few bytes describing a million values cost time in
// proportion to the values asked for, and no memory. Every decoder bounds the
// values it yields (limit), so a crafted count cannot make a loop run for
// ever.
//
// Decoders can also check that their input is canonical: they re-encode what
// they decode with the encoder of Automerge's Rust core (which Automerge JS
// runs as WebAssembly) and insist on the same bytes. A saved document does not
// keep change bytes: loading it rebuilds every change from its operations and
// recomputes the hashes, so a change in a non-canonical encoding would get
// another hash after a save and load.

var (
	errNonCanonical = errors.New("non-canonical column encoding")
	errTooManyOps   = errors.New("too many values in column")
	errColumnEnd    = errors.New("column ended early")
)

// rleValue reads and writes one value of an RLE column.
type rleValue[T comparable] interface {
	read(*reader) (T, error)
	write([]byte, T) []byte
}

type ulebValue struct{}

func (ulebValue) read(r *reader) (uint64, error)  { return r.uleb() }
func (ulebValue) write(b []byte, v uint64) []byte { return appendUleb(b, v) }

type slebValue struct{}

func (slebValue) read(r *reader) (int64, error)  { return r.sleb() }
func (slebValue) write(b []byte, v int64) []byte { return appendSleb(b, v) }

type strValue struct{}

func (strValue) read(r *reader) (string, error) {
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
}

func (strValue) write(b []byte, s string) []byte {
	return append(appendUleb(b, uint64(len(s))), s...)
}

// rleDecoder streams the values of an RLE column.
type rleDecoder[T comparable, C rleValue[T]] struct {
	r     reader
	c     C
	left  uint64 // values left in the current run
	lit   bool   // literal run: each value is read from the input
	val   T      // the value of a repeat run
	ok    bool   // the current run holds values, not nulls
	limit uint64 // values that may still be yielded
	check *rleCheck[T, C]
}

// rleCheck re-encodes what a decoder yields and compares it, as it is
// flushed, with the decoder's input.
type rleCheck[T comparable, C rleValue[T]] struct {
	enc     rleEncoder[T, C]
	matched int
}

func newRLEDecoder[T comparable, C rleValue[T]](data []byte, limit uint64, canonical bool) *rleDecoder[T, C] {
	d := &rleDecoder[T, C]{r: reader{b: data}, limit: limit}
	if canonical {
		d.check = &rleCheck[T, C]{}
	}
	return d
}

// done reports whether every value has been read.
func (d *rleDecoder[T, C]) done() bool { return d.left == 0 && d.r.done() }

// next returns the next value, with ok false for a null. Past the end of the
// column it returns errColumnEnd; an absent (empty) column holds nulls.
func (d *rleDecoder[T, C]) next() (v T, ok bool, err error) {
	for d.left == 0 {
		if len(d.r.b) == 0 {
			// An absent column: every value is null.
			if d.limit == 0 {
				return v, false, errTooManyOps
			}
			d.limit--
			return v, false, nil
		}
		if d.r.done() {
			return v, false, errColumnEnd
		}
		n, err := d.r.sleb()
		if err != nil {
			return v, false, err
		}
		switch {
		case n > 0:
			d.left, d.lit, d.ok = uint64(n), false, true
			if d.val, err = d.c.read(&d.r); err != nil {
				return v, false, err
			}
		case n < 0:
			if n == math.MinInt64 {
				return v, false, errTooManyOps
			}
			d.left, d.lit, d.ok = uint64(-n), true, true
		default:
			k, err := d.r.uleb()
			if err != nil {
				return v, false, err
			}
			if k == 0 && d.check != nil {
				return v, false, errNonCanonical
			}
			d.left, d.lit, d.ok = k, false, false
		}
		if d.left > d.limit {
			return v, false, errTooManyOps
		}
	}
	d.left--
	d.limit--
	if d.lit {
		if d.val, err = d.c.read(&d.r); err != nil {
			return v, false, err
		}
	}
	if d.check != nil {
		if d.ok {
			d.check.enc.append(d.val)
		} else {
			d.check.enc.appendNull()
		}
		if err := d.check.compare(d.r.b); err != nil {
			return v, false, err
		}
	}
	if !d.ok {
		return v, false, nil
	}
	return d.val, true, nil
}

// finish checks, for a canonical decoder, that the column held exactly the
// values read and was encoded canonically.
func (d *rleDecoder[T, C]) finish() error {
	if !d.done() {
		return errors.New("column holds more values than operations")
	}
	if d.check == nil {
		return nil
	}
	d.check.enc.finish()
	if err := d.check.compare(d.r.b); err != nil {
		return err
	}
	if d.check.matched != len(d.r.b) {
		return errNonCanonical
	}
	return nil
}

func (c *rleCheck[T, C]) compare(data []byte) error {
	out := c.enc.out
	if len(out) == 0 {
		return nil
	}
	if !bytes.HasPrefix(data[c.matched:], out) {
		return errNonCanonical
	}
	c.matched += len(out)
	c.enc.out = out[:0]
	return nil
}

// rleEncoder is the RLE encoder of Automerge's Rust core
// (columnar/encoding/rle.rs): repeat runs of two or more equal values,
// literal runs otherwise, null runs; a column of nulls only is empty.
type rleEncoder[T comparable, C rleValue[T]] struct {
	out   []byte
	c     C
	state rleState
	n     uint64 // run length (repeat or null run)
	val   T      // repeat run value, lone value, or the literal run's last value
	lit   []T    // the literal run before val
}

type rleState uint8

const (
	rleEmpty rleState = iota
	rleInitialNulls
	rleNulls
	rleLone
	rleRun
	rleLiteral
)

func (e *rleEncoder[T, C]) appendNull() {
	switch e.state {
	case rleEmpty:
		e.state, e.n = rleInitialNulls, 1
		return
	case rleInitialNulls, rleNulls:
		e.n++
		return
	default:
		e.flush()
		e.state, e.n = rleNulls, 1
	}
}

func (e *rleEncoder[T, C]) append(v T) {
	switch e.state {
	case rleEmpty:
		e.state, e.val = rleLone, v
	case rleLone:
		if v == e.val {
			e.state, e.n = rleRun, 2
		} else {
			e.lit = append(e.lit[:0], e.val)
			e.state, e.val = rleLiteral, v
		}
	case rleRun:
		if v == e.val {
			e.n++
		} else {
			e.flush()
			e.state, e.val = rleLone, v
		}
	case rleLiteral:
		if v == e.val {
			e.writeLiteral(e.lit)
			e.lit = e.lit[:0]
			e.state, e.n = rleRun, 2
		} else {
			e.lit = append(e.lit, e.val)
			e.val = v
		}
	case rleInitialNulls, rleNulls:
		e.flush()
		e.state, e.val = rleLone, v
	}
}

// appendOpt appends v, or a null when !ok.
func (e *rleEncoder[T, C]) appendOpt(v T, ok bool) {
	if ok {
		e.append(v)
	} else {
		e.appendNull()
	}
}

// flush writes the pending run, if any, and empties the state.
func (e *rleEncoder[T, C]) flush() {
	switch e.state {
	case rleNulls, rleInitialNulls:
		e.out = appendUleb(append(e.out, 0), e.n)
	case rleLone:
		e.out = appendSleb(e.out, -1)
		e.out = e.c.write(e.out, e.val)
	case rleRun:
		e.out = appendSleb(e.out, int64(e.n))
		e.out = e.c.write(e.out, e.val)
	case rleLiteral:
		e.lit = append(e.lit, e.val)
		e.writeLiteral(e.lit)
		e.lit = e.lit[:0]
	}
	e.state = rleEmpty
}

func (e *rleEncoder[T, C]) writeLiteral(vals []T) {
	e.out = appendSleb(e.out, -int64(len(vals)))
	for _, v := range vals {
		e.out = e.c.write(e.out, v)
	}
}

// finish flushes the pending run; a column of nulls only stays empty.
// reset empties e for reuse, keeping its buffers.
func (e *rleEncoder[T, C]) reset() {
	*e = rleEncoder[T, C]{out: e.out[:0], lit: e.lit[:0]}
}

func (e *rleEncoder[T, C]) finish() []byte {
	if e.state != rleInitialNulls {
		e.flush()
	}
	e.state = rleEmpty
	return e.out
}

type (
	ulebDecoder = rleDecoder[uint64, ulebValue]
	strDecoder  = rleDecoder[string, strValue]
	ulebEncoder = rleEncoder[uint64, ulebValue]
	strEncoder  = rleEncoder[string, strValue]
	slebEncoder = rleEncoder[int64, slebValue]
)

func newUlebDecoder(data []byte, limit uint64, canonical bool) *ulebDecoder {
	return newRLEDecoder[uint64, ulebValue](data, limit, canonical)
}

func newStrDecoder(data []byte, limit uint64, canonical bool) *strDecoder {
	return newRLEDecoder[string, strValue](data, limit, canonical)
}

// deltaDecoder streams a delta column as absolute values, which must stay
// within [0, MaxInt64]: every delta column holds op counters, sequence
// numbers or change indices.
type deltaDecoder struct {
	d   *rleDecoder[int64, slebValue]
	abs int64
}

func newDeltaDecoder(data []byte, limit uint64, canonical bool) *deltaDecoder {
	return &deltaDecoder{d: newRLEDecoder[int64, slebValue](data, limit, canonical)}
}

func (d *deltaDecoder) done() bool    { return d.d.done() }
func (d *deltaDecoder) finish() error { return d.d.finish() }

func (d *deltaDecoder) next() (uint64, bool, error) {
	delta, ok, err := d.d.next()
	if err != nil || !ok {
		return 0, false, err
	}
	v, fits := checkedAdd(d.abs, delta)
	if !fits || v < 0 {
		return 0, false, errors.New("delta column value out of range")
	}
	d.abs = v
	return uint64(v), true, nil
}

// deltaEncoder writes absolute values as a delta column.
type deltaEncoder struct {
	e   slebEncoder
	abs int64
}

func (e *deltaEncoder) append(v uint64) {
	e.e.append(int64(v) - e.abs)
	e.abs = int64(v)
}

func (e *deltaEncoder) appendNull()    { e.e.appendNull() }
func (e *deltaEncoder) reset()         { e.e.reset(); e.abs = 0 }
func (e *deltaEncoder) finish() []byte { return e.e.finish() }

// boolDecoder streams a boolean column. Automerge writes a column of false
// values either as one run or, for columns that may be absent (expand), not at
// all; both decode to false.
type boolDecoder struct {
	r     reader
	val   bool
	left  uint64
	limit uint64
	first bool
	check bool
}

func newBoolDecoder(data []byte, limit uint64, canonical bool) *boolDecoder {
	return &boolDecoder{r: reader{b: data}, val: true, limit: limit, first: true, check: canonical}
}

func (d *boolDecoder) done() bool { return d.left == 0 && d.r.done() }

func (d *boolDecoder) next() (bool, error) {
	for d.left == 0 {
		if d.r.done() {
			if len(d.r.b) == 0 {
				// An absent column: every value is false.
				if d.limit == 0 {
					return false, errTooManyOps
				}
				d.limit--
				return false, nil
			}
			return false, errColumnEnd
		}
		n, err := d.r.uleb()
		if err != nil {
			return false, err
		}
		if n == 0 && (!d.first || d.r.done()) && d.check {
			// Rust's BooleanEncoder writes an empty run only first, and
			// only when a true value follows.
			return false, errNonCanonical
		}
		if n > d.limit {
			return false, errTooManyOps
		}
		d.first = false
		d.left = n
		d.val = !d.val
	}
	d.left--
	d.limit--
	return d.val, nil
}

func (d *boolDecoder) finish() error {
	if !d.done() {
		return errors.New("boolean column holds more values than operations")
	}
	return nil
}

// boolEncoder is Rust's BooleanEncoder; with maybe set it is the
// MaybeBooleanEncoder, which writes nothing for a column of false values.
type boolEncoder struct {
	out   []byte
	last  bool
	n     uint64
	maybe bool
	any   bool
}

// reset empties e for reuse, keeping its buffer.
func (e *boolEncoder) reset(maybe bool) { *e = boolEncoder{out: e.out[:0], maybe: maybe} }

func (e *boolEncoder) append(v bool) {
	e.any = e.any || v
	if v == e.last {
		e.n++
		return
	}
	e.out = appendUleb(e.out, e.n)
	e.last, e.n = v, 1
}

func (e *boolEncoder) finish() []byte {
	if e.maybe && !e.any {
		return nil
	}
	if e.n > 0 {
		e.out = appendUleb(e.out, e.n)
	}
	return e.out
}

// Value types of the value metadata column (low 4 bits; the byte length of
// the raw value is the rest).
const (
	valNull      = 0
	valFalse     = 1
	valTrue      = 2
	valUint      = 3
	valInt       = 4
	valFloat     = 5
	valString    = 6
	valBytes     = 7
	valCounter   = 8
	valTimestamp = 9
)

// valueDecoder streams a value column pair: metadata (RLE ULEB: length << 4
// | type) and the raw bytes.
type valueDecoder struct {
	meta *ulebDecoder
	raw  reader
}

func newValueDecoder(meta, raw []byte, limit uint64, canonical bool) *valueDecoder {
	return &valueDecoder{meta: newUlebDecoder(meta, limit, canonical), raw: reader{b: raw}}
}

// next returns the next value's type and raw bytes (aliasing the input).
// A column without metadata holds nulls.
func (d *valueDecoder) next() (typ uint64, raw []byte, err error) {
	if len(d.meta.r.b) == 0 {
		if d.meta.limit == 0 {
			return 0, nil, errTooManyOps
		}
		d.meta.limit--
		return valNull, nil, nil
	}
	m, ok, err := d.meta.next()
	if err != nil {
		return 0, nil, err
	}
	if !ok {
		return 0, nil, errors.New("null value metadata")
	}
	raw, err = d.raw.bytes(m >> 4)
	if err != nil {
		return 0, nil, err
	}
	return m & 0xf, raw, nil
}

func (d *valueDecoder) finish() error {
	if len(d.meta.r.b) > 0 {
		if err := d.meta.finish(); err != nil {
			return err
		}
	}
	if !d.raw.done() {
		return errors.New("value column holds bytes no metadata describes")
	}
	return nil
}

// valueEncoder writes a value column pair.
type valueEncoder struct {
	meta ulebEncoder
	raw  []byte
}

func (e *valueEncoder) reset() { e.meta.reset(); e.raw = e.raw[:0] }

func (e *valueEncoder) append(typ uint64, raw []byte) {
	e.meta.append(uint64(len(raw))<<4 | typ)
	e.raw = append(e.raw, raw...)
}
