package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/dynamerge/dynamerge/benchmarks/lww"
	"github.com/dynamerge/dynamerge/client"
)

// Scenario 1, lost updates. Clients go offline, edit shared records (set a
// field, insert a list item, insert into a text), come back and sync; round
// after round. Every edit carries a unique marker, so counting the markers
// in the final records counts the edits that survived. Both systems get the
// same plan of edits from the same seed.

const lostCollection = "notes"

// edit is one planned edit: its kind, record and unique marker.
type edit struct {
	kind   int // 0 field, 1 list item, 2 text
	record int
	marker string
	pos    float64 // where in the list or text, as a fraction of its length
}

// lostPlan returns plan[round][client] = the edits of that client that round.
func lostPlan(p profile, seed uint64) [][][]edit {
	rng := rand.New(rand.NewPCG(seed, 1))
	plan := make([][][]edit, p.LostRounds)
	for r := range plan {
		plan[r] = make([][]edit, p.LostClients)
		for c := range plan[r] {
			for k := range p.LostEditsPerRound {
				plan[r][c] = append(plan[r][c], edit{
					kind:   rng.IntN(3),
					record: rng.IntN(p.LostRecords),
					marker: fmt.Sprintf("m%dr%de%d", c, r, k),
					pos:    rng.Float64(),
				})
			}
		}
	}
	return plan
}

// jitter is how long a client waits before it reconnects, in the plan too,
// so that both systems see the same order of arrivals.
func lostJitter(seed uint64, round, client int) time.Duration {
	rng := rand.New(rand.NewPCG(seed, uint64(round*100003+client+7)))
	return time.Duration(rng.IntN(40)) * time.Millisecond
}

func recordID(i int) string { return fmt.Sprintf("rec-%05d", i) }

// recordJSON is the shape of a record in this scenario, as both systems
// return it.
type recordJSON struct {
	Fields map[string]any `json:"fields"`
	Items  []string       `json:"items"`
	Text   string         `json:"text"`
}

// countPresent returns how many of the plan's markers rec holds.
func countPresent(recs []recordJSON, plan [][][]edit) (made, present int) {
	for _, round := range plan {
		for _, edits := range round {
			for _, ed := range edits {
				made++
				r := recs[ed.record]
				switch ed.kind {
				case 0:
					if _, ok := r.Fields[ed.marker]; ok {
						present++
					}
				case 1:
					if slices.Contains(r.Items, ed.marker) {
						present++
					}
				case 2:
					if strings.Contains(r.Text, "["+ed.marker+"]") {
						present++
					}
				}
			}
		}
	}
	return made, present
}

// textBoundary returns an insertion point in text that does not split a
// marker: the start, or just after a ']'.
func textBoundary(text string, frac float64) int {
	bounds := []int{0}
	for i := 0; i < len(text); i++ {
		if text[i] == ']' {
			bounds = append(bounds, i+1)
		}
	}
	return bounds[int(frac*float64(len(bounds)))%len(bounds)]
}

func runLost(ctx context.Context, e *env) {
	plan := lostPlan(e.p, e.o.seed)
	for _, sys := range []string{sysDynamerge, sysLWW} {
		for _, st := range e.stores(sys) {
			if ctx.Err() != nil {
				return
			}
			start := time.Now()
			r := &Result{Scenario: "lost-updates", System: sys, Store: st, Converged: true, Metrics: map[string]float64{},
				Params: map[string]any{"clients": e.p.LostClients, "records": e.p.LostRecords, "rounds": e.p.LostRounds, "edits_per_round": e.p.LostEditsPerRound}}
			bar := e.bar(e.p.LostRounds+2, fmt.Sprintf("lost-updates %s/%s", sys, st))
			var recs []recordJSON
			var err error
			if sys == sysDynamerge {
				recs, err = lostDynamerge(ctx, e, st, plan, func() { _ = bar.Add(1) })
			} else {
				recs, err = lostLWW(ctx, e, st, plan, func() { _ = bar.Add(1) })
			}
			_ = bar.Finish()
			r.fail(err)
			if recs != nil {
				made, present := countPresent(recs, plan)
				r.Metrics["edits_made"] = float64(made)
				r.Metrics["edits_present"] = float64(present)
				r.Metrics["edits_lost"] = float64(made - present)
				r.Metrics["lost_pct"] = 100 * float64(made-present) / float64(made)
				if sys == sysDynamerge && present != made {
					r.fail(fmt.Errorf("dynamerge lost %d of %d edits", made-present, made))
				}
			}
			if sys == sysLWW {
				r.Notes = append(r.Notes, "the baseline converges (every replica holds the winning version) but by design drops the losing side of every concurrent edit; its losses are the metric, not a failure")
			}
			e.record(r, start)
		}
	}
}

