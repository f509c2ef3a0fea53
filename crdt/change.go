package crdt

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// Column specs of a change's operation columns: column id << 4 | encoding
// type (Automerge binary format spec, "Change chunk columns"; Rust core
// storage/change/change_op_columns.rs). Bit 3 is the DEFLATE flag, which
// change chunks never use: a whole change is compressed instead.
const (
	colObjActor   = 0x01 // 0, actor
	colObjCtr     = 0x02 // 0, ULEB
	colKeyActor   = 0x11 // 1, actor
	colKeyCtr     = 0x13 // 1, delta
	colKeyStr     = 0x15 // 1, string
	colIDActor    = 0x21 // 2, actor (documents only)
	colIDCtr      = 0x23 // 2, delta (documents only)
	colInsert     = 0x34 // 3, boolean
	colAction     = 0x42 // 4, ULEB
	colValMeta    = 0x56 // 5, value metadata
	colValRaw     = 0x57 // 5, value
	colPredGroup  = 0x70 // 7, group (changes)
	colPredActor  = 0x71 // 7, actor
	colPredCtr    = 0x73 // 7, delta
	colSuccGroup  = 0x80 // 8, group (documents)
	colSuccActor  = 0x81 // 8, actor
	colSuccCtr    = 0x83 // 8, delta
	colExpand     = 0x94 // 9, boolean (marks, Automerge 2.2+)
	colMarkName   = 0xa5 // 10, string (marks, Automerge 2.2+)
	colDeflateBit = 0x08
)

var changeColumns = map[uint64]bool{
	colObjActor: true, colObjCtr: true, colKeyActor: true, colKeyCtr: true,
	colKeyStr: true, colInsert: true, colAction: true, colValMeta: true,
	colValRaw: true, colPredGroup: true, colPredActor: true, colPredCtr: true,
	colExpand: true, colMarkName: true,
}

// Change is one validated Automerge change chunk.
type Change struct {
	Hash    Hash
	Deps    []Hash
	Actor   []byte
	Seq     uint64 // the actor's sequence number, from 1
	StartOp uint64
	Time    int64 // the change's timestamp as its author wrote it, 0 if unset
	Message string
	Ops     int    // number of operations in the change
	Raw     []byte // the chunk exactly as received (header included)

	// Budget is what the change costs against the allocation budget: its
	// operations other than deletions (see Limits).
	Budget int

	// ops, when set, are the change's operations already decoded (a change
	// rebuilt from a document), with the actor table they index and the
	// change's own actor in it: readOps walks them instead of parsing Raw.
	ops      []Op
	opActors [][]byte
	opOwn    uint32
}

// MaxOp returns the counter of the change's last operation (StartOp-1 for an
// empty change).
func (c *Change) MaxOp() uint64 { return c.StartOp + uint64(c.Ops) - 1 }

// Join concatenates the raw chunks of changes.
func Join(changes []Change) []byte {
	n := 0
	for _, c := range changes {
		n += len(c.Raw)
	}
	out := make([]byte, 0, n)
	for _, c := range changes {
		out = append(out, c.Raw...)
	}
	return out
}

// changeBody is the parsed header of a change and its raw op columns.
type changeBody struct {
	deps    []Hash
	actors  [][]byte // actors[0] is the change's own actor
	seq     uint64
	startOp uint64
	time    int64
	message string
	cols    map[uint64][]byte
}

