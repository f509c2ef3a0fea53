package dynamo

// This file is the single-table layout: the table's key schema, every item
// type and every attribute name. It is shared with the Streams reader
// (cross-instance change events), which decodes the meta item's NewImage with
// these names; schema/dynamodb.md documents the same layout for people.
// Changing any constant here changes the on-disk format: bump LayoutVersion.
//
// Items of one record share its partition key "<collection>/<id>" (neither
// part may contain "/", see store.Key.Validate), so one Query reads a record:
//
//	sk "meta"                              the record's state (one per record)
//	sk "log#<seq>"                         a log entry, first part
//	sk "log#<seq>#<part>"                  further parts of an oversized entry
//	sk "snap#<seq>#<version>#<chunk>"      snapshot chunks
//	sk "attr#<seq>#<first>"                attribution rows kept by compaction
//
// Numbers inside sort keys are zero-padded decimal so that string order is
// numeric order (seqPad, partPad, chunkPad digits).

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dynamerge/dynamerge/store"
)

// LayoutVersion is the version of this layout; every meta item carries it in
// AttrLayout so that a later version can recognise and migrate older items.
const LayoutVersion = 1

// Key schema of the table (both strings).
const (
	// AttrPK is the table's partition key: "<collection>/<id>".
	AttrPK = "pk"
	// AttrSK is the table's sort key: SKMeta, "log#…" or "snap#…".
	AttrSK = "sk"
)

// Sort keys and their prefixes.
const (
	// SKMeta is the sort key of a record's meta item.
	SKMeta = "meta"
	// SKLogPrefix starts the sort key of every log item: "log#<seq>" for the
	// first part of an entry, "log#<seq>#<part>" for the others.
	SKLogPrefix = "log#"
	// SKSnapPrefix starts the sort key of every snapshot chunk:
	// "snap#<seq>#<version>#<chunk>".
	SKSnapPrefix = "snap#"
	// SKAttrPrefix starts the sort key of every attribution item:
	// "attr#<seq>#<first>", the seq of its first row and that row's place
	// in its entry, so that items sort in acceptance order.
	SKAttrPrefix = "attr#"
	// skAttrEnd sorts after every attribution sort key.
	skAttrEnd = "attr#~"
	// skLogEnd sorts after every log sort key ('~' is above the digits and
	// '#'), so "BETWEEN log#<n> AND log#~" selects log items from seq n on.
	skLogEnd = "log#~"
)

// Widths of the zero-padded numbers inside sort keys.
const (
	seqPad   = 20 // a uint64 has at most 20 decimal digits
	partPad  = 3  // at most maxParts parts per entry
	chunkPad = 5  // snapshot chunk index
)

// Feed index: a global secondary index over meta items only (log and
// snapshot items do not carry its key attributes, so they are not in it).
const (
	// IndexFeed is the name of the collection feed GSI.
	IndexFeed = "feed"
	// AttrFeedPK is the GSI partition key: the collection name (string).
	AttrFeedPK = "fpk"
	// AttrFeedSK is the GSI sort key (string): "<updatedAt>#<id>", with
	// updatedAt in Unix microseconds, zero-padded to feedTimePad digits, so
	// that a collection's records sort by last change.
	AttrFeedSK = "fsk"
	// feedTimePad is the width of the time in AttrFeedSK (enough until 2286).
	feedTimePad = 16
)

