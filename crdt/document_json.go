package crdt

import (
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// clock says which ops are visible: per actor, the highest op counter of the
// changes covered. A nil clock covers everything.
type clock []uint64

func (c clock) covers(id OpID) bool { return c == nil || id.Ctr <= c[id.Actor] }

// clockAt returns the clock of the given heads (nil: the current state). An
// unknown head gives ErrMissingDeps.
func (d *Doc) clockAt(heads []Hash) (clock, error) {
	if heads == nil {
		return nil, nil
	}
	c := make(clock, len(d.actors))
	seen := make([]bool, len(d.changes))
	var stack []int32
	for _, h := range heads {
		i, ok := d.byHash[h]
		if !ok {
			return nil, fmt.Errorf("crdt: view at heads: %w: unknown head %s", ErrMissingDeps, h)
		}
		stack = append(stack, i)
	}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[i] {
			continue
		}
		seen[i] = true
		ch := &d.changes[i]
		c[ch.actor] = max(c[ch.actor], ch.maxOp)
		stack = append(stack, ch.deps...)
	}
	return c, nil
}

// visible returns the ops among at (the ops at one map key or list element,
// in Lamport order) that hold a value under clock, in Lamport order: the last
// is the one shown, the others are conflicts. A counter stays visible when
// only increments succeed it.
func (d *Doc) visible(at []int32, cl clock) []int32 {
	var out []int32
	for _, i := range at {
		o := &d.ops[i]
		if o.action == ActInc || o.action == ActMark || !cl.covers(o.id) {
			continue
		}
		shown := true
		for _, s := range d.succOf(i) {
			if !cl.covers(s) {
				continue
			}
			if o.vtype == valCounter && d.isIncAt(at, s) {
				continue
			}
			shown = false
			break
		}
		if shown {
			out = append(out, i)
		}
	}
	return out
}

func (d *Doc) isIncAt(at []int32, id OpID) bool {
	for _, j := range at {
		if d.ops[j].id == id {
			return d.ops[j].action == ActInc
		}
	}
	return false
}

// counterValue returns the value of counter op i (at key ops at): its start
// plus every increment of it under clock.
func (d *Doc) counterValue(i int32, at []int32, cl clock) int64 {
	v := d.value(&d.ops[i]).Int()
	succ := d.succOf(i)
	for _, j := range at {
		o := &d.ops[j]
		if o.action == ActInc && cl.covers(o.id) && slices.Contains(succ, o.id) {
			v += d.value(o).Int()
		}
	}
	return v
}

// JSONOptions adjusts the JSON view.
type JSONOptions struct {
	// Heads, when not nil, shows the document as it was at those heads.
	Heads []Hash
	// HideReserved omits root keys that begin with "$" (reserved by the
	// protocol for record lifecycle).
	HideReserved bool
}

// JSON returns the document as plain JSON: maps as objects (keys sorted),
// lists as arrays, text as strings, counters as numbers, bytes as standard
// padded base64, timestamps as RFC 3339 strings in UTC with milliseconds
// (what Automerge stores), other scalars as themselves (NaN and infinities,
// which JSON lacks, as null, like JSON.stringify). An unknown head gives
// ErrMissingDeps.
func (d *Doc) JSON(opts JSONOptions) ([]byte, error) {
	cl, err := d.clockAt(opts.Heads)
	if err != nil {
		return nil, err
	}
	w := &jsonWriter{d: d, cl: cl, hideReserved: opts.HideReserved}
	w.object(d.objs[OpID{}], true)
	return w.b, nil
}

// Deleted reports whether the record is deleted at heads (nil: now): its
// root "$deleted" shows true. An unknown head gives ErrMissingDeps.
func (d *Doc) Deleted(heads []Hash) (bool, error) {
	cl, err := d.clockAt(heads)
	if err != nil {
		return false, err
	}
	vis := d.visible(d.objs[OpID{}].keys[DeletedKey], cl)
	if len(vis) == 0 {
		return false, nil
	}
	o := &d.ops[vis[len(vis)-1]]
	return o.action == ActSet && o.vtype == valTrue, nil
}

// textOf returns text object obj as the view shows it under clock cl.
func (d *Doc) textOf(obj *object, cl clock) string {
	var sb strings.Builder
	sb.Grow(int(obj.n))
	for e := obj.head; e >= 0; e = d.elems[e].next {
		i, ok := d.elemShown(e, cl)
		if !ok {
			continue
		}
		o := &d.ops[i]
		switch {
		case o.vtype != valString:
			// Not a character (a block marker, say): Automerge's text
			// view shows the object replacement character.
			sb.WriteRune('\ufffc')
		case o.flags&flagBlob != 0:
			sb.Write(d.blob[o.val : o.val+uint64(o.vlen)])
		default:
			for k := range o.vlen {
				sb.WriteByte(byte(o.val >> (8 * k)))
			}
		}
	}
	return sb.String()
}

