package crdt

import (
	"encoding/json"
	"slices"
	"strings"
)

// Conflict is a map key or list element where concurrent changes left
// several values: Automerge keeps them all and shows one.
type Conflict struct {
	// Path from the root: map keys (string) and list indices (int).
	Path []any
	// Values, the one the view shows first, then by descending op ID (as
	// Automerge JS lists them).
	Values []ConflictValue
}

// ConflictValue is one of the values of a Conflict.
type ConflictValue struct {
	Value json.RawMessage // its JSON view
	Hash  Hash            // the change that wrote it
}

// Conflicts lists every conflict of the document at heads (nil: now), in
// the objects the view shows, depth first: a key's conflict before those
// inside its shown value, map keys by UTF-8 bytes, list elements by index.
// Reserved root keys and text are left out. An unknown head gives
// ErrMissingDeps.
func (d *Doc) Conflicts(heads []Hash) ([]Conflict, error) {
	cl, err := d.clockAt(heads)
	if err != nil {
		return nil, err
	}
	out := []Conflict{}
	d.conflictsIn(d.objs[OpID{}], cl, nil, true, &out)
	return out, nil
}

func (d *Doc) conflictsIn(obj *object, cl clock, path []any, root bool, out *[]Conflict) {
	visit := func(at []int32, p []any) {
		vis := d.visible(at, cl)
		if len(vis) == 0 {
			return
		}
		if len(vis) > 1 {
			c := Conflict{Path: slices.Clone(p)}
			for k := len(vis) - 1; k >= 0; k-- {
				jw := &jsonWriter{d: d, cl: cl}
				jw.value(vis[k], at)
				c.Values = append(c.Values, ConflictValue{Value: jw.b, Hash: d.changeOf(d.ops[vis[k]].id)})
			}
			*out = append(*out, c)
		}
		if o := &d.ops[vis[len(vis)-1]]; o.action.IsMake() {
			d.conflictsIn(d.objs[o.id], cl, p, false, out)
		}
	}
	switch obj.typ {
	case ActMakeText:
		return
	case ActMakeList:
		idx := 0
		for e := obj.head; e >= 0; e = d.elems[e].next {
			at := d.elemOps(e)
			if len(d.visible(at, cl)) == 0 {
				continue
			}
			visit(at, append(path, idx))
			idx++
		}
	default:
		keys := make([]string, 0, len(obj.keys))
		for k := range obj.keys {
			if root && strings.HasPrefix(k, ReservedPrefix) {
				continue
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			visit(obj.keys[k], append(path, k))
		}
	}
}

// changeOf returns the hash of the change that holds op id.
func (d *Doc) changeOf(id OpID) Hash {
	if int(id.Actor) >= len(d.bySeq) {
		return Hash{}
	}
	cs := d.bySeq[id.Actor]
	// The actor's changes hold ascending op ranges: the first whose last
	// op is at or past id.
	k, _ := slices.BinarySearchFunc(cs, id.Ctr, func(ci int32, ctr uint64) int {
		switch m := d.changes[ci].maxOp; {
		case m < ctr:
			return -1
		case m > ctr:
			return 1
		}
		return 0
	})
	if k == len(cs) {
		return Hash{}
	}
	return d.changes[cs[k]].hash
}
