package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/store"
)

// WriteResult is the outcome of a plain-JSON write or a restore.
type WriteResult struct {
	View    View // the record's JSON view right after the write
	Created bool // the write created the record
	Changed bool // the write made a change (false: the record already was so)
}

// PatchKind says how PatchJSON reads a patch.
type PatchKind int

// Patch kinds (PROTOCOL.md, Plain-JSON writes).
const (
	// MergePatch is RFC 7396 (application/merge-patch+json).
	MergePatch PatchKind = iota + 1
	// JSONPatch is RFC 6902 (application/json-patch+json).
	JSONPatch
)

// ETag is the entity tag of a record's JSON view at heads: the same heads
// give the same view, byte for byte. If-Match preconditions compare with it.
func ETag(heads []crdt.Hash) string {
	ss := crdt.HashStrings(heads)
	slices.Sort(ss)
	sum := sha256.Sum256([]byte(strings.Join(ss, ",")))
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// ifMatches implements If-Match (RFC 9110 section 13.1.1): "*" matches any
// existing record, otherwise one of the listed tags must equal the view's,
// compared strongly (a weak tag never matches).
func ifMatches(header string, exists bool, heads []crdt.Hash) bool {
	if !exists {
		return false
	}
	etag := ETag(heads)
	for _, t := range strings.Split(header, ",") {
		if t = strings.TrimSpace(t); t == "*" || t == etag {
			return true
		}
	}
	return false
}

// PutJSON makes the record equal body, a JSON object (PROTOCOL.md,
// Plain-JSON writes), creating it when it was never written: one change
// made by this engine, merged and stored like a pushed change. by is the
// caller's token subject ("" without authentication). ifMatch, when not
// empty, is an If-Match header: ErrPreconditionFailed unless the record's
// view has that ETag. ErrInvalidWrite for a body that is not a JSON object
// or holds a reserved key; ErrDeleted for a deleted record; ErrGone for a
// purged one.
func (e *Engine) PutJSON(ctx context.Context, key store.Key, body []byte, ifMatch, by string) (WriteResult, error) {
	target, err := crdt.ParseJSONObject(body)
	if err != nil {
		return WriteResult{}, err
	}
	return e.writeOwn(ctx, key, writeSpec{create: true, ifMatch: ifMatch, by: by},
		func(d *crdt.Doc) (crdt.Change, bool, error) {
			return d.ChangeToJSON(target, e.actor, time.Now().Unix())
		})
}

// PatchJSON applies patch (of kind) to the record's JSON view and makes the
// record equal the result, as PutJSON does. ErrNotFound when the record was
// never written; ErrInvalidWrite for a malformed patch, one that names a
// reserved key, or one that does not apply; ErrTestFailed when a JSON Patch
// "test" fails; otherwise as PutJSON.
func (e *Engine) PatchJSON(ctx context.Context, key store.Key, kind PatchKind, patch []byte, ifMatch, by string) (WriteResult, error) {
	var build func(d *crdt.Doc) (crdt.Change, bool, error)
	switch kind {
	case MergePatch:
		// Applied to the document directly, key by key, rather than to its
		// JSON view: the cost follows the patch, not the record, and it is
		// RFC 7396 as written (json-patch/v5 also drops nulls inside
		// arrays). A patch that is not an object would make the record
		// something else than an object.
		p, err := crdt.ParseJSONObject(patch)
		if err != nil {
			return WriteResult{}, err
		}
		build = func(d *crdt.Doc) (crdt.Change, bool, error) {
			return d.ChangeToMergePatch(p, e.actor, time.Now().Unix())
		}
	case JSONPatch:
		p, err := decodeJSONPatch(patch)
		if err != nil {
			return WriteResult{}, err
		}
		build = func(d *crdt.Doc) (crdt.Change, bool, error) {
			cur, err := d.JSON(crdt.JSONOptions{HideReserved: true})
			if err != nil {
				return crdt.Change{}, false, err
			}
			out, err := applyJSONPatch(p, cur, e.opts.MaxChangeBytes)
			if err != nil {
				return crdt.Change{}, false, err
			}
			target, err := crdt.ParseJSONObject(out)
			if err != nil {
				return crdt.Change{}, false, err
			}
			return d.ChangeToJSON(target, e.actor, time.Now().Unix())
		}
	default:
		return WriteResult{}, fmt.Errorf("%w: unknown patch kind %d", ErrInvalidWrite, kind)
	}
	return e.writeOwn(ctx, key, writeSpec{ifMatch: ifMatch, by: by}, build)
}

// decodeJSONPatch parses an RFC 6902 patch and refuses any path (or from)
// through a reserved key.
func decodeJSONPatch(patch []byte) (jsonpatch.Patch, error) {
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		return nil, fmt.Errorf("%w: JSON Patch: %v", ErrInvalidWrite, err)
	}
	if len(p) == 0 && !bytes.HasPrefix(bytes.TrimSpace(patch), []byte("[")) {
		return nil, fmt.Errorf("%w: JSON Patch must be an array of operations", ErrInvalidWrite)
	}
	for i, op := range p {
		path, err := op.Path()
		if err != nil {
			return nil, fmt.Errorf("%w: JSON Patch operation %d: no path", ErrInvalidWrite, i)
		}
		paths := []string{path}
		if k := op.Kind(); k == "move" || k == "copy" {
			from, err := op.From()
			if err != nil {
				return nil, fmt.Errorf("%w: JSON Patch operation %d: %s without from", ErrInvalidWrite, i, k)
			}
			paths = append(paths, from)
		}
		for _, pt := range paths {
			for _, seg := range strings.Split(pt, "/") {
				seg = strings.NewReplacer("~1", "/", "~0", "~").Replace(seg)
				if strings.HasPrefix(seg, crdt.ReservedPrefix) {
					return nil, fmt.Errorf("%w: JSON Patch operation %d: reserved key %q in %q", ErrInvalidWrite, i, seg, pt)
				}
			}
		}
	}
	return p, nil
}