// elemShown returns the op whose value list element e shows under clock
// cl, if any. Most elements of a text hold only their insert, which only a
// deletion succeeds (a value set on an element is one of its ops): that
// case needs no allocation.
func (d *Doc) elemShown(e int32, cl clock) (int32, bool) {
	el := &d.elems[e]
	if el.more >= 0 {
		vis := d.visible(d.elemOps(e), cl)
		if len(vis) == 0 {
			return -1, false
		}
		return vis[len(vis)-1], true
	}
	o := &d.ops[el.ins]
	if o.action == ActInc || o.action == ActMark || !cl.covers(o.id) {
		return -1, false
	}
	if !o.succ.IsZero() {
		if cl == nil || cl.covers(o.succ) {
			return -1, false
		}
		for _, s := range d.succs[el.ins] {
			if cl.covers(s) {
				return -1, false
			}
		}
	}
	return el.ins, true
}

type jsonWriter struct {
	d            *Doc
	cl           clock
	b            []byte
	hideReserved bool
}

func (w *jsonWriter) object(obj *object, root bool) {
	d := w.d
	switch obj.typ {
	case ActMakeText:
		w.b = appendJSONString(w.b, d.textOf(obj, w.cl))
	case ActMakeList:
		w.b = append(w.b, '[')
		first := true
		for e := obj.head; e >= 0; e = d.elems[e].next {
			at := d.elemOps(e)
			vis := d.visible(at, w.cl)
			if len(vis) == 0 {
				continue
			}
			if !first {
				w.b = append(w.b, ',')
			}
			first = false
			w.value(vis[len(vis)-1], at)
		}
		w.b = append(w.b, ']')
	default:
		keys := make([]string, 0, len(obj.keys))
		for k := range obj.keys {
			if root && w.hideReserved && strings.HasPrefix(k, ReservedPrefix) {
				continue
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		w.b = append(w.b, '{')
		first := true
		for _, k := range keys {
			at := obj.keys[k]
			vis := d.visible(at, w.cl)
			if len(vis) == 0 {
				continue
			}
			if !first {
				w.b = append(w.b, ',')
			}
			first = false
			w.b = appendJSONString(w.b, k)
			w.b = append(w.b, ':')
			w.value(vis[len(vis)-1], at)
		}
		w.b = append(w.b, '}')
	}
}

// value writes the value of op i (one of the ops at).
func (w *jsonWriter) value(i int32, at []int32) {
	d := w.d
	o := &d.ops[i]
	if o.action.IsMake() {
		w.object(d.objs[o.id], false)
		return
	}
	v := d.value(o)
	if v.Type == valCounter {
		w.b = strconv.AppendInt(w.b, d.counterValue(i, at, w.cl), 10)
		return
	}
	w.b = appendScalarJSON(w.b, v)
}

// appendScalarJSON writes a scalar value as the JSON view shows it.
func appendScalarJSON(b []byte, v Value) []byte {
	switch v.Type {
	case valNull:
		return append(b, "null"...)
	case valTrue:
		return append(b, "true"...)
	case valFalse:
		return append(b, "false"...)
	case valUint:
		r := &reader{b: v.Raw}
		u, _ := r.uleb()
		return strconv.AppendUint(b, u, 10)
	case valInt, valCounter:
		return strconv.AppendInt(b, v.Int(), 10)
	case valFloat:
		return appendJSONFloat(b, v.Float())
	case valString:
		return appendJSONString(b, string(v.Raw))
	case valBytes:
		return appendJSONString(b, base64.StdEncoding.EncodeToString(v.Raw))
	case valTimestamp:
		return appendJSONTime(b, v.Int())
	}
	return append(b, "null"...)
}

// maxJSTime is the largest magnitude of a JavaScript Date in milliseconds;
// beyond it a Date is invalid and JSON.stringify writes null.
const maxJSTime = 8.64e15

// appendJSONTime formats ms since the epoch as JavaScript's toJSON does:
// RFC 3339 with milliseconds for years 0 to 9999, and the expanded form
// (a sign and six year digits) outside them, so views match the browser's.
func appendJSONTime(b []byte, ms int64) []byte {
	if ms > maxJSTime || ms < -maxJSTime {
		return append(b, "null"...)
	}
	t := time.UnixMilli(ms).UTC()
	year := t.Year()
	b = append(b, '"')
	switch {
	case year >= 0 && year <= 9999:
		b = fmt.Appendf(b, "%04d", year)
	case year < 0:
		b = fmt.Appendf(b, "-%06d", -year)
	default:
		b = fmt.Appendf(b, "+%06d", year)
	}
	b = t.AppendFormat(b, "-01-02T15:04:05.000Z")
	return append(b, '"')
}

// appendJSONFloat formats a float as JavaScript's JSON.stringify does
// (shortest round-trip digits; exponent form below 1e-6 and from 1e21).
func appendJSONFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// 1e-07 → 1e-7, as JavaScript writes it.
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendJSONString writes s as a JSON string, escaping only what JSON
// requires (as JSON.stringify does), and invalid UTF-8 as U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c == '\b':
				b = append(b, '\\', 'b')
			case c == '\f':
				b = append(b, '\\', 'f')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, "\ufffd"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
