package worker

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The pipe between a Pool and a worker carries frames: a 4-byte big-endian
// payload length, then the payload. A payload is a message encoded field by
// field (uvarints, and byte strings prefixed by their uvarint length), so a
// truncated or foreign frame is detected instead of misread. Every request
// carries an ID that its answer repeats: several requests may be in flight on
// one pipe, and an answer nobody waits for any more (its caller gave up) is
// read and dropped, which keeps the pipe in step.

// maxFrame bounds one frame; a larger length prefix means the stream is out
// of step (or the peer is not a worker), not a big record.
const maxFrame = 1 << 30

// op is what a request asks for.
type op uint8

const (
	opHello   op = iota + 1 // handshake: the pool sends settings, the worker answers with its pid
	opApply                 // apply changes to a record's document
	opJSON                  // JSON view of a record's document
	opSave                  // save a record's document
	opChanges               // every change chunk of a snapshot (stateless)
	opEvict                 // drop a record's document
)

func (o op) String() string {
	switch o {
	case opHello:
		return "hello"
	case opApply:
		return "apply"
	case opJSON:
		return "json"
	case opSave:
		return "save"
	case opChanges:
		return "changes"
	case opEvict:
		return "evict"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// status is how an answer turned out.
type status uint8

const (
	statusOK          status = iota + 1
	statusNeedBase           // the worker does not hold the document at the asked seq: resend with the base
	statusInvalid            // wraps crdt.ErrInvalidChange
	statusMissingDeps        // wraps crdt.ErrMissingDeps
	statusError              // anything else
)

// message is a request (pool to worker) or an answer (worker to pool); each
// direction uses the fields it needs.
type message struct {
	ID     uint64
	Op     op
	Status status // answers only

	Key     string
	FromSeq uint64 // apply: the seq the document must be at; json, save: the seq wanted
	ToSeq   uint64 // apply: the seq the document is at afterwards

	HasBase      bool
	BaseSeq      uint64
	BaseSnapshot []byte
	BaseChanges  []byte

	Data  []byte   // apply: changes; changes: the snapshot; answers: the result
	Heads []string // json: heads asked for (request) or reflected (answer)
	Limit int64    // hello: the worker's memory share in bytes; answer: the worker's pid
	Err   string   // answers: what went wrong
}

func (m *message) encode() []byte {
	b := make([]byte, 4, 64+len(m.Key)+len(m.BaseSnapshot)+len(m.BaseChanges)+len(m.Data)+len(m.Err))
	b = binary.AppendUvarint(b, m.ID)
	b = append(b, byte(m.Op), byte(m.Status))
	b = appendBytes(b, []byte(m.Key))
	b = binary.AppendUvarint(b, m.FromSeq)
	b = binary.AppendUvarint(b, m.ToSeq)
	if m.HasBase {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.AppendUvarint(b, m.BaseSeq)
	b = appendBytes(b, m.BaseSnapshot)
	b = appendBytes(b, m.BaseChanges)
	b = appendBytes(b, m.Data)
	b = binary.AppendUvarint(b, uint64(len(m.Heads)))
	for _, h := range m.Heads {
		b = appendBytes(b, []byte(h))
	}
	b = binary.AppendVarint(b, m.Limit)
	b = appendBytes(b, []byte(m.Err))
	binary.BigEndian.PutUint32(b[:4], uint32(len(b)-4))
	return b
}

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// errFrame is returned when a frame does not decode: the stream is out of
// step or the peer is not a worker.
var errFrame = errors.New("worker: malformed frame")

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errFrame
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errFrame
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = errFrame
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// bytes returns a byte string, nil when empty, aliasing the frame.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errFrame
		return nil
	}
	s := d.b[:n:n]
	d.b = d.b[n:]
	if n == 0 {
		return nil
	}
	return s
}

func decodeMessage(payload []byte) (*message, error) {
	d := &decoder{b: payload}
	m := &message{}
	m.ID = d.uvarint()
	m.Op = op(d.byte())
	m.Status = status(d.byte())
	m.Key = string(d.bytes())
	m.FromSeq = d.uvarint()
	m.ToSeq = d.uvarint()
	m.HasBase = d.byte() == 1
	m.BaseSeq = d.uvarint()
	m.BaseSnapshot = d.bytes()
	m.BaseChanges = d.bytes()
	m.Data = d.bytes()
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) { // each head takes at least one byte
		d.err = errFrame
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		m.Heads = append(m.Heads, string(d.bytes()))
	}
	m.Limit = d.varint()
	m.Err = string(d.bytes())
	if d.err == nil && len(d.b) != 0 {
		d.err = errFrame
	}
	if d.err != nil {
		return nil, d.err
	}
	return m, nil
}

// readMessage reads one frame. It returns io.EOF when the stream ends
// cleanly between frames.
func readMessage(r *bufio.Reader) (*message, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrame {
		return nil, fmt.Errorf("%w: length %d", errFrame, n)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return decodeMessage(payload)
}
