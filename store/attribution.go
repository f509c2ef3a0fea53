package store

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/dynamerge/dynamerge/store/internal/wire"
)

// Attributed is who first pushed one change and when the server accepted
// it, kept beside the log (PROTOCOL.md, history: "by" and "at"). Rows of a
// record are in acceptance order: by Seq, then by the change's place in its
// entry.
type Attributed struct {
	Seq  uint64 // the log entry the change was appended in
	Hash string // the change's hash, lowercase hex
	// By is the token subject that pushed the change, "" when the server
	// ran without authentication or the change was stored before
	// attribution existed.
	By string
	// At is when the entry was accepted (the appending process's clock),
	// zero when unknown (an entry stored before attribution existed).
	At time.Time
}

// The binary forms below are what both stores keep: the attribution of one
// log entry (beside the entry, written by the same Append) and packed
// attributed rows (written by SaveSnapshot for the entries it compacts).
// Times are Unix microseconds.
const (
	entryAttrVersion = 1
	rowsVersion      = 1
	hashLen          = 32
)

// errAttribution marks attribution bytes this code did not write.
var errAttribution = errors.New("store: corrupt attribution")

// EncodeEntryAttribution encodes the attribution of one log entry: when it
// was accepted and, per change in order, who pushed it. Consecutive changes
// of one pusher share a run (a group commit of one caller's pushes costs
// one name), so a lone push costs 3 bytes plus its pusher's name plus the
// time (about 8 bytes).
func EncodeEntryAttribution(by []string, at time.Time) []byte {
	b := make([]byte, 0, 16+len(by)*2)
	b = append(b, entryAttrVersion)
	b = binary.AppendVarint(b, unixMicro(at))
	for i := 0; i < len(by); {
		j := i + 1
		for j < len(by) && by[j] == by[i] {
			j++
		}
		b = binary.AppendUvarint(b, uint64(j-i))
		b = binary.AppendUvarint(b, uint64(len(by[i])))
		b = append(b, by[i]...)
		i = j
	}
	return b
}

// DecodeEntryAttribution is the inverse of EncodeEntryAttribution. It
// copies what it keeps, so b may be the backend's memory. maxChanges bounds
// the changes it accepts (the entry's length in bytes is a safe bound: a
// change chunk takes more than one byte).
func DecodeEntryAttribution(b []byte, maxChanges int) (by []string, at time.Time, err error) {
	d := wire.Decoder{B: b}
	if v := d.Byte(); d.Err == nil && v != entryAttrVersion {
		return nil, time.Time{}, fmt.Errorf("%w: entry attribution version %d", errAttribution, v)
	}
	at = fromMicro(d.Varint())
	for len(d.B) > 0 && d.Err == nil {
		n := d.Uvarint()
		name := string(d.Bytes(d.Uvarint()))
		if d.Err == nil && (n == 0 || n > uint64(maxChanges-len(by))) {
			d.Err = fmt.Errorf("run of %d changes, at most %d left", n, maxChanges-len(by))
		}
		if d.Err != nil {
			break
		}
		for range n {
			by = append(by, name)
		}
	}
	if d.Err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %v", errAttribution, d.Err)
	}
	return by, at, nil
}

// EncodeRows packs attributed rows (consecutive in acceptance order) for a
// compaction to keep. first is the place in its entry of rows[0] (0 unless
// the rows start in the middle of an entry: a split of a huge one). Per
// row: its seq as a delta, the hash (32 bytes), its pusher as an index into
// a table of names at the head, and the time once per entry: about 34
// bytes per change, plus about 10 per entry. Hashes must be 64 hex digits.
func EncodeRows(rows []Attributed, first int) ([]byte, error) {
	names := map[string]uint64{}
	var table []string
	for _, r := range rows {
		if _, ok := names[r.By]; !ok {
			names[r.By] = uint64(len(table))
			table = append(table, r.By)
		}
	}
	b := make([]byte, 0, 8+len(rows)*(hashLen+4))
	b = append(b, rowsVersion)
	b = binary.AppendUvarint(b, uint64(first))
	b = binary.AppendUvarint(b, uint64(len(table)))
	for _, n := range table {
		b = binary.AppendUvarint(b, uint64(len(n)))
		b = append(b, n...)
	}
	b = binary.AppendUvarint(b, uint64(len(rows)))
	var prev uint64
	for i, r := range rows {
		if i > 0 && r.Seq < prev {
			return nil, fmt.Errorf("store: attribution rows out of order: seq %d after %d", r.Seq, prev)
		}
		b = binary.AppendUvarint(b, r.Seq-prev)
		if i == 0 || r.Seq != prev {
			b = binary.AppendVarint(b, unixMicro(r.At))
		}
		prev = r.Seq
		h, err := hex.DecodeString(r.Hash)
		if err != nil || len(h) != hashLen {
			return nil, fmt.Errorf("store: attribution of seq %d: hash %q is not 64 hex digits", r.Seq, r.Hash)
		}
		b = append(b, h...)
		b = binary.AppendUvarint(b, names[r.By])
	}
	return b, nil
}

