package engine

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/store"
)

// Paging of History.
const (
	// DefaultHistoryLimit is the page size of History for limit <= 0.
	DefaultHistoryLimit = 100
	// MaxHistoryLimit bounds one page of History.
	MaxHistoryLimit = 1000
)

// Attribution is who first pushed a change and when the server accepted
// it (PROTOCOL.md, history: "by" and "at").
type Attribution struct {
	// By is the token subject, "" without authentication or for a change
	// stored before attribution existed.
	By string
	// At is when the server first accepted the change. For a change stored
	// before attribution existed it is an upper bound: the acceptance time
	// of the next change accepted after it, or, when none was, the time of
	// the record's last append.
	At time.Time
}

// HistoryChange is one change of a record's history.
type HistoryChange struct {
	crdt.ChangeInfo // hash, actor, seq, deps, ops, and the change's own time and message
	Attribution
}

// HistoryPage is one page of History, newest first.
type HistoryPage struct {
	Changes []HistoryChange
	// Cursor continues after the last change of the page (opaque).
	Cursor string
	More   bool // older changes follow
}

// History returns up to limit changes of the record accepted before the
// change that cursor names ("" for the newest), newest first in the order
// the server accepted them, each with its attribution. New changes that
// arrive while a client pages do not move the pages it has not read yet:
// the cursor is where the last page ended, not a count.
//
// limit <= 0 means DefaultHistoryLimit; it is capped at MaxHistoryLimit.
// ErrNotFound if the record was never written, ErrGone if it was purged,
// store.ErrInvalidCursor for a cursor History did not give for this record.
//
// The first call for a record reads the attribution the store kept for it
// (one read of about 42 bytes per compacted change); the record then keeps
// its history in memory (20 bytes per change) and pages cost O(limit).
func (e *Engine) History(ctx context.Context, key store.Key, cursor string, limit int) (HistoryPage, error) {
	if limit <= 0 {
		limit = DefaultHistoryLimit
	}
	limit = min(limit, MaxHistoryLimit)
	var page HistoryPage
	err := e.withHistory(ctx, key, func(r *record, h *accepted) error {
		end := len(h.order) // places before end are listed
		if cursor != "" {
			hash, err := crdt.ParseHash(cursor)
			if err != nil {
				return fmt.Errorf("%w: %s", store.ErrInvalidCursor, "not a history cursor")
			}
			p, ok := h.placeOf(r.ix, hash)
			if !ok {
				return fmt.Errorf("%w: %s", store.ErrInvalidCursor, "no such change in the record")
			}
			end = p
		}
		start := max(0, end-limit)
		page.Changes = make([]HistoryChange, 0, end-start)
		for p := end - 1; p >= start; p-- {
			page.Changes = append(page.Changes, HistoryChange{
				ChangeInfo:  r.ix.ChangeAt(int(h.order[p])),
				Attribution: h.attribution(p),
			})
		}
		page.More = start > 0
		if n := len(page.Changes); n > 0 {
			page.Cursor = page.Changes[n-1].Hash.String()
		} else {
			page.Cursor = cursor
		}
		return nil
	})
	return page, err
}

// Attribution returns the attribution of each of hashes that the record
// holds (hashes it does not hold are left out). ErrNotFound if the record
// was never written, ErrGone if it was purged. Its cost is that of a
// History page.
func (e *Engine) Attribution(ctx context.Context, key store.Key, hashes []crdt.Hash) (map[crdt.Hash]Attribution, error) {
	out := make(map[crdt.Hash]Attribution, len(hashes))
	err := e.withHistory(ctx, key, func(r *record, h *accepted) error {
		for _, hash := range hashes {
			if p, ok := h.placeOf(r.ix, hash); ok {
				out[hash] = h.attribution(p)
			}
		}
		return nil
	})
	return out, err
}

// withHistory calls fn with the record's history, building it first if
// the record has none yet. fn runs under the record's lock.
func (e *Engine) withHistory(ctx context.Context, key store.Key, fn func(r *record, h *accepted) error) error {
	if err := e.begin(); err != nil {
		return err
	}
	defer e.wg.Done()
	if err := key.Validate(); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	r, err := e.acquire(ctx, key)
	if err != nil {
		return err
	}
	defer e.release(r)
	for attempt := 0; ; attempt++ {
		r.mu.RLock()
		if err := r.historyErrLocked(); err != nil {
			r.mu.RUnlock()
			return err
		}
		if r.hist != nil {
			defer r.mu.RUnlock()
			return fn(r, r.hist)
		}
		ix, snapSeq := r.ix, r.snapSeq
		r.mu.RUnlock()

		sctx, cancel := context.WithTimeout(ctx, e.opts.StoreTimeout)
		rows, err := e.store.ReadAttribution(sctx, key)
		cancel()
		if err != nil {
			e.stats.storeErrors.Add(1)
			return fmt.Errorf("%w: read attribution %s: %w", ErrUnavailable, key, err)
		}
		r.mu.Lock()
		// A compaction or reload meanwhile may have moved entries out of
		// the tail into rows this read missed: read again.
		if r.hist == nil && r.ix == ix && r.snapSeq == snapSeq {
			r.hist = buildHistory(r.ix, rows, r.tail, r.snapSeq, r.updatedAt)
			r.updateCostLocked()
		}
		if r.hist != nil || attempt >= 3 {
			defer r.mu.Unlock()
			if r.hist == nil {
				return fmt.Errorf("%w: history of %s: the record kept changing", ErrUnavailable, key)
			}
			if err := r.historyErrLocked(); err != nil {
				return err
			}
			return fn(r, r.hist)
		}
		r.mu.Unlock()
	}
}

