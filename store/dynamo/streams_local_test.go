package dynamo_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/internal/testlog"
	"github.com/dynamerge/dynamerge/store"
	"github.com/dynamerge/dynamerge/store/dynamo"
	"github.com/dynamerge/dynamerge/store/dynamo/dynamotest"
)

// TestWatchLocal reads the stream of a DynamoDB Local table while another
// store (another process, as far as DynamoDB knows) appends to it: every
// append is reported, in order per record, with the heads it wrote.
func TestWatchLocal(t *testing.T) {
	watched := dynamotest.NewStore(t, nil, nil)
	writer := dynamo.New(dynamotest.Client(t), watched.Table(), nil)
	defer writer.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := dynamo.StreamOptions{Poll: 50 * time.Millisecond, Logger: testlog.New()}
	ch1, err := watched.WatchWith(ctx, opts)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	// A second, independent watch on the writer's store sees the same.
	ch2, err := writer.WatchWith(ctx, opts)
	if err != nil {
		t.Fatalf("second Watch: %v", err)
	}

	const records, seqs = 3, 8
	type appended struct {
		heads []string
		at    time.Time
	}
	var mu sync.Mutex
	wrote := map[store.Key]map[uint64]appended{}
	var wg sync.WaitGroup
	for r := range records {
		key := store.Key{Collection: "watch", ID: fmt.Sprintf("r%d", r)}
		wrote[key] = map[uint64]appended{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := uint64(1); seq <= seqs; seq++ {
				h := sha256.Sum256(fmt.Appendf(nil, "%s/%d", key, seq))
				heads := []string{hex.EncodeToString(h[:])}
				err := writer.Append(ctx, key, store.Entry{Seq: seq, Changes: []byte{byte(seq)}}, store.AppendMeta{Heads: heads, Size: int64(seq)})
				if err != nil {
					t.Errorf("Append %s %d: %v", key, seq, err)
					return
				}
				mu.Lock()
				wrote[key][seq] = appended{heads, time.Now()}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// A snapshot rewrites the meta item without a new seq.
	snapKey := store.Key{Collection: "watch", ID: "r0"}
	if err := writer.SaveSnapshot(ctx, snapKey, store.Snapshot{Seq: seqs, Data: []byte("snapshot")}); err != nil {
		t.Fatalf("SaveSnapshot: %v", err)
	}

	for name, ch := range map[string]<-chan store.Change{"watched": ch1, "writer": ch2} {
		got := map[store.Key][]uint64{}
		var lat []time.Duration
		deadline := time.After(15 * time.Second)
		for n := 0; n < records*seqs; {
			select {
			case c := <-ch:
				if c.Gap {
					t.Errorf("%s: unexpected gap", name)
					continue
				}
				mu.Lock()
				a, ok := wrote[c.Key][c.Seq]
				mu.Unlock()
				if !ok {
					t.Fatalf("%s: change %s seq %d was never appended", name, c.Key, c.Seq)
				}
				if !slices.Equal(c.Heads, a.heads) {
					t.Errorf("%s: %s seq %d heads %v, want %v", name, c.Key, c.Seq, c.Heads, a.heads)
				}
				if s := got[c.Key]; len(s) > 0 && s[len(s)-1] >= c.Seq {
					// At least once allows a repeat, but never going back
					// past a later change.
					if s[len(s)-1] > c.Seq {
						t.Errorf("%s: %s seq %d after seq %d", name, c.Key, c.Seq, s[len(s)-1])
					}
					continue
				}
				got[c.Key] = append(got[c.Key], c.Seq)
				lat = append(lat, time.Since(a.at))
				n++
			case <-deadline:
				t.Fatalf("%s: after 15s got %v", name, got)
			}
		}
		for key, s := range got {
			if len(s) != seqs {
				t.Errorf("%s: %s seqs %v, want 1..%d", name, key, s, seqs)
			}
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		t.Logf("%s: %d changes, latency from Append's return (poll %v): p50 %v, max %v",
			name, len(lat), opts.Poll, lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	}
	// The snapshot's meta update repeats seq 8 of r0 at most; no new seq.
	select {
	case c := <-ch1:
		if c.Key != snapKey || c.Seq != seqs {
			t.Errorf("after the appends got %+v, want nothing or a repeat of %s seq %d", c, snapKey, seqs)
		}
	case <-time.After(300 * time.Millisecond):
	}

	cancel()
	for _, ch := range []<-chan store.Change{ch1, ch2} {
		for range ch {
		}
	}
}
