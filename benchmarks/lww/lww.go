// Package lww is the last-writer-wins baseline of the benchmark suite: the
// sync most offline-first apps build by hand between IndexedDB and DynamoDB.
// A client keeps whole JSON records; when it comes back online it PUTs every
// record it changed, stamped with the time of its last local edit, and the
// server keeps whichever version carries the later stamp. Nothing is merged:
// of two offline edits to one record, the one stamped earlier is gone.
//
// It is deliberately honest rather than a straw man: the write is a
// conditional compare-and-set on the stamp (a DynamoDB condition
// expression, a bbolt read-modify-write in one transaction), so a slow or
// retried request never overwrites a newer version, ties are broken by
// writer ID so every replica picks the same winner, and a client that loses
// gets the winning version back in the same answer.
//
// # HTTP API
//
//	PUT /lww/{collection}/{id}  body {"stamp": {...}, "doc": {...}}
//	GET /lww/{collection}/{id}
//
// Both answer 200 with the stored {"stamp", "doc"}; GET answers 404 for a
// record never written. Errors are {"error": {"code", "message"}} with the
// codes of the dynamerge protocol (bad_request, invalid_id, not_found,
// too_large, unavailable).
package lww

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/dynamerge/dynamerge/protocol"
	"regexp"
)

// Stamp orders versions of a record: the later Time wins, and Writer breaks
// ties so that every replica chooses the same version.
type Stamp struct {
	Time   int64  `json:"time"` // client clock, nanoseconds since the Unix epoch
	Writer string `json:"writer"`
}

// After reports whether s wins over o.
func (s Stamp) After(o Stamp) bool {
	if s.Time != o.Time {
		return s.Time > o.Time
	}
	return s.Writer > o.Writer
}

// Version is one whole version of a record.
type Version struct {
	Stamp Stamp           `json:"stamp"`
	Doc   json.RawMessage `json:"doc"`
}

// Store keeps the winning version of each record.
type Store interface {
	// Put stores v under key unless the stored version's stamp is the same
	// or later, atomically, and returns the version stored afterwards
	// (v, or the one that beat it). It is idempotent.
	Put(ctx context.Context, key string, v Version) (Version, error)
	// Get returns the stored version, or ErrNotFound.
	Get(ctx context.Context, key string) (Version, error)
	// Close releases the store.
	Close() error
}

// ErrNotFound is returned by Store.Get for a record never written.
var ErrNotFound = errors.New("lww: record not found")

// Limits and names shared with the dynamerge protocol, so that both systems
// accept the same workload.
var (
	collectionRE = regexp.MustCompile(protocol.CollectionPattern)
	idRE         = regexp.MustCompile(protocol.IDPattern)
)

// MaxRecordBytes bounds one stored version (DynamoDB's item limit is 400 KB).
const MaxRecordBytes = 350 << 10

// Key returns the storage key of collection/id.
func Key(collection, id string) string { return collection + "/" + id }