// parseChangeBody parses the header of an uncompressed change body and
// splits out its op columns, refusing anything Automerge would not write
// (and so could not rebuild with the same hash from a saved document).
func parseChangeBody(body []byte) (*changeBody, error) {
	c := &changeBody{}
	r := &reader{b: body}
	fail := func(what string, err error) (*changeBody, error) {
		return nil, fmt.Errorf("%s at body offset %d: %w", what, r.off, err)
	}

	nDeps, err := r.uleb()
	if err != nil {
		return fail("deps count", err)
	}
	if nDeps > uint64(r.rest()/32) {
		return fail("deps", errTruncated)
	}
	c.deps = make([]Hash, nDeps)
	for i := range c.deps {
		b, _ := r.bytes(32)
		c.deps[i] = Hash(b)
		// Automerge writes deps sorted, and rebuilds them sorted when it
		// loads a saved document: any other order would change the hash.
		if i > 0 && bytes.Compare(c.deps[i-1][:], c.deps[i][:]) >= 0 {
			return fail("deps", errors.New("not strictly ascending"))
		}
	}

	actor, err := readBytes(r)
	if err != nil {
		return fail("actor", err)
	}
	if len(actor) == 0 {
		return fail("actor", errors.New("empty actor ID"))
	}
	c.actors = [][]byte{actor}

	if c.seq, err = r.uleb(); err != nil {
		return fail("seq", err)
	}
	if c.seq == 0 || c.seq > math.MaxInt64 {
		return fail("seq", fmt.Errorf("%d out of range", c.seq))
	}
	if c.startOp, err = r.uleb(); err != nil {
		return fail("start op", err)
	}
	if c.startOp == 0 || c.startOp > math.MaxInt64 {
		return fail("start op", fmt.Errorf("%d out of range", c.startOp))
	}
	if c.time, err = r.sleb(); err != nil {
		return fail("time", err)
	}
	msg, err := readBytes(r)
	if err != nil {
		return fail("message", err)
	}
	if !utf8.Valid(msg) {
		return fail("message", errors.New("not valid UTF-8"))
	}
	c.message = string(msg)

	nOther, err := r.uleb()
	if err != nil {
		return fail("other actors count", err)
	}
	if nOther > uint64(r.rest()) {
		return fail("other actors", errTruncated)
	}
	for i := uint64(0); i < nOther; i++ {
		a, err := readBytes(r)
		if err != nil {
			return fail("other actor", err)
		}
		if len(a) == 0 {
			return fail("other actor", errors.New("empty actor ID"))
		}
		if bytes.Equal(a, actor) {
			return fail("other actor", errors.New("repeats the change's actor"))
		}
		// Rebuilt changes list other actors in ascending order.
		if i > 0 && bytes.Compare(c.actors[len(c.actors)-1], a) >= 0 {
			return fail("other actors", errors.New("not strictly ascending"))
		}
		c.actors = append(c.actors, a)
	}

	c.cols, err = parseColumns(r, changeColumns, false)
	if err != nil {
		return fail("columns", err)
	}
	if !r.done() {
		// Rust keeps such "extra bytes" and hashes them, but drops them when
		// the change is rebuilt from a saved document: refuse them.
		return fail("change body", fmt.Errorf("%d bytes after the columns", r.rest()))
	}
	return c, nil
}

// parseColumns reads column metadata (count, then spec and length of each)
// and the column data after it. Specs must be known and ascending, and no
// column empty (Automerge omits those). Documents may deflate columns
// (deflate true): such columns are inflated, and the spec is returned without
// the flag.
func parseColumns(r *reader, known map[uint64]bool, deflate bool) (map[uint64][]byte, error) {
	nCols, err := r.uleb()
	if err != nil {
		return nil, fmt.Errorf("column count: %w", err)
	}
	if nCols > uint64(r.rest()) {
		return nil, errTruncated
	}
	type colRange struct{ spec, n uint64 }
	specs := make([]colRange, 0, nCols)
	var total uint64
	for i := uint64(0); i < nCols; i++ {
		spec, err := r.uleb()
		if err != nil {
			return nil, fmt.Errorf("column spec: %w", err)
		}
		n, err := r.uleb()
		if err != nil {
			return nil, fmt.Errorf("column length: %w", err)
		}
		if i > 0 && spec&^colDeflateBit <= specs[len(specs)-1].spec&^colDeflateBit {
			return nil, fmt.Errorf("spec %#x not ascending", spec)
		}
		if spec&colDeflateBit != 0 && !deflate {
			return nil, fmt.Errorf("deflated column %#x in a change", spec)
		}
		if !known[spec&^colDeflateBit] {
			return nil, fmt.Errorf("unknown column %#x", spec)
		}
		if n == 0 {
			// Automerge omits empty columns; a present but empty one would
			// vanish when the change is rebuilt from a saved document.
			return nil, fmt.Errorf("empty column %#x", spec)
		}
		total += n
		if total > uint64(r.rest()) {
			return nil, fmt.Errorf("column data: %w", errTruncated)
		}
		specs = append(specs, colRange{spec, n})
	}
	cols := make(map[uint64][]byte, len(specs))
	for _, s := range specs {
		b, _ := r.bytes(s.n)
		if s.spec&colDeflateBit != 0 {
			if b, err = inflate(b, DefaultMaxChunkBytes); err != nil {
				return nil, fmt.Errorf("column %#x: %w", s.spec, err)
			}
		}
		cols[s.spec&^colDeflateBit] = b
	}
	return cols, nil
}

