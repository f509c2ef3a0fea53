package amjs

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Profile selects what a random history edits.
type Profile string

// Profiles of Random.
const (
	// ProfileMixed does everything the other profiles do, in one document.
	ProfileMixed Profile = "mixed"
	// ProfileText types, pastes (up to RandomOptions.PasteMax UTF-16 code
	// units, with non-ASCII text and emoji), deletes ranges, replaces,
	// calls Automerge.updateText, and marks and unmarks ranges with every
	// expand option, concurrently on the same texts.
	ProfileText Profile = "text"
	// ProfileMap sets, overwrites and deletes map keys, nested maps
	// included; concurrent sets of one key make conflicts.
	ProfileMap Profile = "map"
	// ProfileList inserts, deletes and sets list elements, nested objects
	// included.
	ProfileList Profile = "list"
	// ProfileCounter creates, increments, decrements, overwrites and
	// deletes counters, concurrently.
	ProfileCounter Profile = "counter"
	// ProfileScalars writes every scalar type with edge values: null,
	// booleans, int (int64 range), uint (uint64 range), float64 (subnormal,
	// huge, NaN, infinities), immutable strings, bytes, timestamps (years
	// before 0 and after 9999).
	ProfileScalars Profile = "scalars"
)

// Profiles lists every Profile.
var Profiles = []Profile{ProfileMixed, ProfileText, ProfileMap, ProfileList, ProfileCounter, ProfileScalars}

// RandomOptions shapes a random history. The zero value means the defaults.
type RandomOptions struct {
	Profile  Profile // what is edited; "" means ProfileMixed
	Actors   int     // how many actors, 2 to 5; 0 means 3
	Steps    int     // how many steps (a change, a merge, or an actor's start); 0 means 50
	PasteMax int     // longest paste, in UTF-16 code units; 0 means 200
}

// Case is a random history and what Automerge JS says of its merged
// document (every actor's document merged).
type Case struct {
	Seed      int64           `json:"seed,string"`
	Actors    []string        `json:"actors"`    // actor IDs, hex
	Changes   [][]byte        `json:"changes"`   // every change chunk of every actor, dependencies first (Automerge.getAllChanges)
	Save      []byte          `json:"save"`      // Automerge.save of the merged document
	Heads     []string        `json:"heads"`     // sorted hex
	View      json.RawMessage `json:"view"`      // the JSON view
	Conflicts []Conflict      `json:"conflicts"` // see Conflict
	Marks     []TextMarks     `json:"marks"`     // see TextMarks
	Snapshots []Snapshot      `json:"snapshots"` // earlier points of the history
}

// AllChanges returns Changes concatenated, the form a sync push takes.
func (c Case) AllChanges() []byte {
	return bytes.Join(c.Changes, nil)
}

// Snapshot is the merged document at heads some actor had during the
// history (Automerge.view).
type Snapshot struct {
	Heads     []string        `json:"heads"`
	View      json.RawMessage `json:"view"`
	Conflicts []Conflict      `json:"conflicts"`
	Marks     []TextMarks     `json:"marks"`
}

// Conflict is a map key or list element holding more than one value, in an
// object reachable from the root through winning values. Conflicts are
// listed depth first: a key's conflict before those inside its winning
// value, map keys in Automerge's order (by UTF-8 bytes), list elements by
// index.
type Conflict struct {
	Path   Path            `json:"path"`
	Values []ConflictValue `json:"values"` // the winner (the view's value) first, then by descending op ID
}

// ConflictValue is one of the values of a Conflict.
type ConflictValue struct {
	// OpID is the ID of the op that set the value (for an object, the op
	// that made it, which is also its object ID): "<counter>@<actor hex>".
	OpID string `json:"opId"`
	// Datatype is Automerge's: map, list, text, str, int, uint, f64,
	// boolean, null, bytes, timestamp or counter.
	Datatype string `json:"datatype"`
	// Value is the value's JSON view; for a counter, its value with every
	// increment that applies to it.
	Value json.RawMessage `json:"value"`
}

// TextMarks are the marks of one text object (Automerge.marks). Only texts
// with at least one mark are listed.
type TextMarks struct {
	Path  Path   `json:"path"`
	Marks []Mark `json:"marks"`
}

