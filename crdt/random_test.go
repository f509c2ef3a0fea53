package crdt

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/dynamerge/dynamerge/internal/amjs"
)

var (
	randomSeeds = flag.Int("random.seeds", 6, "seeds per profile of TestMaterializeRandom")
	randomSteps = flag.Int("random.steps", 60, "editing steps per case of TestMaterializeRandom")
	randomSeed  = flag.Int64("random.seed", 0, "first seed of TestMaterializeRandom (0: time-based)")
)

// TestMaterializeRandom holds the pure-Go core to Automerge JS 3.5 on
// randomized histories made with the real JS API (internal/amjs): maps,
// lists, text (pastes, range deletions, concurrent edits, marks), counters,
// every scalar type, conflicts. For each case:
//   - the Index accepts every change, pushed one by one;
//   - the Doc's JSON view, heads and views at earlier heads equal JS's;
//   - the document Save writes loads in JS with the same heads and view,
//     and in automerge-go (the Go client) with the same heads;
//   - the document JS saved loads in Go (LoadRecord) with the same view,
//     and the changes rebuilt from it are exactly JS's.
func TestMaterializeRandom(t *testing.T) {
	js := amjs.Start(t)
	seed := *randomSeed
	if seed == 0 {
		seed = time.Now().UnixNano() % 1_000_000_000
	}
	t.Logf("seed %d (replay with -random.seed=%d)", seed, seed)
	for _, p := range amjs.Profiles {
		for k := range *randomSeeds {
			s := seed + int64(k)
			t.Run(fmt.Sprintf("%s/%d", p, s), func(t *testing.T) {
				c, err := js.Random(s, amjs.RandomOptions{Profile: p, Steps: *randomSteps, PasteMax: 2000})
				if err != nil {
					t.Fatalf("Random: %v", err)
				}
				checkCase(t, js, c)
			})
		}
	}
}

func checkCase(t *testing.T, js *amjs.Oracle, c amjs.Case) {
	t.Helper()
	ix := NewIndex()
	var all []Change
	for i, raw := range c.Changes {
		cs, err := Split(raw)
		if err != nil {
			t.Fatalf("change %d: Split: %v", i, err)
		}
		if err := ix.AddAll(cs); err != nil {
			t.Fatalf("change %d: Index: %v", i, err)
		}
		all = append(all, cs...)
	}
	if got := HashStrings(ix.Heads()); !slices.Equal(got, c.Heads) {
		t.Fatalf("Index heads %v, want %v", got, c.Heads)
	}
	d := NewDoc()
	if err := d.Apply(all); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	view, err := d.JSON(JSONOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !sameJSON(t, view, c.View) {
		t.Fatalf("JSON()=%s\nJS:    %s", view, c.View)
	}
	for _, snap := range c.Snapshots {
		heads, err := ParseHashes(snap.Heads)
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.JSON(JSONOptions{Heads: heads})
		if err != nil {
			t.Fatalf("JSON at %v: %v", snap.Heads, err)
		}
		if !sameJSON(t, got, snap.View) {
			t.Fatalf("JSON at %v = %s\nJS:    %s", snap.Heads, got, snap.View)
		}
	}

	saved := d.Save()
	res, err := js.Load(saved)
	if err != nil {
		t.Fatalf("JS load of the Go-saved document: %v", err)
	}
	if !slices.Equal(res.Heads, c.Heads) || !sameJSON(t, res.View, c.View) {
		t.Fatalf("JS load of the Go-saved document: heads %v view %s\nwant heads %v view %s", res.Heads, res.View, c.Heads, c.View)
	}
	if !hasMarks(c) {
		// automerge-go (Rust core 0.5) predates marks.
		am, err := automerge.Load(saved)
		if err != nil {
			t.Fatalf("automerge-go load of the Go-saved document: %v", err)
		}
		if n := len(am.Heads()); n != len(c.Heads) {
			t.Fatalf("automerge-go: %d heads, want %d", n, len(c.Heads))
		}
	}

	ld, lix, err := LoadRecord(c.Save)
	if err != nil {
		t.Fatalf("LoadRecord of the JS-saved document: %v", err)
	}
	lview, _ := ld.JSON(JSONOptions{})
	if !sameJSON(t, lview, c.View) {
		t.Fatalf("JSON of the JS-saved document = %s\nJS:    %s", lview, c.View)
	}
	want := map[Hash]bool{}
	for _, ch := range all {
		want[ch.Hash] = true
	}
	if lix.Len() != len(want) {
		t.Fatalf("rebuilt %d changes, want %d", lix.Len(), len(want))
	}
	lix.Walk(0, func(ci ChangeInfo) bool {
		if !want[ci.Hash] {
			t.Fatalf("rebuilt change %s is not one of JS's", ci.Hash)
		}
		return true
	})
	sameOps(t, ix, lix)
	if !bytes.Equal(ld.Save(), saved) && !sameJSON(t, mustJSON(t, ld), view) {
		t.Fatal("the reloaded document differs")
	}
}

func hasMarks(c amjs.Case) bool {
	if len(c.Marks) > 0 {
		return true
	}
	for _, s := range c.Snapshots {
		if len(s.Marks) > 0 {
			return true
		}
	}
	return false
}

func mustJSON(tb testing.TB, d *Doc) json.RawMessage {
	tb.Helper()
	b, err := d.JSON(JSONOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// sameOps checks that two indexes of one history (one built by checking
// every change, one loaded from a snapshot without those checks) know the
// same thing of every op.
func sameOps(t *testing.T, want, got *Index) {
	t.Helper()
	name := func(ix *Index, id OpID) string {
		if id.IsZero() {
			return "root"
		}
		return fmt.Sprintf("%d@%x", id.Ctr, ix.actors[id.Actor])
	}
	for a, rs := range want.runs {
		ga, ok := got.actorOf(want.actors[a])
		if !ok {
			t.Fatalf("the loaded index lacks actor %x", want.actors[a])
		}
		for _, r := range rs {
			for ctr := r.ctr; ctr < r.ctr+uint64(r.n); ctr++ {
				w, _ := want.run(uint32(a), ctr)
				g, ok := got.run(ga, ctr)
				if !ok || w.kind != g.kind || w.key != g.key || name(want, w.obj) != name(got, g.obj) || name(want, w.elem) != name(got, g.elem) {
					t.Fatalf("op %d@%x: loaded %+v (found %v), checked %+v", ctr, want.actors[a], g, ok, w)
				}
			}
		}
	}
	if want.Deleted() != got.Deleted() {
		t.Fatal("the indexes disagree on deleted")
	}
}