func readBytes(r *reader) ([]byte, error) {
	n, err := r.uleb()
	if err != nil {
		return nil, err
	}
	return r.bytes(n)
}

// opReader streams the operations of a change out of its columns and checks
// each one on its own: well-formed IDs and keys, values of the right type,
// predecessors in order. What ops refer to across the change and the record
// (objects, elements, predecessors) is checked by Index.
type opReader struct {
	n, i    int // operations, and the next one's index
	startOp uint64
	actors  [][]byte
	used    []bool // actors referred to by some op

	objActor, objCtr, keyActor *ulebDecoder
	keyCtr                     *deltaDecoder
	keyStr                     *strDecoder
	insert                     *boolDecoder
	action                     *ulebDecoder
	value                      *valueDecoder
	predGroup, predActor       *ulebDecoder
	predCtr                    *deltaDecoder
	expand                     *boolDecoder
	markName                   *strDecoder

	dels int // deletions (action column), counted up front
}

// newOpReader prepares to read the ops of a change body. It counts them, and
// the deletions among them, first (the action column), refusing more than
// maxOps before any other column is read. canonical checks every column's encoding (client input).
func newOpReader(c *changeBody, maxOps int, canonical bool) (*opReader, error) {
	return newOpReaderPreds(c, maxOps, maxOps, canonical)
}

// newOpReaderPreds is newOpReader with a separate bound on the
// predecessors of all ops together.
func newOpReaderPreds(c *changeBody, maxOps, maxPreds int, canonical bool) (*opReader, error) {
	limit := uint64(max(maxOps, 0))
	actions := newUlebDecoder(c.cols[colAction], limit, false)
	n, dels := 0, 0
	for !actions.done() {
		a, ok, err := actions.next()
		if err != nil {
			if errors.Is(err, errTooManyOps) {
				return nil, fmt.Errorf("%w: more than %d operations", errTooManyOps, maxOps)
			}
			return nil, fmt.Errorf("column %#x: %w", colAction, err)
		}
		if ok && a == uint64(ActDel) {
			dels++
		}
		n++
	}
	if c.startOp > math.MaxInt64-uint64(n) {
		return nil, fmt.Errorf("start op %d + %d ops overflows", c.startOp, n)
	}
	u := uint64(n)
	return &opReader{
		n: n, dels: dels, startOp: c.startOp, actors: c.actors, used: make([]bool, len(c.actors)),
		objActor:  newUlebDecoder(c.cols[colObjActor], u, canonical),
		objCtr:    newUlebDecoder(c.cols[colObjCtr], u, canonical),
		keyActor:  newUlebDecoder(c.cols[colKeyActor], u, canonical),
		keyCtr:    newDeltaDecoder(c.cols[colKeyCtr], u, canonical),
		keyStr:    newStrDecoder(c.cols[colKeyStr], u, canonical),
		insert:    newBoolDecoder(c.cols[colInsert], u, canonical),
		action:    newUlebDecoder(c.cols[colAction], u, canonical),
		value:     newValueDecoder(c.cols[colValMeta], c.cols[colValRaw], u, canonical),
		predGroup: newUlebDecoder(c.cols[colPredGroup], u, canonical),
		predActor: newUlebDecoder(c.cols[colPredActor], uint64(max(maxPreds, 0)), canonical),
		predCtr:   newDeltaDecoder(c.cols[colPredCtr], uint64(max(maxPreds, 0)), canonical),
		expand:    newBoolDecoder(c.cols[colExpand], u, canonical),
		markName:  newStrDecoder(c.cols[colMarkName], u, canonical),
	}, nil
}

