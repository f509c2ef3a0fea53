package crdt

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"

	"github.com/automerge/automerge-go"
)

// JSON returns the document as plain JSON at heads (nil for the current
// heads): text as strings, counters as numbers, bytes as base64 strings,
// timestamps as RFC 3339 strings.
//
// Maps become objects with sorted keys, lists arrays, bytes standard padded
// base64, timestamps UTC with millisecond precision (what Automerge stores),
// integers and floats numbers. Output is deterministic.
func (d *Doc) JSON(heads []Hash) ([]byte, error) {
	am := d.am
	if heads != nil {
		hs := make([]automerge.ChangeHash, len(heads))
		for i, h := range heads {
			if !d.has(h) {
				return nil, fmt.Errorf("crdt: json at heads: %w: unknown head %s", ErrMissingDeps, h)
			}
			hs[i] = automerge.ChangeHash(h)
		}
		f, err := d.am.Fork(hs...)
		if err != nil {
			return nil, fmt.Errorf("crdt: json at heads: %w", err)
		}
		am = f
	}
	v, err := plain(am.Root())
	if err != nil {
		return nil, fmt.Errorf("crdt: json: %w", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("crdt: json: %w", err)
	}
	return b, nil
}

// timeLayout is RFC 3339 with milliseconds, as JavaScript's toISOString.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// plain converts an automerge value into values encoding/json renders as
// the JSON view.
func plain(v *automerge.Value) (any, error) {
	switch v.Kind() {
	case automerge.KindMap:
		vals, err := v.Map().Values()
		if err != nil {
			return nil, err
		}
		out := make(map[string]any, len(vals))
		for k, e := range vals {
			if out[k], err = plain(e); err != nil {
				return nil, err
			}
		}
		return out, nil
	case automerge.KindList:
		vals, err := v.List().Values()
		if err != nil {
			return nil, err
		}
		out := make([]any, len(vals))
		for i, e := range vals {
			if out[i], err = plain(e); err != nil {
				return nil, err
			}
		}
		return out, nil
	case automerge.KindText:
		return v.Text().Get()
	case automerge.KindCounter:
		return v.Counter().Get()
	case automerge.KindBytes:
		return base64.StdEncoding.EncodeToString(v.Bytes()), nil
	case automerge.KindTime:
		return v.Time().UTC().Format(timeLayout), nil
	case automerge.KindStr:
		return v.Str(), nil
	case automerge.KindBool:
		return v.Bool(), nil
	case automerge.KindInt64:
		return v.Int64(), nil
	case automerge.KindUint64:
		return v.Uint64(), nil
	case automerge.KindFloat64:
		f := v.Float64()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			// JSON has no NaN or infinities; JSON.stringify writes null.
			return nil, nil
		}
		return f, nil
	case automerge.KindNull, automerge.KindVoid:
		return nil, nil
	default:
		return nil, fmt.Errorf("unsupported value kind %v", v.Kind())
	}
}
