package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/store"
)

// Sizes of TestCrashRecovery.
const (
	crashKillsShort   = 5
	crashKillsDefault = 25
	crashKillsLong    = 300
	crashWriters      = 6
	crashHotRecords   = 2 // every writer edits these
	crashOwnRecords   = 4 // per writer
)

func TestCrashRecovery(t *testing.T) {
	requireUnix(t)
	kills := *flagKills
	switch {
	case kills > 0:
	case testing.Short():
		kills = crashKillsShort
	case *flagLong:
		kills = crashKillsLong
	default:
		kills = crashKillsDefault
	}
	seed := seedFor(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	bin := buildBinary(t)
	db := filepath.Join(t.TempDir(), "crash.db")
	addr := freeAddr(t)
	p := startProc(t, bin, addr, db)
	t.Cleanup(func() { p.kill() })

	tr := &http.Transport{MaxIdleConnsPerHost: 32}
	t.Cleanup(tr.CloseIdleConnections)
	c := client.New("http://" + addr)
	c.HTTP = &http.Client{Transport: tr, Timeout: 20 * time.Second}

	var keys []store.Key
	for i := range crashHotRecords {
		keys = append(keys, store.Key{Collection: "crash", ID: fmt.Sprintf("hot%d", i)})
	}
	acks := newAckLog()
	var pushes, acked, refused atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for w := range crashWriters {
		var reps []*replica
		for i := range crashHotRecords {
			reps = append(reps, newReplica(t, keys[i], fmt.Sprintf("%016x%08x%08x", seed, w, i)))
		}
		for i := range crashOwnRecords {
			key := store.Key{Collection: "crash", ID: fmt.Sprintf("w%d-r%d", w, i)}
			keys = append(keys, key)
			reps = append(reps, newReplica(t, key, fmt.Sprintf("%016x%08x%08x", seed, w, 100+i)))
		}
		wrng := rand.New(rand.NewPCG(seed, uint64(2+w)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				r := reps[wrng.IntN(len(reps))]
				if wrng.IntN(2) == 0 {
					r = reps[wrng.IntN(crashHotRecords)]
				}
				for range 1 + wrng.IntN(2) {
					r.edit(t, wrng)
				}
				pushes.Add(1)
				err := r.sync(ctx, t, c, acks)
				var e *client.Error
				switch {
				case err == nil:
					acked.Add(1)
				case errors.As(err, &e) && e.Status == 0:
					// A per-document error: the server refused valid changes.
					t.Errorf("writer %d %s: per-doc error %v", w, r.key, e)
					return
				default:
					// Connection refused or reset, or 503 while starting or
					// stopping: the changes stay pending and go out again.
					refused.Add(1)
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
	}

	start := time.Now()
	for k := 0; k < kills && !t.Failed(); k++ {
		time.Sleep(time.Duration(20+rng.IntN(300)) * time.Millisecond)
		p.kill()
		time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
		p = startProc(t, bin, addr, db)
	}
	time.Sleep(200 * time.Millisecond)
	cancel()
	wg.Wait()
	if t.Failed() {
		t.Logf("server output:\n%s", p.output())
		return
	}

	// A fresh replica of each record must hold every acknowledged change.
	vctx := context.Background()
	lost := 0
	for _, key := range keys {
		res, err := c.Sync(vctx, []client.Doc{{Collection: key.Collection, ID: key.ID}})
		if err != nil || len(res) != 1 || res[0].Err != nil {
			t.Fatalf("fresh pull of %s: %v %+v", key, err, res)
		}
		d := automerge.New()
		if err := d.LoadIncremental(res[0].Changes); err != nil {
			t.Fatalf("%s: LoadIncremental(pull): %v", key, err)
		}
		if got, want := hashStrings(d.Heads()), sortedHeads(res[0].Heads); !slices.Equal(got, want) {
			t.Errorf("%s: fresh replica heads %v, server says %v", key, got, want)
		}
		if m := acks.missing(key, d); len(m) > 0 {
			lost += len(m)
			t.Errorf("%s: %d acknowledged changes lost, e.g. %s", key, len(m), m[0])
		}
	}
	p.stop(t)
	t.Logf("kills %d in %v, pushes %d (acked %d, failed over %d), acked changes %d, lost %d",
		kills, time.Since(start).Round(time.Millisecond), pushes.Load(), acked.Load(), refused.Load(), acks.count(), lost)
}
