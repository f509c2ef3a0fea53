package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ContentTypeSyncBinary is the binary body of POST /v1/sync, an extension
// of PROTOCOL.md written in the repository's copy (/v1/sync, "Extension
// (binary sync bodies)"): the same request and answer as the JSON body, with change bytes and
// hashes raw instead of base64 and hex, which a third of every change's
// bytes went to. A client sends it as Content-Type and asks for it with
// Accept; JSON stays the default, and a server answers JSON to a client
// that does not ask.
//
//	request  = magic count:uvarint doc*
//	doc      = str(collection) str(id) count:uvarint hash* bytes(changes)
//	answer   = magic count:uvarint result*
//	result   = str(collection) str(id) count:uvarint hash* bytes(changes)
//	           str(error code, "" for none) str(error message)
//	magic    = "DMS1"
//	str, bytes = len:uvarint and that many bytes; hash = 32 bytes
//
// Varints are unsigned LEB128, as Automerge's, in their shortest form.
// Nothing may follow the last doc or result.
const ContentTypeSyncBinary = "application/vnd.dynamerge.sync"

// binaryMagic starts every binary sync body.
const binaryMagic = "DMS1"

// RawSyncDoc is one doc of a sync request with its hashes and change bytes
// raw: what a binary body carries.
type RawSyncDoc struct {
	Collection, ID string
	Have           [][32]byte
	Changes        []byte
}

// RawSyncResult is one result of a sync answer with its hashes and change
// bytes raw. Error is nil for none.
type RawSyncResult struct {
	Collection, ID string
	Heads          [][32]byte
	Changes        []byte
	Error          *ErrorDetail
}

// ErrBinaryBody says a binary sync body is malformed; the error wrapping
// it says where.
var ErrBinaryBody = errors.New("protocol: malformed binary sync body")

// AppendSyncRequest appends the binary body of a sync request to b.
func AppendSyncRequest(b []byte, docs []RawSyncDoc) []byte {
	b = append(b, binaryMagic...)
	b = binary.AppendUvarint(b, uint64(len(docs)))
	for _, d := range docs {
		b = appendDocHead(b, d.Collection, d.ID, d.Have, d.Changes)
	}
	return b
}

// AppendSyncResponse appends the binary body of a sync answer to b.
func AppendSyncResponse(b []byte, rs []RawSyncResult) []byte {
	b = append(b, binaryMagic...)
	b = binary.AppendUvarint(b, uint64(len(rs)))
	for _, r := range rs {
		b = appendDocHead(b, r.Collection, r.ID, r.Heads, r.Changes)
		var e ErrorDetail
		if r.Error != nil {
			e = *r.Error
		}
		b = appendBytes(b, []byte(e.Code))
		b = appendBytes(b, []byte(e.Message))
	}
	return b
}

// ParseSyncRequest parses the binary body of a sync request. The docs'
// Changes alias body.
func ParseSyncRequest(body []byte) ([]RawSyncDoc, error) {
	r, n, err := openBinary(body)
	if err != nil {
		return nil, err
	}
	docs := make([]RawSyncDoc, 0, n)
	for i := range n {
		var d RawSyncDoc
		if d.Collection, d.ID, d.Have, d.Changes, err = r.docHead(); err != nil {
			return nil, fmt.Errorf("%w: doc %d: %w", ErrBinaryBody, i, err)
		}
		docs = append(docs, d)
	}
	return docs, r.end()
}

// ParseSyncResponse parses the binary body of a sync answer. The results'
// Changes alias body.
func ParseSyncResponse(body []byte) ([]RawSyncResult, error) {
	r, n, err := openBinary(body)
	if err != nil {
		return nil, err
	}
	rs := make([]RawSyncResult, 0, n)
	for i := range n {
		var res RawSyncResult
		var code, msg []byte
		res.Collection, res.ID, res.Heads, res.Changes, err = r.docHead()
		if err == nil {
			code, err = r.bytes()
		}
		if err == nil {
			msg, err = r.bytes()
		}
		if err != nil {
			return nil, fmt.Errorf("%w: result %d: %w", ErrBinaryBody, i, err)
		}
		if len(code) > 0 {
			res.Error = &ErrorDetail{Code: string(code), Message: string(msg)}
		}
		rs = append(rs, res)
	}
	return rs, r.end()
}

func appendDocHead(b []byte, collection, id string, hashes [][32]byte, changes []byte) []byte {
	b = appendBytes(b, []byte(collection))
	b = appendBytes(b, []byte(id))
	b = binary.AppendUvarint(b, uint64(len(hashes)))
	for _, h := range hashes {
		b = append(b, h[:]...)
	}
	return appendBytes(b, changes)
}

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// binReader reads a binary body; every length is checked against what is
// left, so a body never makes it allocate more than its own size.
type binReader struct{ b []byte }

// minDocBytes is the least a doc or result takes: four one-byte lengths.
const minDocBytes = 4

func openBinary(body []byte) (*binReader, int, error) {
	if len(body) < len(binaryMagic) || string(body[:len(binaryMagic)]) != binaryMagic {
		return nil, 0, fmt.Errorf("%w: it does not start with %q", ErrBinaryBody, binaryMagic)
	}
	r := &binReader{b: body[len(binaryMagic):]}
	n, err := r.uvarint()
	if err != nil || n > uint64(len(r.b)/minDocBytes) {
		return nil, 0, fmt.Errorf("%w: bad doc count", ErrBinaryBody)
	}
	return r, int(n), nil
}

func (r *binReader) uvarint() (uint64, error) {
	v, n := binary.Uvarint(r.b)
	// Minimal encodings only, so that a body has one reading and one
	// writing (a padded 0x80 0x00 is refused, not read as 0).
	if n <= 0 || n != len(binary.AppendUvarint(nil, v)) {
		return 0, errors.New("bad length")
	}
	r.b = r.b[n:]
	return v, nil
}

func (r *binReader) bytes() ([]byte, error) {
	n, err := r.uvarint()
	if err != nil || n > uint64(len(r.b)) {
		return nil, errors.New("length past the end")
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s, nil
}

func (r *binReader) docHead() (collection, id string, hashes [][32]byte, changes []byte, err error) {
	c, err := r.bytes()
	if err != nil {
		return "", "", nil, nil, fmt.Errorf("collection: %w", err)
	}
	i, err := r.bytes()
	if err != nil {
		return "", "", nil, nil, fmt.Errorf("id: %w", err)
	}
	n, err := r.uvarint()
	if err != nil || n > uint64(len(r.b)/32) {
		return "", "", nil, nil, errors.New("bad hash count")
	}
	hashes = make([][32]byte, n)
	for k := range hashes {
		copy(hashes[k][:], r.b[:32])
		r.b = r.b[32:]
	}
	if changes, err = r.bytes(); err != nil {
		return "", "", nil, nil, fmt.Errorf("changes: %w", err)
	}
	return string(c), string(i), hashes, changes, nil
}

func (r *binReader) end() error {
	if len(r.b) > 0 {
		return fmt.Errorf("%w: %d bytes after the last doc", ErrBinaryBody, len(r.b))
	}
	return nil
}
