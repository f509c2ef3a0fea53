package amjs

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var flagSeed = flag.Int64("seed", 0, "first seed of the random tests (0: pick one and print it)")

// seed returns the first seed of a randomised test: -seed, or one from the
// clock, logged so that a failure can be replayed.
func seed(tb testing.TB) int64 {
	tb.Helper()
	s := *flagSeed
	if s == 0 {
		s = time.Now().UnixNano()
	}
	tb.Logf("seed %d (replay with -seed %d)", s, s)
	return s
}

// TestRandomProfiles makes a history of every profile and checks that
// Automerge JS reads the same document back from its save and from its
// changes, that the time-travel snapshots hold, and that every conflict's
// winner is the view's value.
func TestRandomProfiles(t *testing.T) {
	js := Start(t)
	first := seed(t)
	for i, p := range Profiles {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel() // the oracle serialises the requests
			s := first + int64(i)
			c, err := js.Random(s, RandomOptions{Profile: p, Actors: 2 + i%4, Steps: 60})
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Changes) < 2 || len(c.Heads) == 0 || len(c.Actors) != 2+i%4 {
				t.Fatalf("seed %d: %d changes, heads %v, actors %v: want a history", s, len(c.Changes), c.Heads, c.Actors)
			}
			if got, want := c.Seed, s; got != want {
				t.Errorf("Seed=%d, want %d", got, want)
			}
			for name, data := range map[string][]byte{"save": c.Save, "changes": c.AllChanges()} {
				res, err := js.Load(data)
				if err != nil {
					t.Fatalf("seed %d: Load(%s): %v", s, name, err)
				}
				if got, want := res.Heads, c.Heads; !slices.Equal(got, want) {
					t.Errorf("seed %d: Load(%s).Heads=%v, want %v", s, name, got, want)
				}
				if got, want := res.View, c.View; !bytes.Equal(got, want) {
					t.Errorf("seed %d: Load(%s).View=%s, want %s", s, name, got, want)
				}
				if got, want := res.Conflicts, c.Conflicts; !reflect.DeepEqual(got, want) {
					t.Errorf("seed %d: Load(%s).Conflicts=%v, want %v", s, name, got, want)
				}
				if got, want := res.Marks, c.Marks; !reflect.DeepEqual(got, want) {
					t.Errorf("seed %d: Load(%s).Marks=%v, want %v", s, name, got, want)
				}
				if got, want := len(res.Changes), len(c.Changes); got != want {
					t.Errorf("seed %d: Load(%s) has %d changes, want %d", s, name, got, want)
				}
			}
			checkConflicts(t, c.View, c.Conflicts)
			if len(c.Snapshots) == 0 {
				t.Fatalf("seed %d: no snapshots", s)
			}
			for _, snap := range c.Snapshots {
				v, err := js.ViewAt(c.Save, snap.Heads)
				if err != nil {
					t.Fatalf("seed %d: ViewAt(%v): %v", s, snap.Heads, err)
				}
				if !bytes.Equal(v, snap.View) {
					t.Errorf("seed %d: ViewAt(%v)=%s, want %s", s, snap.Heads, v, snap.View)
				}
				checkConflicts(t, snap.View, snap.Conflicts)
			}
		})
	}
}

// checkConflicts checks that each conflict's first value is the view's
// value at its path, and that it lists more than one value.
func checkConflicts(tb testing.TB, view json.RawMessage, conflicts []Conflict) {
	tb.Helper()
	var root any
	if err := json.Unmarshal(view, &root); err != nil {
		tb.Fatalf("view %s: %v", view, err)
	}
	for _, c := range conflicts {
		if len(c.Values) < 2 {
			tb.Errorf("conflict at %v has %d values", c.Path, len(c.Values))
			continue
		}
		v := root
		for _, k := range c.Path {
			switch k := k.(type) {
			case string:
				v = v.(map[string]any)[k]
			case int:
				v = v.([]any)[k]
			}
		}
		var winner any
		if err := json.Unmarshal(c.Values[0].Value, &winner); err != nil {
			tb.Fatal(err)
		}
		if !reflect.DeepEqual(v, winner) {
			tb.Errorf("conflict at %v: winner %s, view has %v", c.Path, c.Values[0].Value, v)
		}
	}
}

