package crdt

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/automerge/automerge-go"
)

// Doc is a record's Automerge document (automerge-go). Never give it bytes a
// client sent inside the serving process: automerge-go can abort the process
// on crafted input. Only crdt/worker does, in child processes.
//
// A Doc is not safe for concurrent use, and two Docs must never be merged
// concurrently (automerge-go deadlocks): callers serialise per record.
type Doc struct {
	am   *automerge.Doc
	hist *history // built on first use for loaded documents
}

// NewDoc returns an empty document.
func NewDoc() *Doc { return &Doc{am: automerge.New(), hist: newHistory()} }

// LoadDoc loads a saved document (a snapshot).
func LoadDoc(data []byte) (*Doc, error) {
	am, err := automerge.Load(data)
	if err != nil {
		return nil, fmt.Errorf("crdt: load document: %w", err)
	}
	return &Doc{am: am}, nil
}

// Apply applies changes (validated by Split). It checks afterwards that every
// change is in the document: a change whose dependencies are missing gives
// ErrMissingDeps, one that automerge dropped gives ErrInvalidChange. On error
// the document may hold part of the changes: discard it.
//
// Before automerge-go sees anything, each new change is checked against the
// document's history (see history): seq and start op follow from its deps,
// and every object, element and predecessor it names exists and has the
// right kind. automerge-go applies changes that get these wrong; the
// document then fails to load, in Go and in Automerge JS, or JS refuses the
// change outright. TestDifferentialJS holds this to zero mismatches.
//
// Cost (measured, BenchmarkApply_History64, 2 cores): 0.14-0.23 ms and
// about 160 KB of allocations for one 30-op change to a 64-change document,
// automerge-go's LoadIncremental and hash lookups included. The checks are
// O(ops of the change) map lookups. The first Apply on a document from
// LoadDoc indexes its whole history once (O(ops)), and the index holds an
// entry per op (~150 bytes) for as long as the Doc lives.
func (d *Doc) Apply(changes []Change) error {
	if len(changes) == 0 {
		return nil
	}
	hist, err := d.history()
	if err != nil {
		return err
	}
	// Check every new change against the history, dependencies first,
	// before automerge-go sees any of them; commit to the index only once
	// automerge-go holds them all.
	added := hist.overlay()
	pending := make([]*Change, 0, len(changes))
	for i := range changes {
		if hist.meta(changes[i].Hash) == nil {
			pending = append(pending, &changes[i])
		}
	}
	for len(pending) > 0 {
		var next []*Change
		for _, c := range pending {
			if added.meta(c.Hash) != nil {
				continue // a duplicate within the batch
			}
			ready := true
			for _, dep := range c.Deps {
				if added.meta(dep) == nil {
					ready = false
					break
				}
			}
			if !ready {
				next = append(next, c)
				continue
			}
			// Work from the raw bytes, not from fields a caller may have
			// filled: they are what automerge-go will see.
			pc, ops, err := changeOps(c)
			if err != nil {
				return err
			}
			c = &pc
			maxOp, err := added.check(c)
			if err != nil {
				return err
			}
			added.addOps(ops)
			if err := added.checkOps(c, ops); err != nil {
				return err
			}
			added.add(c, maxOp)
		}
		if len(next) == len(pending) {
			c := next[0]
			for _, dep := range c.Deps {
				if added.meta(dep) == nil {
					return fmt.Errorf("%w: change %s needs %s", ErrMissingDeps, c.Hash, dep)
				}
			}
		}
		pending = next
	}

	// LoadIncremental: automerge-go cannot parse change chunks one by one.
	// It returns no error for chunks it drops, hence the check after.
	if err := d.am.LoadIncremental(Join(changes)); err != nil {
		return fmt.Errorf("%w: automerge: %w", ErrInvalidChange, err)
	}
	for _, c := range changes {
		if !d.has(c.Hash) {
			return fmt.Errorf("%w: change %s was not applied", ErrInvalidChange, c.Hash)
		}
	}
	d.hist = added.commit()
	return nil
}

// history returns the document's history index, building it from the
// document's changes on first use (a document from LoadDoc).
func (d *Doc) history() (*history, error) {
	if d.hist != nil {
		return d.hist, nil
	}
	chs, err := d.Changes()
	if err != nil {
		return nil, err
	}
	h := newHistory()
	for i := range chs {
		c := &chs[i]
		var maxOp uint64
		for _, dep := range c.Deps {
			if m := h.meta(dep); m != nil {
				maxOp = max(maxOp, m.maxOp)
			}
		}
		h.add(c, max(maxOp, c.StartOp+uint64(c.Ops)-1))
		_, ops, err := changeOps(c)
		if err != nil {
			return nil, err
		}
		h.addOps(ops)
	}
	d.hist = h
	return h, nil
}

// changeOps parses a change's raw chunk again, this time keeping what each
// operation is: Split keeps only counts, so that a Change stays small in the
// engine's memory.
func changeOps(c *Change) (Change, []opInfo, error) {
	var ops []opInfo
	pc, n, err := parseChunkOps(c.Raw, max(DefaultMaxChunkBytes, 64*len(c.Raw)), MaxOps, func(o opInfo) { ops = append(ops, o) })
	if err == nil && n != len(c.Raw) {
		err = fmt.Errorf("%d bytes after the chunk", len(c.Raw)-n)
	}
	if err == nil && pc.Hash != c.Hash {
		err = fmt.Errorf("raw bytes have hash %s", pc.Hash)
	}
	if err != nil {
		return Change{}, nil, fmt.Errorf("%w: change %s: %w", ErrInvalidChange, c.Hash, err)
	}
	return pc, ops, nil
}

func (d *Doc) has(h Hash) bool {
	_, err := d.am.Change(automerge.ChangeHash(h))
	return err == nil
}

// Has reports whether the document holds the change with hash h.
func (d *Doc) Has(h Hash) bool { return d.has(h) }

// Save returns the whole document, compacted.
func (d *Doc) Save() []byte { return d.am.Save() }

// Heads returns the document's heads, sorted.
func (d *Doc) Heads() []Hash {
	hs := d.am.Heads()
	out := make([]Hash, len(hs))
	for i, h := range hs {
		out[i] = Hash(h)
	}
	sortHashes(out)
	return out
}

func sortHashes(hs []Hash) {
	slices.SortFunc(hs, func(a, b Hash) int { return bytes.Compare(a[:], b[:]) })
}

// Changes returns every change of the document, dependencies first.
func (d *Doc) Changes() ([]Change, error) {
	chs, err := d.am.Changes()
	if err != nil {
		return nil, fmt.Errorf("crdt: changes: %w", err)
	}
	out := make([]Change, 0, len(chs))
	for _, ch := range chs {
		raw := ch.Save()
		// Changes rebuilt from a loaded document are re-encoded by
		// automerge; parse them with the same rules as client input, with
		// no size limit but the one the document already passed.
		c, n, err := parseChunk(raw, max(len(raw)*64, DefaultMaxChunkBytes))
		if err != nil || n != len(raw) {
			return nil, fmt.Errorf("crdt: change %s of the document does not parse: %w", ch.Hash(), err)
		}
		if c.Hash != Hash(ch.Hash()) {
			return nil, fmt.Errorf("crdt: change %s parses with hash %s", ch.Hash(), c.Hash)
		}
		out = append(out, c)
	}
	return out, nil
}