// applyJSONPatch applies p to doc one operation at a time, so that a failed
// "test" (ErrTestFailed) is told from an operation that does not apply
// (ErrInvalidWrite). copyLimit bounds what "copy" operations may add.
func applyJSONPatch(p jsonpatch.Patch, doc []byte, copyLimit int) ([]byte, error) {
	opts := jsonpatch.NewApplyOptions()
	opts.SupportNegativeIndices = false // not RFC 6902
	opts.AccumulatedCopySizeLimit = int64(copyLimit)
	for i, op := range p {
		out, err := jsonpatch.Patch{op}.ApplyWithOptions(doc, opts)
		switch {
		case err != nil && op.Kind() == "test":
			return nil, fmt.Errorf("%w: operation %d: %v", ErrTestFailed, i, err)
		case err != nil:
			return nil, fmt.Errorf("%w: JSON Patch operation %d does not apply: %v", ErrInvalidWrite, i, err)
		}
		doc = out
	}
	return doc, nil
}

// Restore makes the one change that turns the record's current state into
// its state at heads (PROTOCOL.md, POST …/restore), $deleted included, so
// restoring a version from before a delete undeletes. Nothing of the
// history is removed; restoring to the current heads makes no change.
// ErrInvalidWrite when heads is empty or names a change the record does
// not have; ErrNotFound, ErrGone and ifMatch as PutJSON; a deleted record
// may be restored.
func (e *Engine) Restore(ctx context.Context, key store.Key, heads []crdt.Hash, ifMatch, by string) (WriteResult, error) {
	if len(heads) == 0 {
		return WriteResult{}, fmt.Errorf("%w: restore needs at least one head", ErrInvalidWrite)
	}
	return e.writeOwn(ctx, key, writeSpec{ifMatch: ifMatch, by: by, deletedOK: true},
		func(d *crdt.Doc) (crdt.Change, bool, error) {
			c, ok, err := d.ChangeToHeads(heads, e.actor, time.Now().Unix())
			if errors.Is(err, crdt.ErrMissingDeps) {
				return crdt.Change{}, false, fmt.Errorf("%w: %v", ErrInvalidWrite, err)
			}
			return c, ok, err
		})
}