// TestRandomFeatures checks that profiles make what they promise, on
// fixed seeds: marks and non-ASCII text, conflicts, counter increments,
// integers beyond 2^53.
func TestRandomFeatures(t *testing.T) {
	js := Start(t)
	const s = 42
	t.Logf("seed %d", s)
	get := func(p Profile) (Case, LoadResult) {
		t.Helper()
		c, err := js.Random(s, RandomOptions{Profile: p, Actors: 4, Steps: 80, PasteMax: 500})
		if err != nil {
			t.Fatal(err)
		}
		res, err := js.Load(c.Save)
		if err != nil {
			t.Fatal(err)
		}
		return c, res
	}
	hasOp := func(res LoadResult, f func(Op) bool) bool {
		for _, ch := range res.Changes {
			if slices.ContainsFunc(ch.Ops, f) {
				return true
			}
		}
		return false
	}

	text, textLoad := get(ProfileText)
	if len(text.Marks) == 0 {
		t.Errorf("text: no marks")
	}
	if !strings.ContainsFunc(string(text.View), func(r rune) bool { return r > 0xffff }) {
		t.Errorf("text: no character outside the BMP in %s", text.View)
	}
	if !hasOp(textLoad, func(o Op) bool { return o.Action == "markBegin" && o.Expand }) {
		t.Errorf("text: no mark that expands before")
	}
	if m, _ := get(ProfileMap); len(m.Conflicts) == 0 {
		t.Errorf("map: no conflicts")
	}
	if _, res := get(ProfileCounter); !hasOp(res, func(o Op) bool { return o.Action == "inc" && len(o.Pred) > 1 }) {
		t.Errorf("counter: no increment of conflicting counters")
	}
	if _, res := get(ProfileScalars); !slices.ContainsFunc(res.Changes, func(c ChangeInfo) bool { return c.Ops == nil && c.OpsError != "" }) {
		t.Errorf("scalars: no integer beyond 2^53 (a change decodeChange cannot decode)")
	}
}

// TestRandomDeterministic: a seed gives the same answer, byte for byte;
// another seed another one.
func TestRandomDeterministic(t *testing.T) {
	js := Start(t)
	s := seed(t)
	line := func(seed int64) string {
		t.Helper()
		b, _, err := js.roundTrip(fmt.Appendf(nil, `{"cmd":"random","seed":"%d","actors":3,"steps":40,"profile":"mixed"}`+"\n", seed))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte(`{"actors":`)) {
			t.Fatalf("seed %d: %.300s", seed, b)
		}
		return string(b)
	}
	a, b := line(s), line(s)
	if a != b {
		t.Errorf("seed %d: two runs differ:\n%.500s\n%.500s", s, a, b)
	}
	if line(s+1) == a {
		t.Errorf("seeds %d and %d give the same history", s, s+1)
	}
	// int64 seeds past 2^53 travel as strings and stay distinct.
	big := int64(1) << 60
	if line(big) == line(big+1) {
		t.Errorf("seeds %d and %d give the same history", big, big+1)
	}
}