// lostDynamerge runs the plan through dynamerge with client.Replica and
// returns the final records as the server's JSON view.
func lostDynamerge(ctx context.Context, e *env, st string, plan [][][]edit, step func()) ([]recordJSON, error) {
	srv, err := e.startDynamerge(ctx, st)
	if err != nil {
		return nil, err
	}
	defer func() { _ = srv.Stop() }()
	p := e.p
	// One creator makes each record's structure: maps, lists and texts
	// created concurrently by two replicas would be two different objects,
	// one hiding the other — an app creates a record once.
	creator := client.New(srv.URL)
	creator.HTTP = srv.http
	var init []*client.Replica
	for i := range p.LostRecords {
		rp := client.NewReplica(creator, lostCollection, recordID(i))
		d := rp.Doc()
		if err := errors.Join(d.RootMap().Set("fields", automerge.NewMap()), d.RootMap().Set("items", automerge.NewList()),
			d.RootMap().Set("text", automerge.NewText(""))); err != nil {
			return nil, err
		}
		if _, err := d.Commit("create"); err != nil {
			return nil, err
		}
		init = append(init, rp)
	}
	if err := client.SyncAll(ctx, creator, init); err != nil {
		return nil, fmt.Errorf("create records: %w", err)
	}
	clients := make([]*client.Client, p.LostClients)
	reps := make([][]*client.Replica, p.LostClients)
	for c := range clients {
		clients[c] = client.New(srv.URL)
		clients[c].HTTP = srv.http
		for i := range p.LostRecords {
			reps[c] = append(reps[c], client.NewReplica(clients[c], lostCollection, recordID(i)))
		}
		if err := client.SyncAll(ctx, clients[c], reps[c]); err != nil {
			return nil, fmt.Errorf("client %d first pull: %w", c, err)
		}
	}
	step()
	for round := range plan {
		var wg sync.WaitGroup
		errs := make([]error, p.LostClients)
		for c := range p.LostClients {
			wg.Go(func() {
				for _, ed := range plan[round][c] {
					if err := applyAutomerge(reps[c][ed.record].Doc(), ed); err != nil {
						errs[c] = err
						return
					}
				}
				time.Sleep(lostJitter(e.o.seed, round, c))
				errs[c] = client.SyncAll(ctx, clients[c], reps[c])
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		step()
	}
	// Everyone comes online once more: the first pass pulls what later
	// clients pushed in the last round, the second checks nothing moves.
	for range 2 {
		for c := range clients {
			if err := client.SyncAll(ctx, clients[c], reps[c]); err != nil {
				return nil, err
			}
		}
	}
	step()
	recs := make([]recordJSON, p.LostRecords)
	for i := range recs {
		got, err := creator.Get(ctx, lostCollection, recordID(i))
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(got.Doc, &recs[i]); err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		want := slices.Sorted(slices.Values(got.Heads))
		for c := range clients {
			h := slices.Sorted(slices.Values(reps[c][i].Heads()))
			if !slices.Equal(h, want) {
				return recs, fmt.Errorf("not converged: client %d record %d heads %v, server %v", c, i, h, want)
			}
		}
	}
	return recs, nil
}

func applyAutomerge(d *automerge.Doc, ed edit) error {
	var err error
	switch ed.kind {
	case 0:
		err = d.Path("fields").Map().Set(ed.marker, true)
	case 1:
		l := d.Path("items").List()
		err = l.Insert(int(ed.pos*float64(l.Len()+1))%(l.Len()+1), ed.marker)
	case 2:
		t := d.Path("text").Text()
		s, gerr := t.Get()
		if gerr != nil {
			return gerr
		}
		err = t.Insert(textBoundary(s, ed.pos), "["+ed.marker+"]")
	}
	if err != nil {
		return fmt.Errorf("edit %s: %w", ed.marker, err)
	}
	if _, err = d.Commit(ed.marker); err != nil {
		return fmt.Errorf("edit %s (kind %d, record %d, pos %.3f): commit: %w", ed.marker, ed.kind, ed.record, ed.pos, err)
	}
	return nil
}

// lwwReplica is a client's copy of one record in the baseline: the whole
// JSON document, the stamp of the version it was based on, and whether it
// has local edits to push.
type lwwReplica struct {
	doc   recordJSON
	stamp lww.Stamp
	dirty bool
}

// lostLWW runs the plan through the baseline. Each client pushes the
// records it changed (stamped with the time of its last edit) and pulls
// every record whose stored stamp is newer than its copy's.
func lostLWW(ctx context.Context, e *env, st string, plan [][][]edit, step func()) ([]recordJSON, error) {
	srv, err := e.startLWW(ctx, st)
	if err != nil {
		return nil, err
	}
	defer func() { _ = srv.Stop() }()
	p := e.p
	lc := &lww.Client{BaseURL: srv.URL, HTTP: srv.http}
	empty := recordJSON{Fields: map[string]any{}, Items: []string{}, Text: ""}
	for i := range p.LostRecords {
		b, _ := json.Marshal(empty)
		if _, err := lc.Put(ctx, lostCollection, recordID(i), lww.Version{Stamp: lww.Stamp{Time: time.Now().UnixNano(), Writer: "creator"}, Doc: b}); err != nil {
			return nil, fmt.Errorf("create records: %w", err)
		}
	}
	reps := make([][]*lwwReplica, p.LostClients)
	for c := range reps {
		for range p.LostRecords {
			reps[c] = append(reps[c], &lwwReplica{})
		}
		if err := lwwSync(ctx, lc, c, reps[c]); err != nil {
			return nil, err
		}
	}
	step()
	for round := range plan {
		var wg sync.WaitGroup
		errs := make([]error, p.LostClients)
		for c := range p.LostClients {
			wg.Go(func() {
				for _, ed := range plan[round][c] {
					applyJSON(reps[c][ed.record], ed, c)
				}
				time.Sleep(lostJitter(e.o.seed, round, c))
				errs[c] = lwwSync(ctx, lc, c, reps[c])
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		step()
	}
	for range 2 {
		for c := range reps {
			if err := lwwSync(ctx, lc, c, reps[c]); err != nil {
				return nil, err
			}
		}
	}
	step()
	recs := make([]recordJSON, p.LostRecords)
	for i := range recs {
		v, err := lc.Get(ctx, lostCollection, recordID(i))
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(v.Doc, &recs[i]); err != nil {
			return nil, err
		}
		for c := range reps {
			if reps[c][i].stamp != v.Stamp {
				return recs, fmt.Errorf("baseline not converged: client %d record %d at %v, server at %v", c, i, reps[c][i].stamp, v.Stamp)
			}
		}
	}
	return recs, nil
}

func applyJSON(r *lwwReplica, ed edit, c int) {
	d := &r.doc
	switch ed.kind {
	case 0:
		if d.Fields == nil {
			d.Fields = map[string]any{}
		}
		d.Fields[ed.marker] = true
	case 1:
		i := int(ed.pos*float64(len(d.Items)+1)) % (len(d.Items) + 1)
		d.Items = slices.Insert(d.Items, i, ed.marker)
	case 2:
		i := textBoundary(d.Text, ed.pos)
		d.Text = d.Text[:i] + "[" + ed.marker + "]" + d.Text[i:]
	}
	r.dirty = true
	r.stamp = lww.Stamp{Time: time.Now().UnixNano(), Writer: fmt.Sprintf("client-%d", c)}
}

func lwwSync(ctx context.Context, lc *lww.Client, c int, reps []*lwwReplica) error {
	for i, r := range reps {
		var v lww.Version
		var err error
		if r.dirty {
			b, merr := json.Marshal(r.doc)
			if merr != nil {
				return merr
			}
			v, err = lc.Put(ctx, lostCollection, recordID(i), lww.Version{Stamp: r.stamp, Doc: b})
		} else {
			v, err = lc.Get(ctx, lostCollection, recordID(i))
		}
		if err != nil {
			return fmt.Errorf("client %d record %d: %w", c, i, err)
		}
		if r.dirty || v.Stamp.After(r.stamp) || r.stamp == (lww.Stamp{}) {
			var d recordJSON
			if err := json.Unmarshal(v.Doc, &d); err != nil {
				return fmt.Errorf("client %d record %d: %w", c, i, err)
			}
			r.doc, r.stamp, r.dirty = d, v.Stamp, false
		}
	}
	return nil
}