// Attributes of the meta item (sk = SKMeta). The Streams reader relies on
// AttrCollection, AttrID, AttrSeq and AttrHeads being present on every meta
// item written by Append. Note for stream consumers: SaveSnapshot also
// updates the meta item (the snapshot attributes only), so a NewImage whose
// AttrSeq equals the last one seen for that record is not a new change.
const (
	// AttrCollection is the record's collection (string).
	AttrCollection = "col"
	// AttrID is the record's id (string).
	AttrID = "id"
	// AttrSeq is the highest log seq written (number). Append's transaction
	// moves it from seq-1 to seq, which is how a seq is claimed.
	AttrSeq = "seq"
	// AttrHeads is the record's heads after its latest Append: a list of
	// strings (lowercase hex change hashes, sorted).
	AttrHeads = "heads"
	// AttrSize is the approximate record size in bytes (number), from
	// store.AppendMeta.Size.
	AttrSize = "size"
	// AttrUpdatedAt is the time of the latest Append, Unix microseconds
	// (number), by the clock of the process that wrote it.
	AttrUpdatedAt = "upd"
	// AttrDeletedAt is when an Append first marked the record deleted, Unix
	// microseconds (number; absent while it is not deleted). The feed index
	// projects it on tables created since (FeedProjectionLifecycle).
	AttrDeletedAt = "del"
	// AttrPurgedSeq is the seq through which the record's history was
	// purged (number; absent if it never was): log entries up to it are
	// gone, and appends continue after it.
	AttrPurgedSeq = "pseq"
	// AttrPurged marks a record purged with nothing appended since (BOOL).
	AttrPurged = "prg"
	// AttrRoots are the root change hashes of the purged histories (list of
	// strings): what the tombstone recognises.
	AttrRoots = "roots"
	// AttrDeletedPK is DeletedPK while the record is deleted and its purge
	// not finished: the partition key of the deleted index, so the index
	// holds exactly those records (a sparse index), ordered by
	// AttrDeletedAt.
	AttrDeletedPK = "dpk"
	// DeletedPK is the value of AttrDeletedPK.
	DeletedPK = "deleted"
	// IndexDeleted is the GSI the purge sweep queries (DeletedBefore).
	IndexDeleted = "deleted"
	// AttrLayout is LayoutVersion (number).
	AttrLayout = "v"
	// AttrSnapSeq is the seq the current snapshot covers (number; absent
	// when the record has no snapshot). Log entries at or below it may be
	// gone: ReadLog below it answers store.ErrCompacted.
	AttrSnapSeq = "ssq"
	// AttrSnapVersion is the current snapshot's version (string, random):
	// chunks of a snapshot live under "snap#<ssq>#<version>#", so that two
	// processes saving a snapshot of the same seq never mix their chunks.
	AttrSnapVersion = "sver"
	// AttrSnapChunks is how many chunks the current snapshot has (number).
	AttrSnapChunks = "sn"
	// AttrSnapSize is the current snapshot's size in bytes (number).
	AttrSnapSize = "ssz"
)

// Attributes of log items (sk = "log#…") and snapshot chunks (sk = "snap#…").
const (
	// AttrData holds bytes: a part of a log entry's change bytes, or a
	// chunk of a snapshot.
	AttrData = "d"
	// AttrParts is, on the first part of a log entry only, how many items
	// the entry has (number; 1 for an entry that fits one item).
	AttrParts = "np"
	// AttrLen is, on the first part of a log entry, the entry's total
	// length in bytes (number), checked on reading.
	AttrLen = "len"
	// AttrEntryHash is, on the first part of a log entry, the SHA-256 of the
	// entry's whole change bytes (binary): reading checks the reassembled
	// parts against it, and an Append whose outcome is unknown (timeout)
	// compares it to tell its own entry from another writer's.
	AttrEntryHash = "h"
	// AttrAttribution is, on the first part of a log entry, who pushed each
	// of its changes and when the entry was accepted (binary,
	// store.EncodeEntryAttribution); absent on entries stored before
	// attribution existed. On an attribution item ("attr#…") AttrData
	// holds the packed rows (store.EncodeRows).
	AttrAttribution = "a"
	// AttrEntryHeads, AttrEntrySize, AttrEntryTime and AttrEntryFlags are,
	// on the first part of an entry stored by a single-item Append (see
	// append.go), what the meta item is to say once the entry is the
	// latest: its heads (list of strings), store.AppendMeta.Size (number),
	// the append's time in Unix µs (number, AttrUpdatedAt and the feed
	// position) and entryDeleted|entryNewHistory (number). They let any
	// reader or the next writer complete an append whose meta update did
	// not happen (a crash between its two writes) exactly as its writer
	// would have. Absent on entries written by a transaction (older ones,
	// and entries of more than one part), which never need completing.
	AttrEntryHeads = "mh"
	AttrEntrySize  = "ms"
	AttrEntryTime  = "mu"
	AttrEntryFlags = "mf"
	// AttrEntryToken is, on the same items, 16 random bytes of the Append
	// that put it: how a writer tells its own put (landed, then retried by
	// the SDK or answered too late) from another process's put of the same
	// bytes at the same seq, which is a lost race (ErrConflict) and must
	// not be taken for success.
	AttrEntryToken = "mt"
)