// Mark is one span of a mark, as Automerge.marks reports it: where marks of
// one name overlap the later one (by op ID) holds, adjacent or overlapping
// spans of equal name and value are merged, and null values (what unmark
// writes) are left out.
type Mark struct {
	Name  string          `json:"name"`
	Value json.RawMessage `json:"value"` // JSON view of the value
	Start int             `json:"start"` // UTF-16 code units
	End   int             `json:"end"`   // exclusive
}

// LoadResult is what Automerge JS makes of some bytes.
type LoadResult struct {
	Heads     []string        `json:"heads"`
	View      json.RawMessage `json:"view"`
	Conflicts []Conflict      `json:"conflicts"`
	Marks     []TextMarks     `json:"marks"`
	Changes   []ChangeInfo    `json:"changes"` // in Automerge.getAllChanges order: dependencies first
}

// ChangeInfo is one change, as Automerge.decodeChange reports it.
type ChangeInfo struct {
	Hash    string   `json:"hash"`
	Actor   string   `json:"actor"`
	Seq     uint64   `json:"seq"`
	StartOp uint64   `json:"startOp"`
	Deps    []string `json:"deps"` // as stored: sorted
	Time    int64    `json:"time"` // seconds, as Automerge.change writes it
	// Message is nil for no message; a change stores "" as no message.
	Message *string `json:"message"`
	// Ops is nil when decodeChange cannot decode the change: it throws on
	// ops holding integers beyond 2^53, which the rest of Automerge JS
	// reads as bigints. OpsError then says why, and the other fields come
	// from the document's metadata.
	Ops      []Op   `json:"ops"`
	OpsError string `json:"opsError,omitempty"`
}

// Op is one op of a change, as Automerge.decodeChange reports it.
type Op struct {
	// Action is makeMap, makeList, makeText, set, del, inc, markBegin or
	// markEnd.
	Action string `json:"action"`
	Obj    string `json:"obj"`              // object ID, "_root" for the root
	Key    string `json:"key,omitempty"`    // map key, for ops on maps
	ElemID string `json:"elemId,omitempty"` // "_head" or an op ID, for ops on lists and text
	Insert bool   `json:"insert,omitempty"`
	// Value is the set, inc or markBegin value: bytes come as an array of
	// numbers, timestamps as milliseconds, a string with no Datatype is an
	// immutable string or a text character.
	Value    json.RawMessage `json:"value,omitempty"`
	Datatype string          `json:"datatype,omitempty"` // int, uint, float64, counter, timestamp; empty for the others
	Pred     []string        `json:"pred"`
	Name     string          `json:"name,omitempty"`   // markBegin: the mark's name
	Expand   bool            `json:"expand,omitempty"` // markBegin: expands before; markEnd: expands after
}

// CheckResult is Automerge JS's verdict on changes pushed onto a history.
// OK means: base and then changes went through Automerge.loadIncremental
// without a throw, every change chunk of both decodes
// (Automerge.decodeChange, which throws on integers beyond 2^53: those are
// let through) and is in the document, and a save and load keeps the heads.
type CheckResult struct {
	OK    bool     `json:"ok"`
	Heads []string `json:"heads"` // when OK: sorted hex
	Error string   `json:"error"` // when not OK: Automerge JS's complaint
}

// Path locates a value from the root: map keys (string) and list indices
// (int).
type Path []any

// UnmarshalJSON reads indices as int, not float64.
func (p *Path) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var raw []any
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	out := make(Path, len(raw))
	for i, e := range raw {
		switch e := e.(type) {
		case string:
			out[i] = e
		case json.Number:
			n, err := e.Int64()
			if err != nil {
				return fmt.Errorf("amjs: path %s: %w", b, err)
			}
			out[i] = int(n)
		default:
			return fmt.Errorf("amjs: path %s: element %v is neither key nor index", b, e)
		}
	}
	*p = out
	return nil
}

// String returns the path as JSON, e.g. ["list",0,"key"].
func (p Path) String() string {
	b, _ := json.Marshal([]any(p))
	return string(b)
}
