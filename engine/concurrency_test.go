package engine

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/store"
)

// TestConcurrent_Pushes hammers the engine (run it with -race): 50
// goroutines pushing to one record and 50 to a record each, every push
// answered nil must be in the final graph and in the store.
func TestConcurrent_Pushes(t *testing.T) {
	const goroutines, pushes = 50, 4
	for _, tc := range []struct {
		name   string
		shared bool
	}{
		{"one record", true},
		{"many records", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := newEngine(t, newBolt(t), Options{CompactEvery: 40})
			var mu sync.Mutex
			acked := map[store.Key][]crdt.Hash{}
			errs := make(chan error, goroutines)
			// Changes are made up front: automerge-go documents are not
			// meant for t.Fatal from other goroutines.
			type work struct {
				key store.Key
				r   *replica
			}
			ws := make([]work, goroutines)
			for g := range ws {
				key := todo("shared")
				if !tc.shared {
					key = todo(fmt.Sprint("own", g))
				}
				ws[g] = work{key, newReplica()}
			}
			var wg sync.WaitGroup
			for g, w := range ws {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- func() error {
						for i := range pushes {
							if err := w.r.doc.Path(fmt.Sprint("g", g)).Set(int64(i)); err != nil {
								return err
							}
							h, err := w.r.doc.Commit("")
							if err != nil {
								return err
							}
							c, err := w.r.doc.Change(h)
							if err != nil {
								return err
							}
							res, err := e.Sync(context.Background(), []DocRequest{{Key: w.key, Have: w.r.heads(), Changes: c.Save()}})
							if err != nil {
								return err
							}
							if res[0].Err != nil {
								return res[0].Err
							}
							mu.Lock()
							acked[w.key] = append(acked[w.key], crdt.Hash(h))
							mu.Unlock()
							if len(res[0].Changes) > 0 {
								if err := w.r.doc.LoadIncremental(res[0].Changes); err != nil {
									return err
								}
							}
						}
						return nil
					}()
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("push: %v", err)
				}
			}
			total := 0
			for key, hs := range acked {
				total += len(hs)
				graph := hashSet(nil)
				res := sync1(t, e, DocRequest{Key: key})
				for h := range changeSet(t, res.Changes) {
					graph[h] = true
				}
				stored := storedHashes(t, e, key)
				for _, h := range hs {
					if !graph[h] || !stored[h] {
						t.Fatalf("%s: acknowledged change %s: in graph %v, in store %v", key, h, graph[h], stored[h])
					}
				}
			}
			if total != goroutines*pushes {
				t.Fatalf("%d changes acknowledged, want %d", total, goroutines*pushes)
			}
			st := e.Stats()
			t.Logf("%d pushes → %d store writes, %d compactions", total, st.StoreWrites, st.Compactions)
		})
	}
}

// TestRecordCost measures what a hot record of 100 small changes costs (its
// index and raw changes, then its materialized document) and checks that
// the cache's estimates (Index.MemoryBytes, Doc.MemoryBytes) do not
// undercount it.
func TestRecordCost(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement")
	}
	const records, changes = 20, 100
	var chunks [records][]byte
	for i := range records {
		r := newReplica()
		for j := range changes {
			chunks[i] = append(chunks[i], r.edit(t, fmt.Sprint("k", j%10), fmt.Sprint("value ", j))...)
		}
	}
	var m0, m1, m2 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	recs := make([]*record, records)
	raw := 0
	for i := range records {
		cs, err := crdt.Split(chunks[i])
		if err != nil {
			t.Fatal(err)
		}
		r := newRecord(todo(fmt.Sprint(i)))
		r.mu.Lock()
		if err := r.ix.AddAll(cs); err != nil {
			t.Fatal(err)
		}
		r.updateCostLocked()
		r.mu.Unlock()
		recs[i] = r
		raw += len(chunks[i])
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	perRecord := int64(m1.HeapAlloc-m0.HeapAlloc) / records
	t.Logf("index: %d B per record of %d changes (%d B raw); charged %d", perRecord, changes, raw/records, recs[0].cost.Load())
	// Heap measurements are noisy (the race detector and background GC add
	// tens of bytes per change): only a gross undercount fails.
	if perRecord > recs[0].cost.Load()*3/2 {
		t.Errorf("measured %d B per record, Index.MemoryBytes says %d", perRecord, recs[0].cost.Load())
	}

	docs := make([]*crdt.Doc, records)
	for i := range records {
		cs, err := crdt.Split(chunks[i])
		if err != nil {
			t.Fatal(err)
		}
		docs[i] = crdt.NewDoc()
		if err := docs[i].Apply(cs); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&m2)
	perDoc := int64(m2.HeapAlloc-m1.HeapAlloc) / records
	t.Logf("document: %d B per record; estimated %d", perDoc, docs[0].MemoryBytes())
	if perDoc > docs[0].MemoryBytes()*3/2 {
		t.Errorf("measured %d B per document, Doc.MemoryBytes says %d", perDoc, docs[0].MemoryBytes())
	}
	runtime.KeepAlive(recs)
	runtime.KeepAlive(docs)
	runtime.KeepAlive(chunks)
}
