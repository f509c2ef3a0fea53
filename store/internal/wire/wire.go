// Package wire reads the compact binary values the stores keep (a bbolt
// record's meta, attribution): a Decoder that remembers the first error,
// so that a decode function reads as a straight list of fields.
package wire

import (
	"encoding/binary"
	"errors"
)

// Decoder reads fields from B, consuming them. After the first error every
// read returns zero and Err keeps that error.
type Decoder struct {
	B   []byte
	Err error
}

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if d.Err != nil {
		return 0
	}
	if len(d.B) == 0 {
		d.Err = errors.New("truncated")
		return 0
	}
	c := d.B[0]
	d.B = d.B[1:]
	return c
}

// Uvarint reads an unsigned varint (encoding/binary).
func (d *Decoder) Uvarint() uint64 {
	if d.Err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.B)
	if n <= 0 {
		d.Err = errors.New("bad uvarint")
		return 0
	}
	d.B = d.B[n:]
	return v
}

// Varint reads a signed varint (encoding/binary).
func (d *Decoder) Varint() int64 {
	if d.Err != nil {
		return 0
	}
	v, n := binary.Varint(d.B)
	if n <= 0 {
		d.Err = errors.New("bad varint")
		return 0
	}
	d.B = d.B[n:]
	return v
}

// Bytes reads n bytes; they share B's memory.
func (d *Decoder) Bytes(n uint64) []byte {
	if d.Err != nil {
		return nil
	}
	if n > uint64(len(d.B)) {
		d.Err = errors.New("truncated bytes")
		return nil
	}
	v := d.B[:n]
	d.B = d.B[n:]
	return v
}
