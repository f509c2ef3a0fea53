package engine

import (
	"encoding/json"

	"github.com/dynamerge/dynamerge/crdt"
)

// Conflict is a map key or list element where concurrent changes left
// several values (PROTOCOL.md, Conflicts).
type Conflict struct {
	Path   []any // map keys (string) and list indices (int)
	Values []ConflictValue
}

// ConflictValue is one value of a Conflict; the first is the one the view
// shows.
type ConflictValue struct {
	Value json.RawMessage
	Hash  crdt.Hash // the change that wrote it
	By    *string   // who first pushed that change; nil when unknown
}

// conflicts attributes the document's conflicts of record r.
func (e *Engine) conflicts(r *record, cs []crdt.Conflict) []Conflict {
	out := make([]Conflict, len(cs))
	for i, c := range cs {
		vs := make([]ConflictValue, len(c.Values))
		for j, v := range c.Values {
			vs[j] = ConflictValue{Value: v.Value, Hash: v.Hash, By: e.changeBy(r, v.Hash)}
		}
		out[i] = Conflict{Path: c.Path, Values: vs}
	}
	return out
}

// changeBy returns the token subject that first pushed the change with hash
// h to record r, or nil when unknown (no authentication).
//
// TODO(attribution): always nil until the attribution of accepted changes
// (by, at) is recorded; the lead wires it to that record here, the one
// place conflicts and other views get "by" from.
func (e *Engine) changeBy(r *record, h crdt.Hash) *string {
	_, _ = r, h
	return nil
}