// historyErrLocked says why the record has no history to show.
func (r *record) historyErrLocked() error {
	switch {
	case r.purged:
		return fmt.Errorf("%w: %s", ErrGone, r.key)
	case r.seq == 0:
		return fmt.Errorf("%w: %s", ErrNotFound, r.key)
	}
	return nil
}

// accepted is a record's changes in acceptance order with their
// attribution: 20 bytes per change.
type accepted struct {
	order []int32  // index positions, the first accepted first
	place []int32  // per index position: its place in order
	by    []uint32 // per place: its pusher in names
	at    []int64  // per place: Unix µs when accepted (or the bound, see Attribution)
	// names interns pushers: a record has few, its changes many.
	names  []string
	nameOf map[string]uint32
}

// buildHistory puts the record's changes in acceptance order: first those
// of which nothing is known (stored before attribution existed, and
// compacted then; in index order, which is a dependency order), then the
// rows compactions kept for entries up to snapSeq, then the tail's entries.
func buildHistory(ix *crdt.Index, rows []store.Attributed, tail []logEntry, snapSeq uint64, updatedAt time.Time) *accepted {
	n := ix.Len()
	h := &accepted{
		order: make([]int32, 0, n), place: make([]int32, n),
		by: make([]uint32, 0, n), at: make([]int64, 0, n),
		names: []string{""}, nameOf: map[string]uint32{"": 0},
	}
	for i := range h.place {
		h.place[i] = -1
	}
	type known struct {
		pos int
		by  string
		at  time.Time
	}
	var attributed []known
	taken := make([]bool, n)
	take := func(hash crdt.Hash, by string, at time.Time) {
		if i, ok := ix.Position(hash); ok && !taken[i] {
			taken[i] = true
			attributed = append(attributed, known{i, by, at})
		}
	}
	for _, row := range rows {
		if row.Seq > snapSeq {
			break // the tail has them
		}
		b, err := hex.DecodeString(row.Hash)
		if err != nil || len(b) != len(crdt.Hash{}) {
			continue // rows are checked when decoded; never here
		}
		take(crdt.Hash(b), row.By, row.At)
	}
	for _, le := range tail {
		for j, hash := range le.hashes {
			take(hash, byOf(le, j), le.at)
		}
	}
	for i := range n {
		if !taken[i] {
			h.add(i, "", time.Time{})
		}
	}
	for _, k := range attributed {
		h.add(k.pos, k.by, k.at)
	}
	// Unknown times get their honest bound: the next known one, or the
	// record's last append.
	next := micros(updatedAt)
	for p := len(h.at) - 1; p >= 0; p-- {
		if h.at[p] == 0 {
			h.at[p] = next
		} else {
			next = h.at[p]
		}
	}
	return h
}

// extend adds an entry the index just took (its hashes are in ix).
func (h *accepted) extend(ix *crdt.Index, le logEntry) {
	at := le.at
	if at.IsZero() {
		// Written by a process without attribution: it was accepted by
		// now, at the latest.
		at = time.Now()
	}
	for j, hash := range le.hashes {
		if i, ok := ix.Position(hash); ok && (i >= len(h.place) || h.place[i] < 0) {
			h.add(i, byOf(le, j), at)
		}
	}
}

func (h *accepted) add(pos int, by string, at time.Time) {
	for len(h.place) <= pos {
		h.place = append(h.place, -1)
	}
	name, ok := h.nameOf[by]
	if !ok {
		name = uint32(len(h.names))
		h.names = append(h.names, by)
		h.nameOf[by] = name
	}
	h.place[pos] = int32(len(h.order))
	h.order = append(h.order, int32(pos))
	h.by = append(h.by, name)
	h.at = append(h.at, micros(at))
}

// placeOf is the place in acceptance order of the change with hash, if
// the record holds it.
func (h *accepted) placeOf(ix *crdt.Index, hash crdt.Hash) (int, bool) {
	i, ok := ix.Position(hash)
	if !ok || i >= len(h.place) || h.place[i] < 0 {
		return 0, false
	}
	return int(h.place[i]), true
}

func (h *accepted) attribution(place int) Attribution {
	a := Attribution{By: h.names[h.by[place]]}
	if us := h.at[place]; us != 0 {
		a.At = time.UnixMicro(us).UTC()
	}
	return a
}

// memoryBytes is what the cache counts for h (nil: nothing).
func (h *accepted) memoryBytes() int64 {
	if h == nil {
		return 0
	}
	b := int64(cap(h.order)+cap(h.place)+cap(h.by))*4 + int64(cap(h.at))*8
	for _, n := range h.names {
		b += int64(len(n)) + 64
	}
	return b
}

// byOf is who pushed change j of le ("" when unknown).
func byOf(le logEntry, j int) string {
	if j < len(le.by) {
		return le.by[j]
	}
	return ""
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// attributedRows are the rows a snapshot through seq keeps for the tail's
// entries it compacts (those after the previous snapshot).
func attributedRows(tail []logEntry, seq uint64) []store.Attributed {
	var rows []store.Attributed
	for _, le := range tail {
		if le.seq > seq {
			break
		}
		for j, hash := range le.hashes {
			rows = append(rows, store.Attributed{Seq: le.seq, Hash: hash.String(), By: byOf(le, j), At: le.at})
		}
	}
	return rows
}
