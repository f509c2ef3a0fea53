package crdt

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/internal/amjs"
)

var (
	writeSeed  = flag.Uint64("write.seed", 0, "first seed of TestChangeToJSONRandom (0: time-based)")
	writeSeeds = flag.Int("write.seeds", 12, "seeds of TestChangeToJSONRandom")
)

// writeDoc is a document with its index and every change, as the engine
// keeps a record: each server change must pass the Index (the validation
// every push gets) before it is applied.
type writeDoc struct {
	d   *Doc
	ix  *Index
	raw [][]byte
}

func newWriteDoc() *writeDoc { return &writeDoc{d: NewDoc(), ix: NewIndex()} }

func (w *writeDoc) apply(tb testing.TB, cs ...Change) {
	tb.Helper()
	for _, c := range cs {
		again, err := Split(c.Raw)
		if err != nil || len(again) != 1 || again[0].Hash != c.Hash {
			tb.Fatalf("change does not parse back: %v", err)
		}
		if err := w.ix.AddAll(again); err != nil {
			tb.Fatalf("Index refuses the change: %v", err)
		}
		if err := w.d.Apply(again); err != nil {
			tb.Fatalf("Apply: %v", err)
		}
		w.raw = append(w.raw, c.Raw)
	}
}

func (w *writeDoc) all() []byte { return bytes.Join(w.raw, nil) }

func (w *writeDoc) view(tb testing.TB) []byte {
	tb.Helper()
	b, err := w.d.JSON(JSONOptions{HideReserved: true})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func mustParse(tb testing.TB, s string) map[string]any {
	tb.Helper()
	m, err := ParseJSONObject([]byte(s))
	if err != nil {
		tb.Fatalf("ParseJSONObject(%s): %v", s, err)
	}
	return m
}

func mustCanon(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := canonJSON(nil, v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// put writes target as actor and returns the change (ok false: none).
func (w *writeDoc) put(tb testing.TB, actor []byte, target map[string]any) (Change, bool) {
	tb.Helper()
	c, ok, err := w.d.ChangeToJSON(target, actor, 1700000000)
	if err != nil {
		tb.Fatalf("ChangeToJSON: %v", err)
	}
	if ok {
		w.apply(tb, c)
	}
	if got, want := w.view(tb), mustCanon(tb, target); !bytes.Equal(got, want) {
		tb.Fatalf("view after write = %s, want %s", got, want)
	}
	return c, ok
}

var (
	actorA = bytes.Repeat([]byte{0xaa}, 16)
	actorB = bytes.Repeat([]byte{0xbb}, 16)
	actorS = bytes.Repeat([]byte{0x5e}, 16)
)

// TestChangeToJSONRandom: random JSON documents written one after another
// (each a random edit of the one before), each as one server change that
// the Index accepts, after which the Go view is exactly the body; then
// Automerge JS 3.5 loads the whole history and shows exactly the last body.
func TestChangeToJSONRandom(t *testing.T) {
	js := amjs.Start(t)
	seed := *writeSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano() % 1_000_000_000)
	}
	t.Logf("seed %d (replay with -write.seed=%d)", seed, seed)
	steps := 25
	if testing.Short() {
		steps = 8
	}
	for k := range uint64(*writeSeeds) {
		s := seed + k
		t.Run(strconv.FormatUint(s, 10), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(s, 0))
			w := newWriteDoc()
			var target map[string]any
			seqs := 0
			for i := range steps {
				if i == 0 {
					target = randObject(rng, 3)
				} else {
					target = editJSON(rng, target, 3).(map[string]any)
				}
				// Round-trip the body through its text, as a request has it.
				body, _ := json.Marshal(target)
				target = mustParse(t, string(body))
				if i%3 == 2 {
					// Two replicas edit concurrently first (conflicts,
					// concurrent splices); the server's write still gives
					// exactly the body.
					b := newWriteDoc()
					for _, raw := range w.raw {
						cs, _ := Split(raw)
						b.apply(t, cs...)
					}
					cb, okB := b.put(t, actorB, roundTrip(t, editJSON(rng, target, 3)))
					w.put(t, actorA, roundTrip(t, editJSON(rng, target, 3)))
					if okB {
						w.apply(t, cb)
					}
				}
				c, ok := w.put(t, actorS, target)
				if ok {
					seqs++
					if c.Seq != uint64(seqs) {
						t.Fatalf("change seq %d, want %d", c.Seq, seqs)
					}
				}
				// Writing the same again makes no change.
				if _, again, err := w.d.ChangeToJSON(target, actorS, 0); err != nil || again {
					t.Fatalf("second write of the same body: change %v, err %v", again, err)
				}
			}
			res, err := js.Load(w.all())
			if err != nil {
				t.Fatalf("Automerge JS refuses the server's changes: %v", err)
			}
			if want := mustCanon(t, target); !bytes.Equal(res.View, want) && !sameJSON(t, res.View, want) {
				t.Fatalf("Automerge JS view %s\nbody                %s", res.View, want)
			}
			if got, want := res.Heads, HashStrings(w.d.Heads()); !slices.Equal(got, want) {
				t.Fatalf("JS heads %v, Go %v", got, want)
			}
		})
	}
}

