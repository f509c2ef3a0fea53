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
	colInsert     = 0x34 // 3, boolean
	colAction     = 0x42 // 4, ULEB
	colValMeta    = 0x56 // 5, value metadata
	colValRaw     = 0x57 // 5, value
	colPredGroup  = 0x70 // 7, group
	colPredActor  = 0x71 // 7, actor
	colPredCtr    = 0x73 // 7, delta
	colExpand     = 0x94 // 9, boolean (marks, Automerge 2.2+)
	colMarkName   = 0xa5 // 10, string (marks, Automerge 2.2+)
	colDeflateBit = 0x08
)

var knownColumns = map[uint64]bool{
	colObjActor: true, colObjCtr: true, colKeyActor: true, colKeyCtr: true,
	colKeyStr: true, colInsert: true, colAction: true, colValMeta: true,
	colValRaw: true, colPredGroup: true, colPredActor: true, colPredCtr: true,
	colExpand: true, colMarkName: true,
}

// Operation actions.
const (
	actMakeMap   = 0
	actSet       = 1
	actMakeList  = 2
	actDel       = 3
	actMakeText  = 4
	actInc       = 5
	actMakeTable = 6
	actMark      = 7
)

// Value types of the value metadata column (low 4 bits; length is the rest).
const (
	valNull      = 0
	valFalse     = 1
	valTrue      = 2
	valUint      = 3
	valInt       = 4
	valFloat     = 5
	valString    = 6
	valBytes     = 7
	valCounter   = 8
	valTimestamp = 9
)

// parseChangeBody parses the body of an uncompressed change chunk in full.
// It fills every Change field except Hash and Raw.
func parseChangeBody(body []byte, maxOps int) (Change, error) {
	return parseChangeBodyOps(body, maxOps, nil)
}