// TestRefusals: what Automerge JS refuses comes back as ErrRefused, and the
// process answers the next request.
func TestRefusals(t *testing.T) {
	js := Start(t)
	c, err := js.Random(7, RandomOptions{Steps: 10})
	if err != nil {
		t.Fatal(err)
	}
	all := c.AllChanges()
	tests := []struct {
		name string
		call func() error
	}{
		{"missing dependencies", func() error { _, err := js.Load(bytes.Join(c.Changes[1:], nil)); return err }},
		{"trailing bytes", func() error { _, err := js.Load(append(all[:len(all):len(all)], 1, 2, 3)); return err }},
		{"garbage", func() error { _, err := js.Load([]byte("not automerge")); return err }},
		{"unknown heads", func() error { _, err := js.ViewAt(c.Save, []string{strings.Repeat("00", 32)}); return err }},
		{"bad profile", func() error { _, err := js.Random(1, RandomOptions{Profile: "nope"}); return err }},
		{"too many actors", func() error { _, err := js.Random(1, RandomOptions{Actors: 6}); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, ErrRefused) {
				t.Fatalf("err=%v, want ErrRefused", err)
			}
		})
	}
	for _, req := range []string{"not json", `"a string"`, `{"cmd":"nope"}`, `{"cmd":"load","data":7}`} {
		b, _, err := js.roundTrip([]byte(req + "\n"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte(`{"error":`)) || !bytes.Contains(b, []byte(`"ok":false`)) {
			t.Errorf("request %s: answer %s, want ok false", req, b)
		}
	}
	if _, err := js.Load(c.Save); err != nil {
		t.Fatalf("after refusals: %v", err)
	}
}

func TestCheck(t *testing.T) {
	js := Start(t)
	c, err := js.Random(11, RandomOptions{Profile: ProfileText, Steps: 20})
	if err != nil {
		t.Fatal(err)
	}
	n := len(c.Changes)
	base, last := bytes.Join(c.Changes[:n-1], nil), c.Changes[n-1]
	res, err := js.Check(base, last)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || !slices.Equal(res.Heads, c.Heads) {
		t.Fatalf("Check(history)=%+v, want OK with heads %v", res, c.Heads)
	}
	// A change holding an integer beyond 2^53 is accepted, although
	// Automerge.decodeChange cannot decode it.
	sc, err := js.Random(11, RandomOptions{Profile: ProfileScalars, Steps: 40})
	if err != nil {
		t.Fatal(err)
	}
	ld, err := js.Load(sc.Save)
	if err != nil {
		t.Fatal(err)
	}
	j := slices.IndexFunc(ld.Changes, func(c ChangeInfo) bool { return c.Ops == nil })
	if j < 0 {
		t.Fatalf("seed 11: no change with an integer beyond 2^53")
	}
	// Its place in Case.Changes, by hash: SHA-256 of an uncompressed
	// change chunk past magic and checksum.
	i := slices.IndexFunc(sc.Changes, func(c []byte) bool {
		return fmt.Sprintf("%x", sha256.Sum256(c[8:])) == ld.Changes[j].Hash
	})
	res, err = js.Check(bytes.Join(sc.Changes[:i], nil), sc.Changes[i])
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK {
		t.Fatalf("Check(change with a big integer)=%+v, want OK (decodeChange: %s)", res, ld.Changes[j].OpsError)
	}

	res, err = js.Check(nil, last[:len(last)-1])
	if err != nil {
		t.Fatal(err)
	}
	if res.OK || res.Error == "" || strings.HasPrefix(res.Error, "amjs") {
		t.Fatalf("Check(truncated)=%+v, want not OK with Automerge's complaint", res)
	}
}

// TestTrapRestarts: after a WebAssembly trap oracle.mjs answers and exits,
// and the next request gets a new process.
func TestTrapRestarts(t *testing.T) {
	js := Start(t)
	if err := js.call(map[string]string{"cmd": "trap"}, &struct{}{}); !errors.Is(err, ErrRefused) {
		t.Fatalf("trap: err=%v, want ErrRefused", err)
	}
	js.mu.Lock()
	proc := js.proc
	js.mu.Unlock()
	if proc != nil {
		t.Fatalf("the process is still in use after a trap")
	}
	if _, err := js.Random(3, RandomOptions{Steps: 5}); err != nil {
		t.Fatalf("after a trap: %v", err)
	}
}
