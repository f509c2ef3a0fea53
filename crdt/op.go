package crdt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// Action is what an operation does (Automerge's action column).
type Action uint8

// Operation actions.
const (
	ActMakeMap   Action = 0
	ActSet       Action = 1
	ActMakeList  Action = 2
	ActDel       Action = 3
	ActMakeText  Action = 4
	ActInc       Action = 5
	ActMakeTable Action = 6
	ActMark      Action = 7
)

// IsMake reports whether the action creates an object.
func (a Action) IsMake() bool {
	return a == ActMakeMap || a == ActMakeList || a == ActMakeText || a == ActMakeTable
}

// isSeqMake reports whether the action creates a list or text object.
func (a Action) isSeqMake() bool { return a == ActMakeList || a == ActMakeText }

// OpID identifies an operation: its counter and the index of its actor in an
// actor table (a change's own table, or a document's). The zero OpID names
// the root object (as an object) and the list head (as an element).
type OpID struct {
	Ctr   uint64
	Actor uint32
}

// IsZero reports whether id is the root object or the list head.
func (id OpID) IsZero() bool { return id.Ctr == 0 }

// Key is where an operation acts in its object: a map key, or a list element
// (the head for an insert at the front).
type Key struct {
	Map  string
	Elem OpID
	// IsMap is true for a map key, false for a list element.
	IsMap bool
}

// Value is an operation's scalar value: a type (valNull … valTimestamp) and
// its raw bytes as Automerge encodes them.
type Value struct {
	Type uint8
	Raw  []byte
}

// Op is one operation, with actor indices into the table of its container.
type Op struct {
	ID     OpID
	Obj    OpID // zero for the root
	Key    Key
	Insert bool
	Action Action
	Value  Value
	Pred   []OpID
	Expand bool
	// MarkName is the name of a mark (Action ActMark, the start of a mark);
	// HasMarkName distinguishes the empty name from none.
	MarkName    string
	HasMarkName bool
}

// checkValue checks a raw value against its type: the exact length of
// fixed-size and LEB128 values, UTF-8 for strings, and no unknown types.
// Integers may use their whole 64 bits: Automerge JS writes them from
// bigints and reads them back as bigints.
func checkValue(typ uint64, b []byte) error {
	switch typ {
	case valNull, valFalse, valTrue:
		if len(b) != 0 {
			return fmt.Errorf("value type %d with %d bytes", typ, len(b))
		}
	case valUint:
		r := &reader{b: b}
		if _, err := r.uleb(); err != nil || !r.done() {
			return fmt.Errorf("bad uint value")
		}
	case valInt, valCounter, valTimestamp:
		r := &reader{b: b}
		if _, err := r.sleb(); err != nil || !r.done() {
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

// Int returns an integer value (int, uint, counter, timestamp).
func (v Value) Int() int64 {
	r := &reader{b: v.Raw}
	if v.Type == valUint {
		u, _ := r.uleb()
		return int64(u)
	}
	i, _ := r.sleb()
	return i
}

// Float returns a float value.
func (v Value) Float() float64 {
	if len(v.Raw) != 8 {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(v.Raw))
}

// Equal reports whether two values are the same.
func (v Value) Equal(w Value) bool { return v.Type == w.Type && bytes.Equal(v.Raw, w.Raw) }

// Scalar value constructors, for changes the server makes.

// NullValue is null.
func NullValue() Value { return Value{Type: valNull} }

// BoolValue is true or false.
func BoolValue(b bool) Value {
	if b {
		return Value{Type: valTrue}
	}
	return Value{Type: valFalse}
}

// IntValue is a signed integer.
func IntValue(i int64) Value { return Value{Type: valInt, Raw: appendSleb(nil, i)} }

// UintValue is an unsigned integer.
func UintValue(u uint64) Value { return Value{Type: valUint, Raw: appendUleb(nil, u)} }

// FloatValue is a 64-bit float.
func FloatValue(f float64) Value {
	return Value{Type: valFloat, Raw: binary.LittleEndian.AppendUint64(nil, math.Float64bits(f))}
}

// StringValue is a string.
func StringValue(s string) Value { return Value{Type: valString, Raw: []byte(s)} }

// CounterValue is a counter's initial value.
func CounterValue(i int64) Value { return Value{Type: valCounter, Raw: appendSleb(nil, i)} }