// actorRef turns a column's actor index into an OpID actor, checking range.
func (r *opReader) actorRef(a uint64) (uint32, bool) {
	if a >= uint64(len(r.actors)) {
		return 0, false
	}
	r.used[a] = true
	return uint32(a), true
}

// next reads the next operation into op (op.Pred is reused).
func (r *opReader) next(op *Op) error {
	i := r.i
	r.i++
	opCtr := r.startOp + uint64(i)
	fail := func(format string, args ...any) error {
		return fmt.Errorf("op %d: %s", i, fmt.Sprintf(format, args...))
	}
	colErr := func(spec uint64, err error) error { return fmt.Errorf("op %d: column %#x: %w", i, spec, err) }
	// older reports whether an op ID of this change's own actor is older
	// than this op (ops may only refer to earlier ones).
	older := func(id OpID) bool { return id.Actor != 0 || id.Ctr < opCtr }

	op.ID = OpID{Ctr: opCtr, Actor: 0}
	act, ok, err := r.action.next()
	if err != nil {
		return colErr(colAction, err)
	}
	if !ok || act > uint64(ActMark) {
		return fail("invalid action")
	}
	op.Action = Action(act)

	// Object: both null is the root; otherwise an op ID made earlier.
	oa, oaOK, err := r.objActor.next()
	if err != nil {
		return colErr(colObjActor, err)
	}
	oc, ocOK, err := r.objCtr.next()
	if err != nil {
		return colErr(colObjCtr, err)
	}
	switch {
	case !oaOK && !ocOK:
		op.Obj = OpID{}
	case oaOK && ocOK && oc > 0 && oc <= math.MaxInt64:
		a, inRange := r.actorRef(oa)
		if !inRange {
			return fail("object actor %d out of range", oa)
		}
		op.Obj = OpID{Ctr: oc, Actor: a}
		if !older(op.Obj) {
			return fail("object %d@0 is not older than the op", oc)
		}
	default:
		return fail("invalid object ID")
	}

	if op.Insert, err = r.insert.next(); err != nil {
		return colErr(colInsert, err)
	}

	// Key: a map key string, or a list element ID (counter 0 = head).
	ka, kaOK, err := r.keyActor.next()
	if err != nil {
		return colErr(colKeyActor, err)
	}
	kc, kcOK, err := r.keyCtr.next()
	if err != nil {
		return colErr(colKeyCtr, err)
	}
	ks, ksOK, err := r.keyStr.next()
	if err != nil {
		return colErr(colKeyStr, err)
	}
	op.Key = Key{}
	switch {
	case ksOK:
		if kaOK || kcOK {
			return fail("both a map key and an element ID")
		}
		if op.Insert {
			return fail("insert with a map key")
		}
		op.Key = Key{Map: ks, IsMap: true}
	case kcOK && kc == 0 && !kaOK:
		if !op.Insert {
			return fail("head element without insert")
		}
	case kcOK && kc > 0 && kaOK:
		a, inRange := r.actorRef(ka)
		if !inRange {
			return fail("element actor %d out of range", ka)
		}
		op.Key.Elem = OpID{Ctr: kc, Actor: a}
		if !older(op.Key.Elem) {
			return fail("element %d@0 is not older than the op", kc)
		}
	default:
		return fail("invalid key")
	}
	if !op.Key.IsMap && op.Obj.IsZero() {
		return fail("element key in the root map")
	}

	typ, raw, err := r.value.next()
	if err != nil {
		return colErr(colValMeta, err)
	}
	if err := checkValue(typ, raw); err != nil {
		return fail("%v", err)
	}
	op.Value = Value{Type: uint8(typ), Raw: raw}
	switch {
	case op.Action.IsMake() || op.Action == ActDel:
		if typ != valNull {
			return fail("action %d with a value", op.Action)
		}
	case op.Action == ActInc:
		if typ != valInt && typ != valUint {
			return fail("increment by a non-integer")
		}
		if typ == valUint && op.Value.Int() < 0 {
			return fail("increment out of range")
		}
	}
	if op.Insert && (op.Action == ActDel || op.Action == ActInc) {
		return fail("insert with action %d", op.Action)
	}

	g, gOK, err := r.predGroup.next()
	if err != nil {
		return colErr(colPredGroup, err)
	}
	if !gOK && len(r.predGroup.r.b) > 0 {
		return fail("null pred count")
	}
	if op.Insert && g > 0 {
		return fail("insert with predecessors")
	}
	op.Pred = op.Pred[:0]
	for j := uint64(0); j < g; j++ {
		pa, paOK, err := r.predActor.next()
		if err != nil {
			return colErr(colPredActor, err)
		}
		pc, pcOK, err := r.predCtr.next()
		if err != nil {
			return colErr(colPredCtr, err)
		}
		if !paOK || !pcOK || pc == 0 {
			return fail("invalid predecessor")
		}
		a, inRange := r.actorRef(pa)
		if !inRange {
			return fail("predecessor actor %d out of range", pa)
		}
		p := OpID{Ctr: pc, Actor: a}
		if !older(p) {
			return fail("predecessor %d@0 is not older than the op", pc)
		}
		// Predecessors are kept in Lamport order (counter, then actor),
		// as Automerge writes them and rebuilds them from a document.
		if j > 0 {
			prev := op.Pred[j-1]
			if p.Ctr < prev.Ctr || p.Ctr == prev.Ctr && bytes.Compare(r.actors[prev.Actor], r.actors[p.Actor]) >= 0 {
				return fail("predecessors out of order")
			}
		}
		op.Pred = append(op.Pred, p)
	}
	if op.Action == ActDel && len(op.Pred) == 0 {
		// A deletion deletes something: Automerge keeps deletions only as
		// successors of what they delete, so one without any vanishes
		// from a saved document.
		return fail("deletion without predecessors")
	}

	if op.Expand, err = r.expand.next(); err != nil {
		return colErr(colExpand, err)
	}
	if op.Expand && op.Action != ActMark {
		return fail("expand on action %d", op.Action)
	}
	mn, mnOK, err := r.markName.next()
	if err != nil {
		return colErr(colMarkName, err)
	}
	if mnOK && op.Action != ActMark {
		return fail("mark name on action %d", op.Action)
	}
	op.MarkName, op.HasMarkName = mn, mnOK
	if op.Action == ActMark && !op.Insert {
		return fail("mark that is not inserted")
	}
	return nil
}

// finish checks that every column held exactly the ops read, canonically
// encoded, and that every other actor of the change is used.
func (r *opReader) finish() error {
	type fin interface{ finish() error }
	for _, c := range []struct {
		spec uint64
		d    fin
	}{
		{colObjActor, r.objActor}, {colObjCtr, r.objCtr}, {colKeyActor, r.keyActor},
		{colKeyCtr, r.keyCtr}, {colKeyStr, r.keyStr}, {colInsert, r.insert},
		{colAction, r.action}, {colValMeta, r.value}, {colPredGroup, r.predGroup},
		{colPredActor, r.predActor}, {colPredCtr, r.predCtr}, {colExpand, r.expand},
		{colMarkName, r.markName},
	} {
		if err := c.d.finish(); err != nil {
			return fmt.Errorf("column %#x: %w", c.spec, err)
		}
	}
	for a := 1; a < len(r.used); a++ {
		if !r.used[a] {
			// A rebuilt change lists only the actors its ops refer to.
			return fmt.Errorf("other actor %d is not used by any op", a)
		}
	}
	return nil
}