// AttrPurgeMarker marks the item Purge puts at "log#<tombstone seq>" (BOOL):
// it claims that seq in the log, so that no entry is stored there, and is
// deleted with the purged history. It is below the record's floor, so no
// read returns it.
const AttrPurgeMarker = "pm"

// Bits of AttrEntryFlags.
const (
	entryDeleted    = 1 // store.AppendMeta.Deleted
	entryNewHistory = 2 // store.AppendMeta.NewHistory
)

// Item size limits. DynamoDB refuses items over 400 KB (names and values
// included) and transactions over 100 items or 4 MB.
const (
	// ChunkSize is the most payload bytes put in one item. It leaves room
	// under the 400 KB item limit for the keys and other attributes.
	ChunkSize = 350_000
	// maxParts is the most items one log entry may span: an Append is one
	// transaction of the parts plus the meta update, and it must stay under
	// the 4 MB transaction limit.
	maxParts = 10
	// MaxEntrySize is the largest log entry Append accepts; larger ones get
	// store.ErrTooLarge and nothing is written.
	MaxEntrySize = maxParts * ChunkSize
)

// pk is the partition key of every item of the record k.
func pk(k store.Key) string { return k.Collection + "/" + k.ID }

// padUint formats n in decimal, zero-padded to width digits.
func padUint(n uint64, width int) string {
	s := strconv.FormatUint(n, 10)
	if len(s) >= width {
		return s
	}
	return strings.Repeat("0", width-len(s)) + s
}

// logSK is the sort key of part `part` (0 for the first) of entry seq.
func logSK(seq uint64, part int) string {
	sk := SKLogPrefix + padUint(seq, seqPad)
	if part > 0 {
		sk += "#" + padUint(uint64(part), partPad)
	}
	return sk
}

// parseLogSK is the inverse of logSK.
func parseLogSK(sk string) (seq uint64, part int, err error) {
	rest, ok := strings.CutPrefix(sk, SKLogPrefix)
	if !ok || len(rest) < seqPad {
		return 0, 0, fmt.Errorf("%w: log sort key %q", errCorrupt, sk)
	}
	seq, err = strconv.ParseUint(rest[:seqPad], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: log sort key %q", errCorrupt, sk)
	}
	rest = rest[seqPad:]
	if rest == "" {
		return seq, 0, nil
	}
	if len(rest) != partPad+1 || rest[0] != '#' {
		return 0, 0, fmt.Errorf("%w: log sort key %q", errCorrupt, sk)
	}
	p, err := strconv.ParseUint(rest[1:], 10, 16)
	if err != nil || p == 0 {
		return 0, 0, fmt.Errorf("%w: log sort key %q", errCorrupt, sk)
	}
	return seq, int(p), nil
}

// snapPrefix is the sort key prefix of the chunks of snapshot version ver
// of seq: "snap#<seq>#<ver>#".
func snapPrefix(seq uint64, ver string) string {
	return SKSnapPrefix + padUint(seq, seqPad) + "#" + ver + "#"
}

// snapSK is the sort key of chunk i of snapshot version ver of seq.
func snapSK(seq uint64, ver string, i int) string {
	return snapPrefix(seq, ver) + padUint(uint64(i), chunkPad)
}

// attrSK is the sort key of the attribution item whose first row is
// change number first of entry seq.
func attrSK(seq uint64, first int) string {
	return SKAttrPrefix + padUint(seq, seqPad) + "#" + padUint(uint64(first), chunkPad)
}

// feedSK is the feed index sort key of record id changed at t.
func feedSK(t time.Time, id string) string {
	return feedTime(t.UnixMicro()) + "#" + id
}

// feedTime is the time part of a feed sort key: Unix microseconds,
// zero-padded (times before 1970 are clamped to 0).
func feedTime(us int64) string { return padUint(uint64(max(us, 0)), feedTimePad) }

// errCorrupt marks items that this code did not write the way it reads
// them: a bug, or a table written by something else.
var errCorrupt = errors.New("dynamo: corrupt item")
