package engine

import (
	"context"
	"encoding/json"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/store"
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

// conflicts attributes the document's conflicts cs of record key: each
// value's By is who first pushed the change that wrote it (Attribution).
func (e *Engine) conflicts(ctx context.Context, key store.Key, cs []crdt.Conflict) ([]Conflict, error) {
	out := make([]Conflict, len(cs))
	if len(cs) == 0 {
		return out, nil
	}
	var hashes []crdt.Hash
	for _, c := range cs {
		for _, v := range c.Values {
			hashes = append(hashes, v.Hash)
		}
	}
	attr, err := e.Attribution(ctx, key, hashes)
	if err != nil {
		return nil, err
	}
	for i, c := range cs {
		vs := make([]ConflictValue, len(c.Values))
		for j, v := range c.Values {
			vs[j] = ConflictValue{Value: v.Value, Hash: v.Hash}
			if by := attr[v.Hash].By; by != "" {
				vs[j].By = &by
			}
		}
		out[i] = Conflict{Path: c.Path, Values: vs}
	}
	return out, nil
}