// writeSpec is what a write made by the engine may do.
type writeSpec struct {
	create    bool   // a record never written is created (else ErrNotFound)
	deletedOK bool   // a deleted record may be written (else ErrDeleted)
	ifMatch   string // If-Match precondition, "" for none
	by        string // the caller's token subject
}

// writeOwn makes one change of this engine's actor to the record, built by
// build from its current document, and writes it as SetDeleted does: one
// such change per record at a time (ownMu), through the group-commit path
// of pushes (limits, events, stores). The preconditions are checked on the
// document the change is built from.
func (e *Engine) writeOwn(ctx context.Context, key store.Key, spec writeSpec, build func(*crdt.Doc) (crdt.Change, bool, error)) (WriteResult, error) {
	if err := e.begin(); err != nil {
		return WriteResult{}, err
	}
	defer e.wg.Done()
	if err := key.Validate(); err != nil {
		return WriteResult{}, fmt.Errorf("engine: %w", err)
	}
	r, err := e.acquire(ctx, key)
	if err != nil {
		return WriteResult{}, err
	}
	defer e.release(r)

	r.ownMu.Lock()
	defer r.ownMu.Unlock()
	r.mu.RLock()
	seq, purged := r.seq, r.purged
	r.mu.RUnlock()
	if purged {
		return WriteResult{}, fmt.Errorf("%w: %s", ErrGone, key)
	}
	exists := seq > 0
	if !exists && !spec.create {
		return WriteResult{}, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	check := func(d *crdt.Doc) (crdt.Change, bool, error) {
		if spec.ifMatch != "" && !ifMatches(spec.ifMatch, exists, d.Heads()) {
			return crdt.Change{}, false, fmt.Errorf("%w: %s", ErrPreconditionFailed, key)
		}
		if !spec.deletedOK {
			if deleted, _ := d.Deleted(nil); deleted {
				return crdt.Change{}, false, fmt.Errorf("%w: %s", ErrDeleted, key)
			}
		}
		return build(d)
	}
	var c crdt.Change
	var made bool
	if exists {
		err = e.withDoc(ctx, r, seq, func(d *crdt.Doc) error {
			var err error
			c, made, err = check(d)
			return err
		})
	} else {
		c, made, err = check(crdt.NewDoc())
	}
	if err != nil {
		return WriteResult{}, err
	}
	if !exists && !made {
		// An empty object: the record is created all the same, by an
		// empty change (as Automerge.emptyChange makes), so that it has
		// heads and a view.
		c, err = crdt.EncodeChange(crdt.ChangeHeader{Seq: 1, StartOp: 1, Time: time.Now().Unix()}, [][]byte{e.actor}, 0, nil)
		if err != nil {
			return WriteResult{}, fmt.Errorf("engine: %s: %w", key, err)
		}
		made = true
	}
	if made {
		// The limits of a pushed change (its size, its allocation budget)
		// hold for this one too: it goes through the same parse.
		cs, err := e.split(c.Raw)
		if err != nil {
			return WriteResult{}, fmt.Errorf("engine: %s: %w", key, err)
		}
		// The change is the caller's: attributed to them like a push.
		if err := e.write(ctx, r, cs, spec.by); err != nil {
			return WriteResult{}, err
		}
	}
	v, err := e.view(ctx, r, ViewOptions{})
	if err != nil {
		return WriteResult{}, err
	}
	return WriteResult{View: v, Created: !exists, Changed: made}, nil
}