// roundTrip returns v as a request body has it: through its JSON text.
func roundTrip(tb testing.TB, v any) map[string]any {
	tb.Helper()
	body, _ := json.Marshal(v)
	return mustParse(tb, string(body))
}

var randWords = []string{"", "a", "hello", "wörld", "🙂x", "日本", "tab\tnew\nline", `q"\`}

func randString(rng *rand.Rand) string {
	var sb strings.Builder
	for range rng.IntN(4) {
		sb.WriteString(randWords[rng.IntN(len(randWords))])
	}
	return sb.String()
}

func randScalar(rng *rand.Rand) any {
	switch rng.IntN(8) {
	case 0:
		return nil
	case 1:
		return rng.IntN(2) == 0
	case 2:
		return json.Number(strconv.Itoa(rng.IntN(2000) - 1000))
	case 3:
		return json.Number(strconv.FormatFloat((rng.Float64()-0.5)*1e6, 'g', -1, 64))
	case 4:
		return json.Number(strconv.FormatInt(rng.Int64(), 10))
	}
	return randString(rng)
}

func randValue(rng *rand.Rand, depth int) any {
	if depth > 0 {
		switch rng.IntN(6) {
		case 0:
			return randObject(rng, depth-1)
		case 1:
			n := rng.IntN(5)
			l := make([]any, n)
			for i := range l {
				l[i] = randValue(rng, depth-1)
			}
			return l
		}
	}
	return randScalar(rng)
}

func randObject(rng *rand.Rand, depth int) map[string]any {
	m := map[string]any{}
	for range rng.IntN(5) {
		m[randKey(rng)] = randValue(rng, depth)
	}
	return m
}

func randKey(rng *rand.Rand) string {
	return []string{"a", "b", "title", "n", "list", "é", "🙂", "x y"}[rng.IntN(8)]
}

// editJSON returns a random edit of v (v itself is not changed).
func editJSON(rng *rand.Rand, v any, depth int) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = x
		}
		for range 1 + rng.IntN(2) {
			k := randKey(rng)
			switch x, ok := m[k]; {
			case ok && rng.IntN(4) == 0:
				delete(m, k)
			case ok:
				m[k] = editJSON(rng, x, depth-1)
			default:
				m[k] = randValue(rng, max(depth-1, 0))
			}
		}
		return m
	case []any:
		l := slices.Clone(v)
		switch op := rng.IntN(4); {
		case op == 0 && len(l) > 0:
			i := rng.IntN(len(l))
			l = slices.Delete(l, i, i+1)
		case op == 1 && len(l) > 0:
			i := rng.IntN(len(l))
			l[i] = editJSON(rng, l[i], depth-1)
		default:
			l = slices.Insert(l, rng.IntN(len(l)+1), randValue(rng, max(depth-1, 0)))
		}
		return l
	case string:
		r := []rune(v)
		i := rng.IntN(len(r) + 1)
		j := i + rng.IntN(len(r)-i+1)
		return string(r[:i]) + randString(rng) + string(r[j:])
	}
	if rng.IntN(3) == 0 {
		return randValue(rng, max(depth, 0))
	}
	return randScalar(rng)
}

// TestChangeToJSON: how values map, scenario by scenario.
func TestChangeToJSON(t *testing.T) {
	t.Run("new strings are text, edited by splices", func(t *testing.T) {
		w := newWriteDoc()
		w.put(t, actorS, mustParse(t, `{"s": "hello world"}`))
		c, _ := w.put(t, actorS, mustParse(t, `{"s": "hello, brave world"}`))
		// Only the new characters: not a new text.
		if c.Ops != len(", brave") {
			t.Fatalf("splice made %d ops, want %d", c.Ops, len(", brave"))
		}
	})
	t.Run("a concurrent edit of the same text keeps both", func(t *testing.T) {
		w := newWriteDoc()
		base, _ := w.put(t, actorA, mustParse(t, `{"s": "the cat sat"}`))
		// Replica B, from the same base, appends; the server inserts.
		b := newWriteDoc()
		b.apply(t, base)
		cb, _ := b.put(t, actorB, mustParse(t, `{"s": "the cat sat down"}`))
		cs, _ := w.put(t, actorS, mustParse(t, `{"s": "the black cat sat"}`))
		w.apply(t, cb)
		b.apply(t, cs)
		for _, x := range []*writeDoc{w, b} {
			if got, want := string(x.view(t)), `{"s":"the black cat sat down"}`; got != want {
				t.Fatalf("merged %s, want %s", got, want)
			}
		}
	})
	t.Run("numbers, counters, timestamps and bytes", func(t *testing.T) {
		w := newWriteDoc()
		w.put(t, actorA, mustParse(t, `{"i": 1, "f": 1.5, "big": 18446744073709551615, "e": 1e2}`))
		got := map[string]uint8{}
		for k, at := range w.d.objs[OpID{}].keys {
			got[k] = w.d.ops[at[len(at)-1]].vtype
		}
		if want := map[string]uint8{"i": valInt, "f": valFloat, "big": valUint, "e": valInt}; !mapsEqual(got, want) {
			t.Fatalf("types %v, want %v", got, want)
		}
		// A counter, a timestamp and bytes written by a replica keep their
		// type when the body says what the view shows.
		ts := Value{Type: valTimestamp, Raw: appendSleb(nil, 1700000000123)}
		by := Value{Type: valBytes, Raw: []byte{1, 2, 3}}
		c := rawChange(t, w, actorB, []Op{
			{Key: mapKey("c"), Action: ActSet, Value: CounterValue(10)},
			{Key: mapKey("t"), Action: ActSet, Value: ts},
			{Key: mapKey("b"), Action: ActSet, Value: by},
		})
		w.apply(t, c)
		w.put(t, actorS, mustParse(t, `{"i": 1, "f": 1.5, "big": 18446744073709551615, "e": 100, "c": 7, "t": "2023-11-14T22:13:20.123Z", "b": "AQID"}`))
		last := w.lastOps(t)
		if len(last) != 1 || last[0].action != ActInc || w.d.value(&last[0]).Int() != -3 {
			t.Fatalf("counter write: ops %+v, want one increment by -3", last)
		}
		w.put(t, actorS, mustParse(t, `{"i": 1, "f": 1.5, "big": 18446744073709551615, "e": 100, "c": 7, "t": "2024-01-01T00:00:00.000Z", "b": "AQIDBA=="}`))
		for k, typ := range map[string]uint8{"t": valTimestamp, "b": valBytes, "c": valCounter} {
			at := w.d.objs[OpID{}].keys[k]
			if vis := w.d.visible(at, nil); w.d.ops[vis[len(vis)-1]].vtype != typ {
				t.Errorf("%s lost its type", k)
			}
		}
	})
	t.Run("writing a key with conflicting values resolves them", func(t *testing.T) {
		w := newWriteDoc()
		base, _ := w.put(t, actorA, mustParse(t, `{"k": 0}`))
		b := newWriteDoc()
		b.apply(t, base)
		cb, _ := b.put(t, actorB, mustParse(t, `{"k": 2}`))
		w.put(t, actorA, mustParse(t, `{"k": 1}`))
		w.apply(t, cb)
		if cs, _ := w.d.Conflicts(nil); len(cs) != 1 {
			t.Fatalf("conflicts %v, want one", cs)
		}
		shown := w.view(t)
		c, ok := w.put(t, actorS, mustParse(t, string(shown)))
		if !ok || c.Ops != 1 {
			t.Fatalf("resolving write: ok %v, %d ops", ok, c.Ops)
		}
		if cs, _ := w.d.Conflicts(nil); len(cs) != 0 {
			t.Fatalf("conflicts %v after the write, want none", cs)
		}
		// Between two objects too.
		w.put(t, actorA, mustParse(t, `{"k": 0}`))
		b = newWriteDoc()
		for _, raw := range w.raw {
			cs, _ := Split(raw)
			b.apply(t, cs...)
		}
		cb, _ = b.put(t, actorB, mustParse(t, `{"k": {"b": "x"}}`))
		w.put(t, actorA, mustParse(t, `{"k": {"a": "y"}}`))
		w.apply(t, cb)
		if cs, _ := w.d.Conflicts(nil); len(cs) != 1 {
			t.Fatalf("conflicts %v, want one", cs)
		}
		w.put(t, actorS, mustParse(t, string(w.view(t))))
		if cs, _ := w.d.Conflicts(nil); len(cs) != 0 {
			t.Fatalf("conflicts %v after writing the key, want none", cs)
		}
	})
	t.Run("lists keep equal elements", func(t *testing.T) {
		w := newWriteDoc()
		w.put(t, actorS, mustParse(t, `{"l": [{"id": 1, "t": "a"}, {"id": 2, "t": "b"}, 3]}`))
		// Elements facing each other are edited in place: "c" spliced into
		// the second object's text, 3 set to 0.
		c, _ := w.put(t, actorS, mustParse(t, `{"l": [{"id": 1, "t": "a"}, {"id": 2, "t": "bc"}, 0]}`))
		if c.Ops != 2 {
			t.Fatalf("list edit made %d ops, want 2", c.Ops)
		}
		// An insertion keeps every other element.
		c, _ = w.put(t, actorS, mustParse(t, `{"l": [true, {"id": 1, "t": "a"}, {"id": 2, "t": "bc"}, 0]}`))
		if c.Ops != 1 {
			t.Fatalf("list insert made %d ops, want 1", c.Ops)
		}
	})
	t.Run("reserved root keys stay, reserved keys are refused", func(t *testing.T) {
		w := newWriteDoc()
		del := BoolValue(true)
		c, _, err := w.ix.ReservedChange(actorA, DeletedKey, &del, 0)
		if err != nil {
			t.Fatal(err)
		}
		w.apply(t, c)
		w.put(t, actorS, mustParse(t, `{"a": 1}`))
		if deleted, _ := w.d.Deleted(nil); !deleted {
			t.Fatal("a write removed $deleted")
		}
		for _, body := range []string{`{"$x": 1}`, `{"a": {"$y": 1}}`, `{"a": [{"$z": 1}]}`, `[]`, `1`, `{} {}`, `{"a": 1e999}`} {
			if _, err := ParseJSONObject([]byte(body)); !errors.Is(err, ErrInvalidWrite) {
				t.Errorf("ParseJSONObject(%s) = %v, want ErrInvalidWrite", body, err)
			}
		}
		if _, _, err := w.d.ChangeToJSON(map[string]any{"$deleted": false}, actorS, 0); !errors.Is(err, ErrInvalidWrite) {
			t.Errorf("ChangeToJSON with $deleted: %v", err)
		}
	})
}

func mapsEqual(a, b map[string]uint8) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// lastOps returns the ops of the document's newest change.
func (w *writeDoc) lastOps(tb testing.TB) []mop {
	tb.Helper()
	c := w.d.changes[len(w.d.changes)-1]
	var out []mop
	for _, o := range w.d.ops {
		if o.id.Actor == c.actor && o.id.Ctr > c.maxOp-uint64(c.nOps) && o.id.Ctr <= c.maxOp {
			out = append(out, o)
		}
	}
	return out
}

// rawChange makes a change of root-map ops by actor on top of the document.
func rawChange(tb testing.TB, w *writeDoc, actor []byte, ops []Op) Change {
	tb.Helper()
	wr := w.d.newWriter(actor)
	for _, op := range ops {
		wr.add(op)
	}
	c, _, err := wr.finish(1700000000)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// TestChangeToHeadsRandom restores random histories made by Automerge JS
// (every profile) to each of their earlier versions: one change that the
// Index accepts, after which the view is the old one exactly, in Go and in
// Automerge JS; restoring to the current heads makes no change.
func TestChangeToHeadsRandom(t *testing.T) {
	js := amjs.Start(t)
	seed := int64(*writeSeed)
	if seed == 0 {
		seed = time.Now().UnixNano() % 1_000_000_000
	}
	t.Logf("seed %d (replay with -write.seed=%d)", seed, seed)
	n := 3
	if testing.Short() {
		n = 1
	}
	for _, p := range amjs.Profiles {
		for k := range int64(n) {
			s := seed + k
			t.Run(fmt.Sprintf("%s/%d", p, s), func(t *testing.T) {
				c, err := js.Random(s, amjs.RandomOptions{Profile: p, Steps: 40, PasteMax: 100})
				if err != nil {
					t.Fatal(err)
				}
				load := func() *writeDoc {
					w := newWriteDoc()
					for _, raw := range c.Changes {
						cs, err := Split(raw)
						if err != nil {
							t.Fatal(err)
						}
						if err := w.ix.AddAll(cs); err != nil {
							t.Fatal(err)
						}
						if err := w.d.Apply(cs); err != nil {
							t.Fatal(err)
						}
						w.raw = append(w.raw, raw)
					}
					return w
				}
				if _, ok, err := load().d.ChangeToHeads(load().d.Heads(), actorS, 0); err != nil || ok {
					t.Fatalf("restore to the current heads: change %v, err %v", ok, err)
				}
				for i, snap := range c.Snapshots {
					if i >= 4 {
						break
					}
					heads, err := ParseHashes(snap.Heads)
					if err != nil {
						t.Fatal(err)
					}
					w := load()
					rc, ok, err := w.d.ChangeToHeads(heads, actorS, 0)
					if err != nil {
						t.Fatalf("ChangeToHeads(%v): %v", snap.Heads, err)
					}
					if ok {
						w.apply(t, rc)
					}
					if got := w.view(t); !sameJSON(t, got, snap.View) {
						t.Fatalf("restored to %v: %s\nwant %s", snap.Heads, got, snap.View)
					}
					if !ok {
						continue
					}
					res, err := js.Load(w.all())
					if err != nil {
						t.Fatalf("Automerge JS refuses the restore change: %v", err)
					}
					if !sameJSON(t, res.View, snap.View) {
						t.Fatalf("Automerge JS after restore: %s\nwant %s", res.View, snap.View)
					}
				}
			})
		}
	}
}

// TestChangeToHeadsLifecycle: the restored state includes $deleted, and an
// object replaced since comes back as a copy.
func TestChangeToHeadsLifecycle(t *testing.T) {
	w := newWriteDoc()
	w.put(t, actorA, mustParse(t, `{"o": {"a": [1, "x"]}, "s": "abc"}`))
	old := w.d.Heads()
	w.put(t, actorA, mustParse(t, `{"o": 5, "s": "aXc"}`))
	del := BoolValue(true)
	c, _, err := w.ix.ReservedChange(actorA, DeletedKey, &del, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.apply(t, c)
	rc, ok, err := w.d.ChangeToHeads(old, actorS, 0)
	if err != nil || !ok {
		t.Fatalf("ChangeToHeads: %v %v", ok, err)
	}
	w.apply(t, rc)
	if got, want := string(w.view(t)), `{"o":{"a":[1,"x"]},"s":"abc"}`; got != want {
		t.Fatalf("restored %s, want %s", got, want)
	}
	if deleted, _ := w.d.Deleted(nil); deleted {
		t.Fatal("restoring a version from before the delete left the record deleted")
	}
	if _, _, err := w.d.ChangeToHeads([]Hash{{1}}, actorS, 0); !errors.Is(err, ErrMissingDeps) {
		t.Fatalf("unknown heads: %v, want ErrMissingDeps", err)
	}
}

// TestConflictsRandom holds Conflicts to Automerge JS 3.5's on random
// histories: the same paths in the same order, the shown value first, and
// each value's hash the change holding the op JS names.
func TestConflictsRandom(t *testing.T) {
	js := amjs.Start(t)
	seed := time.Now().UnixNano() % 1_000_000_000
	if *writeSeed != 0 {
		seed = int64(*writeSeed)
	}
	t.Logf("seed %d (replay with -write.seed=%d)", seed, seed)
	seen := 0
	defer func() {
		if seen == 0 && !t.Failed() {
			t.Error("no random history had a conflict: the test checked nothing")
		}
	}()
	for _, p := range []amjs.Profile{amjs.ProfileMap, amjs.ProfileList, amjs.ProfileCounter, amjs.ProfileMixed} {
		for k := range int64(3) {
			s := seed + k
			t.Run(fmt.Sprintf("%s/%d", p, s), func(t *testing.T) {
				c, err := js.Random(s, amjs.RandomOptions{Profile: p, Steps: 60})
				if err != nil {
					t.Fatal(err)
				}
				d := NewDoc()
				var all []Change
				for _, raw := range c.Changes {
					cs, err := Split(raw)
					if err != nil {
						t.Fatal(err)
					}
					all = append(all, cs...)
				}
				if err := d.Apply(all); err != nil {
					t.Fatal(err)
				}
				got, err := d.Conflicts(nil)
				if err != nil {
					t.Fatal(err)
				}
				seen += len(got)
				if len(got) != len(c.Conflicts) {
					t.Fatalf("%d conflicts, JS %d: %+v\nJS %+v", len(got), len(c.Conflicts), got, c.Conflicts)
				}
				for i, jc := range c.Conflicts {
					g := got[i]
					if fmt.Sprint(g.Path) != fmt.Sprint([]any(jc.Path)) || len(g.Values) != len(jc.Values) {
						t.Fatalf("conflict %d: %v with %d values, JS %v with %d", i, g.Path, len(g.Values), jc.Path, len(jc.Values))
					}
					for j, jv := range jc.Values {
						if !sameJSON(t, g.Values[j].Value, jv.Value) {
							t.Fatalf("conflict %v value %d: %s, JS %s", g.Path, j, g.Values[j].Value, jv.Value)
						}
						if want := changeHolding(t, all, jv.OpID); g.Values[j].Hash != want {
							t.Fatalf("conflict %v value %d: hash %s, want %s", g.Path, j, g.Values[j].Hash, want)
						}
					}
				}
			})
		}
	}
}

// changeHolding returns the change holding op "<ctr>@<actor hex>".
func changeHolding(tb testing.TB, all []Change, opID string) Hash {
	tb.Helper()
	ctrS, actor, _ := strings.Cut(opID, "@")
	ctr, err := strconv.ParseUint(ctrS, 10, 64)
	if err != nil {
		tb.Fatalf("op ID %q", opID)
	}
	for _, c := range all {
		if fmt.Sprintf("%x", c.Actor) == actor && ctr >= c.StartOp && ctr < c.StartOp+uint64(c.Ops) {
			return c.Hash
		}
	}
	tb.Fatalf("no change holds %s", opID)
	return Hash{}
}

// TestChangeToMergePatchRandom holds ChangeToMergePatch to RFC 7396's
// MergePatch pseudo-code on random documents and patches: the view after
// the change is the patched document. (github.com/evanphx/json-patch/v5
// also drops nulls inside arrays, which the RFC keeps: an array is a
// value.)
func TestChangeToMergePatchRandom(t *testing.T) {
	seed := *writeSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano() % 1_000_000_000)
	}
	t.Logf("seed %d (replay with -write.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := range 300 {
		doc := roundTrip(t, randObject(rng, 3))
		patch := roundTrip(t, randMergePatch(rng, 3))
		w := newWriteDoc()
		w.put(t, actorA, doc)
		c, ok, err := w.d.ChangeToMergePatch(patch, actorS, 0)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if ok {
			w.apply(t, c)
		}
		if got, want := w.view(t), mustCanon(t, rfcMergePatch(doc, patch)); !bytes.Equal(got, want) {
			docJSON, _ := json.Marshal(doc)
			patchJSON, _ := json.Marshal(patch)
			t.Fatalf("case %d: %s patched with %s\ngot  %s\nwant %s", i, docJSON, patchJSON, got, want)
		}
	}
}

// rfcMergePatch is RFC 7396 section 2, as written there.
func rfcMergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t := map[string]any{}
	if cur, ok := target.(map[string]any); ok {
		for k, v := range cur {
			t[k] = v
		}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
		} else {
			t[k] = rfcMergePatch(t[k], v)
		}
	}
	return t
}

// randMergePatch returns a random merge patch: members set, removed (null)
// or patched (an object).
func randMergePatch(rng *rand.Rand, depth int) map[string]any {
	m := map[string]any{}
	for range rng.IntN(4) {
		switch k := randKey(rng); {
		case rng.IntN(4) == 0:
			m[k] = nil
		case rng.IntN(3) == 0 && depth > 0:
			m[k] = randMergePatch(rng, depth-1)
		default:
			m[k] = randValue(rng, max(depth-1, 0))
		}
	}
	return m
}

// TestChangeToHeadsTextMerge: a restore edits text by splices, so a
// replica's concurrent edit of the same text is kept.
func TestChangeToHeadsTextMerge(t *testing.T) {
	w := newWriteDoc()
	w.put(t, actorA, mustParse(t, `{"s": "hello world"}`))
	v1 := w.d.Heads()
	w.put(t, actorA, mustParse(t, `{"s": "hello brave world"}`))
	// Replica B has v2 and appends, offline.
	b := newWriteDoc()
	for _, raw := range w.raw {
		cs, _ := Split(raw)
		b.apply(t, cs...)
	}
	cb, _ := b.put(t, actorB, mustParse(t, `{"s": "hello brave world today"}`))
	rc, ok, err := w.d.ChangeToHeads(v1, actorS, 0)
	if err != nil || !ok {
		t.Fatalf("ChangeToHeads: %v %v", ok, err)
	}
	if rc.Ops != len("brave ") {
		t.Fatalf("restore made %d ops, want %d deletions", rc.Ops, len("brave "))
	}
	w.apply(t, rc)
	w.apply(t, cb)
	b.apply(t, rc)
	for _, x := range []*writeDoc{w, b} {
		if got, want := string(x.view(t)), `{"s":"hello world today"}`; got != want {
			t.Fatalf("merged %s, want %s", got, want)
		}
	}
}