// parseChangeBodyOps is parseChangeBody that also reports every operation
// to emit, if not nil.
func parseChangeBodyOps(body []byte, maxOps int, emit func(opInfo)) (Change, error) {
	var c Change
	r := &reader{b: body}
	fail := func(what string, err error) (Change, error) {
		return Change{}, fmt.Errorf("%s at body offset %d: %w", what, r.off, err)
	}

	nDeps, err := r.uleb()
	if err != nil {
		return fail("deps count", err)
	}
	if nDeps > uint64(r.rest()/32) {
		return fail("deps", errTruncated)
	}
	c.Deps = make([]Hash, nDeps)
	for i := range c.Deps {
		b, _ := r.bytes(32)
		c.Deps[i] = Hash(b)
		// Automerge writes deps sorted, and rebuilds them sorted when it
		// loads a saved document: any other order would change the hash.
		if i > 0 && bytes.Compare(c.Deps[i-1][:], c.Deps[i][:]) >= 0 {
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
	c.Actor = bytes.Clone(actor)

	if c.Seq, err = r.uleb(); err != nil {
		return fail("seq", err)
	}
	if c.Seq == 0 || c.Seq > math.MaxInt64 {
		return fail("seq", fmt.Errorf("%d out of range", c.Seq))
	}
	if c.StartOp, err = r.uleb(); err != nil {
		return fail("start op", err)
	}
	if c.StartOp == 0 || c.StartOp > math.MaxInt64 {
		return fail("start op", fmt.Errorf("%d out of range", c.StartOp))
	}
	if c.Time, err = r.sleb(); err != nil {
		return fail("time", err)
	}
	msg, err := readBytes(r)
	if err != nil {
		return fail("message", err)
	}
	if !utf8.Valid(msg) {
		return fail("message", errors.New("not valid UTF-8"))
	}
	c.Message = string(msg)

	nOther, err := r.uleb()
	if err != nil {
		return fail("other actors count", err)
	}
	if nOther > uint64(r.rest()) {
		return fail("other actors", errTruncated)
	}
	actors := [][]byte{c.Actor}
	for i := uint64(0); i < nOther; i++ {
		a, err := readBytes(r)
		if err != nil {
			return fail("other actor", err)
		}
		if len(a) == 0 {
			return fail("other actor", errors.New("empty actor ID"))
		}
		if bytes.Equal(a, c.Actor) {
			return fail("other actor", errors.New("repeats the change's actor"))
		}
		// Rebuilt changes list other actors in ascending order.
		if i > 0 && bytes.Compare(actors[len(actors)-1], a) >= 0 {
			return fail("other actors", errors.New("not strictly ascending"))
		}
		actors = append(actors, a)
	}

	nCols, err := r.uleb()
	if err != nil {
		return fail("column count", err)
	}
	if nCols > uint64(r.rest()) {
		return fail("columns", errTruncated)
	}
	type colRange struct{ spec, n uint64 }
	specs := make([]colRange, 0, nCols)
	var total uint64
	for i := uint64(0); i < nCols; i++ {
		spec, err := r.uleb()
		if err != nil {
			return fail("column spec", err)
		}
		n, err := r.uleb()
		if err != nil {
			return fail("column length", err)
		}
		if i > 0 && spec <= specs[len(specs)-1].spec {
			return fail("column specs", fmt.Errorf("spec %#x not ascending", spec))
		}
		if spec&colDeflateBit != 0 {
			return fail("column specs", fmt.Errorf("deflated column %#x in a change", spec))
		}
		if !knownColumns[spec] {
			return fail("column specs", fmt.Errorf("unknown column %#x", spec))
		}
		if n == 0 {
			// Automerge omits empty columns; a present but empty one would
			// vanish when the change is rebuilt from a saved document.
			return fail("column specs", fmt.Errorf("empty column %#x", spec))
		}
		total += n
		if total > uint64(r.rest()) {
			return fail("column data", errTruncated)
		}
		specs = append(specs, colRange{spec, n})
	}
	cols := make(map[uint64][]byte, len(specs))
	for _, s := range specs {
		cols[s.spec], _ = r.bytes(s.n)
	}
	if !r.done() {
		// Rust keeps such "extra bytes" and hashes them, but drops them when
		// the change is rebuilt from a saved document: refuse them.
		return fail("change body", fmt.Errorf("%d bytes after the columns", r.rest()))
	}

	for i := 1; i < len(actors); i++ {
		actors[i] = bytes.Clone(actors[i])
	}
	ops, refs, err := decodeOps(cols, actors, c.StartOp, maxOps, emit)
	if err != nil {
		return Change{}, fmt.Errorf("operations: %w", err)
	}
	if c.StartOp > math.MaxInt64-uint64(ops) {
		return Change{}, fmt.Errorf("start op %d + %d ops overflows", c.StartOp, ops)
	}
	c.Ops = ops
	c.refs = refs
	return c, nil
}

func readBytes(r *reader) ([]byte, error) {
	n, err := r.uleb()
	if err != nil {
		return nil, err
	}
	return r.bytes(n)
}

// opID is an operation ID: counter and actor. The zero opID stands for the
// root object (as an object) and for the list head (as an element key).
type opID struct {
	actor string
	ctr   uint64
}

// opInfo describes one operation, with actor indices resolved.
type opInfo struct {
	id     opID
	obj    opID
	action int64
	insert bool
	mapKey bool
	key    string // map key, if mapKey
	elem   opID   // element key, if not mapKey
	preds  []opID
}

// opRef is an op ID a change refers to (as object, list element or
// predecessor) that another change made.
type opRef struct {
	actor []byte
	ctr   uint64
}

// decodeOps decodes every operation column and checks that the columns agree
// with each other and describe well-formed operations. It returns the number
// of operations and the op IDs of other changes they refer to (consecutive
// repeats removed).
func decodeOps(cols map[uint64][]byte, actors [][]byte, startOp uint64, maxOps int, emit func(opInfo)) (n int, refs []opRef, err error) {
	ref := func(a, ctr int64) {
		if a == 0 && uint64(ctr) >= startOp {
			return // an op of this change
		}
		if k := len(refs) - 1; k >= 0 && refs[k].ctr == uint64(ctr) && bytes.Equal(refs[k].actor, actors[a]) {
			return
		}
		refs = append(refs, opRef{actors[a], uint64(ctr)})
	}
	uints := func(spec uint64) ([]opt[int64], error) {
		v, err := decodeRLE(cols[spec], ulebCodec, maxOps)
		if err != nil {
			return nil, fmt.Errorf("column %#x: %w", spec, err)
		}
		iv, err := uintsToInts(v)
		if err != nil {
			return nil, fmt.Errorf("column %#x: %w", spec, err)
		}
		return iv, nil
	}
	delta := func(spec uint64) ([]opt[int64], error) {
		v, err := decodeDelta(cols[spec], maxOps)
		if err != nil {
			return nil, fmt.Errorf("column %#x: %w", spec, err)
		}
		return v, nil
	}
	strs := func(spec uint64) ([]opt[string], error) {
		v, err := decodeRLE(cols[spec], strCodec, maxOps)
		if err != nil {
			return nil, fmt.Errorf("column %#x: %w", spec, err)
		}
		return v, nil
	}
	bools := func(spec uint64) ([]bool, error) {
		v, err := decodeBool(cols[spec], maxOps)
		if err != nil {
			return nil, fmt.Errorf("column %#x: %w", spec, err)
		}
		return v, nil
	}

	action, err := uints(colAction)
	if err != nil {
		return 0, nil, err
	}
	n = len(action)
	objActor, err := uints(colObjActor)
	if err != nil {
		return 0, nil, err
	}
	objCtr, err := uints(colObjCtr)
	if err != nil {
		return 0, nil, err
	}
	keyActor, err := uints(colKeyActor)
	if err != nil {
		return 0, nil, err
	}
	keyCtr, err := delta(colKeyCtr)
	if err != nil {
		return 0, nil, err
	}
	keyStr, err := strs(colKeyStr)
	if err != nil {
		return 0, nil, err
	}
	insert, err := bools(colInsert)
	if err != nil {
		return 0, nil, err
	}
	meta, err := uints(colValMeta)
	if err != nil {
		return 0, nil, err
	}
	predGroup, err := uints(colPredGroup)
	if err != nil {
		return 0, nil, err
	}
	expand, err := bools(colExpand)
	if err != nil {
		return 0, nil, err
	}
	markName, err := strs(colMarkName)
	if err != nil {
		return 0, nil, err
	}

	// A column holds one value per operation, or nothing at all (all null,
	// all false): that is how Automerge writes them.
	for _, c := range []struct {
		spec uint64
		len  int
	}{
		{colObjActor, len(objActor)}, {colObjCtr, len(objCtr)},
		{colKeyActor, len(keyActor)}, {colKeyCtr, len(keyCtr)},
		{colKeyStr, len(keyStr)}, {colInsert, len(insert)},
		{colValMeta, len(meta)}, {colPredGroup, len(predGroup)},
		{colExpand, len(expand)}, {colMarkName, len(markName)},
	} {
		if c.len != 0 && c.len != n {
			return 0, nil, fmt.Errorf("column %#x has %d values, want %d (action column)", c.spec, c.len, n)
		}
	}
	at := func(col []opt[int64], i int) opt[int64] {
		if len(col) == 0 {
			return opt[int64]{}
		}
		return col[i]
	}

	// Group column: the pred columns hold the sum of the group sizes.
	nPred := 0
	for i := range predGroup {
		g := predGroup[i]
		if !g.ok {
			return 0, nil, fmt.Errorf("op %d: null pred count", i)
		}
		if g.v > int64(maxOps-nPred) {
			return 0, nil, fmt.Errorf("pred group: %w", errTooManyOps)
		}
		nPred += int(g.v)
	}
	predActor, err := uints(colPredActor)
	if err != nil {
		return 0, nil, err
	}
	predCtr, err := delta(colPredCtr)
	if err != nil {
		return 0, nil, err
	}
	if len(predActor) != nPred || len(predCtr) != nPred {
		return 0, nil, fmt.Errorf("pred columns have %d actors and %d counters, want %d", len(predActor), len(predCtr), nPred)
	}

	// Values: metadata gives type and length, raw holds the bytes.
	raw := &reader{b: cols[colValRaw]}
	used := make([]bool, len(actors))
	inRange := func(a int64) bool { return a >= 0 && a < int64(len(actors)) }
	pi := 0
	// What each op of this change is, for the ops after it that refer to
	// it: automerge-go applies an op on an object that is not one, or on
	// the wrong kind of key, and the document no longer loads.
	type ownOp struct {
		action int64
		obj    [2]int64 // actor, counter; {-1, 0} for the root
		insert bool
		mapKey bool
		key    string   // map key
		elem   [2]int64 // element key: actor, counter
	}
	own := make([]ownOp, 0, n)
	for i := 0; i < n; i++ {
		opCtr := int64(startOp) + int64(i)
		act := action[i]
		if !act.ok || act.v > actMark {
			return 0, nil, fmt.Errorf("op %d: invalid action %v", i, act)
		}
		// Object: both null is the root; otherwise an op ID made earlier.
		oa, oc := at(objActor, i), at(objCtr, i)
		switch {
		case !oa.ok && !oc.ok:
		case oa.ok && oc.ok && inRange(oa.v) && oc.v > 0:
			used[oa.v] = true
			ref(oa.v, oc.v)
			if oa.v == 0 && oc.v >= opCtr {
				return 0, nil, fmt.Errorf("op %d: object %d@0 is not older than the op", i, oc.v)
			}
		default:
			return 0, nil, fmt.Errorf("op %d: invalid object ID (%v, %v)", i, oa, oc)
		}
		ins := len(insert) > 0 && insert[i]
		cur := ownOp{action: act.v, obj: [2]int64{-1, 0}, insert: ins}
		if oa.ok {
			cur.obj = [2]int64{oa.v, oc.v}
		}
		// Key: a map key string, or a list element ID (counter 0 = head).
		ka, kc := at(keyActor, i), at(keyCtr, i)
		var ks opt[string]
		if len(keyStr) > 0 {
			ks = keyStr[i]
		}
		switch {
		case ks.ok:
			if ka.ok || kc.ok {
				return 0, nil, fmt.Errorf("op %d: both a map key and an element ID", i)
			}
			if ins {
				return 0, nil, fmt.Errorf("op %d: insert with a map key", i)
			}
			cur.mapKey, cur.key = true, ks.v
		case kc.ok && kc.v == 0 && !ka.ok:
			if !ins {
				return 0, nil, fmt.Errorf("op %d: head element without insert", i)
			}
		case kc.ok && kc.v > 0 && ka.ok && inRange(ka.v):
			used[ka.v] = true
			ref(ka.v, kc.v)
			if ka.v == 0 && kc.v >= opCtr {
				return 0, nil, fmt.Errorf("op %d: element %d@0 is not older than the op", i, kc.v)
			}
		default:
			return 0, nil, fmt.Errorf("op %d: invalid key (%v, %v, %v)", i, ks, ka, kc)
		}
		if !cur.mapKey {
			cur.elem = [2]int64{ka.v, kc.v}
			if !ka.ok {
				cur.elem[0] = -1
			}
			if !oa.ok {
				return 0, nil, fmt.Errorf("op %d: element key in the root map", i)
			}
		}
		// ownIdx is the index in this change of op ctr@actor, or -1.
		ownIdx := func(a, ctr int64) int {
			if a == 0 && uint64(ctr) >= startOp {
				return int(uint64(ctr) - startOp)
			}
			return -1
		}
		if j := ownIdx(oa.v, oc.v); oa.ok && j >= 0 {
			switch own[j].action {
			case actMakeMap, actMakeTable:
				if !cur.mapKey {
					return 0, nil, fmt.Errorf("op %d: element key in map %d@0", i, oc.v)
				}
			case actMakeList, actMakeText:
				if cur.mapKey {
					return 0, nil, fmt.Errorf("op %d: map key in list %d@0", i, oc.v)
				}
			default:
				return 0, nil, fmt.Errorf("op %d: object %d@0 is not an object", i, oc.v)
			}
		}
		if j := ownIdx(ka.v, kc.v); !cur.mapKey && ka.ok && j >= 0 {
			if !own[j].insert || own[j].obj != cur.obj {
				return 0, nil, fmt.Errorf("op %d: element %d@0 is not an element of its object", i, kc.v)
			}
		}
		m := at(meta, i)
		if !m.ok && len(meta) > 0 {
			return 0, nil, fmt.Errorf("op %d: null value metadata", i)
		}
		typ, size := m.v&0xf, uint64(m.v)>>4
		val, err := raw.bytes(size)
		if err != nil {
			return 0, nil, fmt.Errorf("op %d: value of %d bytes: %w", i, size, err)
		}
		if err := checkValue(typ, val); err != nil {
			return 0, nil, fmt.Errorf("op %d: %w", i, err)
		}
		switch act.v {
		case actMakeMap, actMakeList, actMakeText, actMakeTable, actDel:
			if typ != valNull {
				return 0, nil, fmt.Errorf("op %d: action %d with a value", i, act.v)
			}
		case actInc:
			if typ != valInt && typ != valUint {
				return 0, nil, fmt.Errorf("op %d: increment by a non-integer", i)
			}
			if typ == valUint {
				if u, _ := (&reader{b: val}).uleb(); u > math.MaxInt64 {
					return 0, nil, fmt.Errorf("op %d: increment out of range", i)
				}
			}
		}
		if ins && (act.v == actDel || act.v == actInc) {
			return 0, nil, fmt.Errorf("op %d: insert with action %d", i, act.v)
		}

		g := int64(0)
		if len(predGroup) > 0 {
			g = predGroup[i].v
		}
		if ins && g > 0 {
			return 0, nil, fmt.Errorf("op %d: insert with predecessors", i)
		}
		var prevCtr int64
		var prevActor []byte
		for j := int64(0); j < g; j, pi = j+1, pi+1 {
			pa, pc := predActor[pi], predCtr[pi]
			if !pa.ok || !pc.ok || !inRange(pa.v) || pc.v <= 0 {
				return 0, nil, fmt.Errorf("op %d: invalid predecessor (%v, %v)", i, pa, pc)
			}
			used[pa.v] = true
			ref(pa.v, pc.v)
			if pa.v == 0 && pc.v >= opCtr {
				return 0, nil, fmt.Errorf("op %d: predecessor %d@0 is not older than the op", i, pc.v)
			}
			// Predecessors are kept in Lamport order (counter, then actor),
			// as Automerge writes them and rebuilds them from a document.
			if j > 0 && (pc.v < prevCtr || pc.v == prevCtr && bytes.Compare(prevActor, actors[pa.v]) >= 0) {
				return 0, nil, fmt.Errorf("op %d: predecessors out of order", i)
			}
			prevCtr, prevActor = pc.v, actors[pa.v]
			if k := ownIdx(pa.v, pc.v); k >= 0 {
				// Overwriting an op of this change: same object and key
				// (an inserted element is keyed by its own op ID).
				p := own[k]
				sameKey := p.mapKey == cur.mapKey && p.key == cur.key && p.elem == cur.elem
				if p.insert {
					sameKey = !cur.mapKey && cur.elem == [2]int64{0, pc.v}
				}
				if p.obj != cur.obj || !sameKey {
					return 0, nil, fmt.Errorf("op %d: predecessor %d@0 is on another object or key", i, pc.v)
				}
			}
		}
		own = append(own, cur)
		if emit != nil {
			info := opInfo{id: opID{string(actors[0]), uint64(opCtr)}, action: act.v, insert: ins, mapKey: cur.mapKey, key: cur.key}
			if oa.ok {
				info.obj = opID{string(actors[oa.v]), uint64(oc.v)}
			}
			if !cur.mapKey && ka.ok {
				info.elem = opID{string(actors[ka.v]), uint64(kc.v)}
			}
			for k := pi - int(g); k < pi; k++ {
				info.preds = append(info.preds, opID{string(actors[predActor[k].v]), uint64(predCtr[k].v)})
			}
			emit(info)
		}
		if len(markName) > 0 && markName[i].ok && act.v != actMark {
			return 0, nil, fmt.Errorf("op %d: mark name on action %d", i, act.v)
		}
		if len(expand) > 0 && expand[i] && act.v != actMark {
			return 0, nil, fmt.Errorf("op %d: expand on action %d", i, act.v)
		}
	}
	if !raw.done() {
		return 0, nil, fmt.Errorf("value column: %d bytes not described by metadata", raw.rest())
	}
	for a := 1; a < len(actors); a++ {
		if !used[a] {
			// A rebuilt change lists only the actors its ops refer to.
			return 0, nil, fmt.Errorf("other actor %d is not used by any op", a)
		}
	}
	return n, refs, nil
}

// maxSafeInt is JavaScript's Number.MAX_SAFE_INTEGER. Automerge JS writes
// no integer beyond it, and throws when it reads one ("can't be represented
// as a JavaScript number"), so such a value would break every browser.
const maxSafeInt = 1<<53 - 1

// checkValue checks a raw value against its type: the exact length of
// fixed-size and LEB128 values, UTF-8 for strings, and no unknown types.
func checkValue(typ int64, b []byte) error {
	switch typ {
	case valNull, valFalse, valTrue:
		if len(b) != 0 {
			return fmt.Errorf("value type %d with %d bytes", typ, len(b))
		}
	case valUint:
		r := &reader{b: b}
		if v, err := r.uleb(); err != nil || !r.done() || v > maxSafeInt {
			return fmt.Errorf("bad uint value")
		}
	case valInt, valCounter, valTimestamp:
		r := &reader{b: b}
		if v, err := r.sleb(); err != nil || !r.done() || v > maxSafeInt || v < -maxSafeInt {
			return fmt.Errorf("bad value of type %d", typ)
		}
	case valFloat:
		if len(b) != 8 {
			return fmt.Errorf("float of %d bytes", len(b))
		}
	case valString:
		if !utf8.Valid(b) {
			return errors.New("string value is not valid UTF-8")
		}
	case valBytes:
	default:
		return fmt.Errorf("unknown value type %d", typ)
	}
	return nil
}