// DecodeRows is the inverse of EncodeRows: the rows and the place in its
// entry of the first one.
func DecodeRows(b []byte) (rows []Attributed, first int, err error) {
	d := wire.Decoder{B: b}
	if v := d.Byte(); d.Err == nil && v != rowsVersion {
		return nil, 0, fmt.Errorf("%w: rows version %d", errAttribution, v)
	}
	first = int(d.Uvarint())
	nt := d.Uvarint()
	if d.Err == nil && nt > uint64(len(d.B)) {
		d.Err = errors.New("name count beyond data")
	}
	var table []string
	for i := uint64(0); i < nt && d.Err == nil; i++ {
		table = append(table, string(d.Bytes(d.Uvarint())))
	}
	n := d.Uvarint()
	if d.Err == nil && n > uint64(len(d.B))/hashLen {
		d.Err = errors.New("row count beyond data")
	}
	if d.Err == nil {
		rows = make([]Attributed, 0, n)
	}
	var seq uint64
	var at time.Time
	for i := uint64(0); i < n && d.Err == nil; i++ {
		delta := d.Uvarint()
		seq += delta
		if i == 0 || delta != 0 {
			at = fromMicro(d.Varint())
		}
		h := d.Bytes(hashLen)
		ref := d.Uvarint()
		if d.Err == nil && ref >= uint64(len(table)) {
			d.Err = fmt.Errorf("name %d of %d", ref, len(table))
		}
		if d.Err == nil {
			rows = append(rows, Attributed{Seq: seq, Hash: hex.EncodeToString(h), By: table[ref], At: at})
		}
	}
	if d.Err == nil && len(d.B) != 0 {
		d.Err = fmt.Errorf("%d trailing bytes", len(d.B))
	}
	if d.Err != nil {
		return nil, 0, fmt.Errorf("%w: %v", errAttribution, d.Err)
	}
	return rows, first, nil
}

// RowChunk is one packed piece of a record's attribution rows: what one
// backend item or key holds.
type RowChunk struct {
	Seq   uint64 // the seq of its first row
	First int    // the place of its first row in that entry
	Rows  []Attributed
}

// ChunkRows splits rows (whole entries, consecutive in acceptance order)
// into chunks whose EncodeRows form stays under about maxBytes (each row
// is counted at its largest: its hash, its pusher's name, two varints and
// a time).
func ChunkRows(rows []Attributed, maxBytes int) []RowChunk {
	var out []RowChunk
	place := 0 // of rows[i] in its entry
	for i := 0; i < len(rows); {
		j, size := i, 16
		for j < len(rows) && (j == i || size+rowMax(rows[j]) <= maxBytes) {
			size += rowMax(rows[j])
			j++
		}
		out = append(out, RowChunk{Seq: rows[i].Seq, First: place, Rows: rows[i:j]})
		for k := i; k < j; k++ {
			if k+1 < len(rows) && rows[k+1].Seq == rows[k].Seq {
				place++
			} else {
				place = 0
			}
		}
		i = j
	}
	return out
}

// rowMax bounds the bytes one row takes in EncodeRows.
func rowMax(r Attributed) int { return hashLen + len(r.By) + 4*binary.MaxVarintLen64 }

// MergeRows joins chunks read in key order (by Seq, then First) into one
// list in acceptance order. Chunks written by compactions in different
// processes may overlap (each covers what its process had in memory); a
// row is the same whoever wrote it, so a row at or before the last one
// kept is skipped.
func MergeRows(chunks []RowChunk) []Attributed {
	var out []Attributed
	var lastSeq uint64
	lastPlace := -1
	for _, c := range chunks {
		place := c.First
		for i, r := range c.Rows {
			if i > 0 {
				if r.Seq == c.Rows[i-1].Seq {
					place++
				} else {
					place = 0
				}
			}
			if r.Seq < lastSeq || (r.Seq == lastSeq && place <= lastPlace) {
				continue
			}
			out = append(out, r)
			lastSeq, lastPlace = r.Seq, place
		}
	}
	return out
}

func unixMicro(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicro(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}
