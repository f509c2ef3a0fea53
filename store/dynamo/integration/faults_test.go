package integration

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/internal/testutil"
	"github.com/dynamerge/dynamerge/store"
	"github.com/dynamerge/dynamerge/store/dynamo"
	"github.com/dynamerge/dynamerge/store/dynamo/dynamotest"
)

var seedFlag = flag.Uint64("seed", 0, "seed of the randomised fault test (0: a new one)")

// TestEngineFaults runs clients against two engines ("processes") sharing
// one table, each through its own store whose DynamoDB calls fail at
// random the ways DynamoDB Local never does: Append's writes (the log
// item's put, the meta update) whose response is lost after they landed,
// timeouts before they landed, throttling past the SDK's retries (a fault
// on the meta update leaves a half-done append that the next writer or a
// reader completes), and failing reads (among them the checks of unknown
// outcomes). Clients keep every change they were not told
// is stored and resend it. At the end every change is in the log exactly
// once: 0 lost, 0 duplicated.
func TestEngineFaults(t *testing.T) {
	dynamotest.Endpoint(t)
	seed := *seedFlag
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (replay with -seed %d)", seed, seed)

	client := dynamotest.Client(t)
	// No stream: the test does not need cross-process events, and
	// DynamoDB Local's stream makes every write ten times slower.
	table := dynamotest.NewTable(t, client, dynamotest.WithoutStream)
	var (
		mu  sync.Mutex
		rng = rand.New(rand.NewPCG(seed, 1))
		on  = true
	)
	inject := func(op string, _ any) dynamotest.Fault {
		mu.Lock()
		defer mu.Unlock()
		if !on {
			return dynamotest.Fault{}
		}
		r := rng.Float64()
		switch op {
		case dynamotest.OpPutItem, dynamotest.OpUpdateItem:
			// Append's two writes: the log item's put and the meta update
			// (a fault between them is a half-done append the next
			// writer or a reader completes).
			switch {
			case r < 0.15:
				return dynamotest.Fault{Err: dynamotest.Timeout(op), Landed: true}
			case r < 0.20:
				return dynamotest.Fault{Err: dynamotest.Timeout(op)}
			case r < 0.30:
				return dynamotest.Fault{Err: dynamotest.Throttled()}
			}
		case dynamotest.OpGetItem, dynamotest.OpQuery:
			if r < 0.10 {
				return dynamotest.Fault{Err: dynamotest.Throttled()}
			}
		}
		return dynamotest.Fault{}
	}
	var faults []*dynamotest.Faults
	stacks := make([]*testutil.Stack, 2)
	for i := range stacks {
		f := &dynamotest.Faults{API: client, Inject: inject}
		faults = append(faults, f)
		// No compaction: the test reads the whole log at the end.
		stacks[i] = newStack(t, dynamo.New(f, table, nil), engine.Options{CompactEvery: 1 << 30})
	}

	const clients, records, edits = 4, 3, 12
	keys := make([]store.Key, records)
	for i := range keys {
		keys[i] = store.Key{Collection: "faults", ID: fmt.Sprintf("rec%d", i)}
	}
	var wg sync.WaitGroup
	docs := make([][]*doc, clients)
	var unavailable, refused sync.Map
	for c := range clients {
		docs[c] = make([]*doc, records)
		for r := range records {
			docs[c][r] = newDoc(keys[r])
		}
		wg.Go(func() {
			for e := range edits {
				for r, d := range docs[c] {
					d.set(t, fmt.Sprintf("c%d", c), e)
					// Alternate between the two processes.
					st := stacks[(c+e+r)%2]
					for attempt := 0; len(d.pending) > 0; attempt++ {
						if attempt > 50 {
							t.Errorf("client %d, %s: %d changes still not stored after 50 attempts", c, d.key, len(d.pending))
							return
						}
						res, err := st.Engine.Sync(context.Background(), []engine.DocRequest{{Key: d.key, Changes: join(d.pending)}})
						if err == nil {
							err = res[0].Err
						}
						if err == nil {
							d.pending = nil
							break
						}
						if !errors.Is(err, engine.ErrUnavailable) {
							refused.Store(fmt.Sprintf("%d/%s", c, d.key), err)
							t.Errorf("client %d, %s: %v", c, d.key, err)
							return
						}
						unavailable.Store(fmt.Sprintf("%d/%s/%d/%d", c, d.key, e, attempt), true)
					}
				}
			}
		})
	}
	wg.Wait()
	mu.Lock()
	on = false
	mu.Unlock()
	if t.Failed() {
		return
	}
	injected := map[string]int{}
	for _, f := range faults {
		for op, n := range f.Injected() {
			injected[op] += n
		}
	}
	n503 := 0
	unavailable.Range(func(any, any) bool { n503++; return true })
	t.Logf("faults injected: %v; syncs answered unavailable (and resent): %d", injected, n503)
	if injected[dynamotest.OpPutItem] == 0 || injected[dynamotest.OpUpdateItem] == 0 {
		t.Fatal("no fault was injected into one of Append's writes")
	}

	// Every change of every client, in the log exactly once.
	check := dynamo.New(client, table, nil)
	for r, key := range keys {
		entries, err := check.ReadLog(context.Background(), key, 0)
		if err != nil {
			t.Fatalf("ReadLog(%s): %v", key, err)
		}
		count := map[crdt.Hash]int{}
		for _, e := range entries {
			changes, err := crdt.Split(e.Changes)
			if err != nil {
				t.Fatalf("%s seq %d: %v", key, e.Seq, err)
			}
			for _, c := range changes {
				count[c.Hash]++
			}
		}
		made := 0
		for c := range clients {
			for h := range docs[c][r].made {
				made++
				if count[h] != 1 {
					t.Errorf("%s: change %s of client %d is in the log %d times, want once", key, h, c, count[h])
				}
			}
		}
		if len(count) != made {
			t.Errorf("%s: the log holds %d changes, the clients made %d", key, len(count), made)
		}
		t.Logf("%s: %d changes in %d entries", key, made, len(entries))
	}
}

// TestThrottledSyncAnswers503 throttles every write (Append's log item
// put) past the SDK's retries: the server answers 503 unavailable with
// Retry-After, stores nothing, and the client's resend once DynamoDB
// recovers is stored once.
func TestThrottledSyncAnswers503(t *testing.T) {
	dynamotest.Endpoint(t)
	var (
		mu        sync.Mutex
		throttled = true
	)
	st := dynamotest.NewStore(t, nil, func(api dynamo.API) dynamo.API {
		return &dynamotest.Faults{API: api, Inject: func(op string, _ any) dynamotest.Fault {
			mu.Lock()
			defer mu.Unlock()
			if throttled && (op == dynamotest.OpPutItem || op == dynamotest.OpTransactWriteItems) {
				return dynamotest.Fault{Err: dynamotest.Throttled()}
			}
			return dynamotest.Fault{}
		}}
	})
	s := newStack(t, st, engine.Options{})
	key := store.Key{Collection: "throttle", ID: "r"}
	d := newDoc(key)
	d.set(t, "title", "kept by the client")
	ctx := context.Background()
	push := func() ([]client.DocResult, error) {
		return s.Client.Sync(ctx, []client.Doc{{Collection: key.Collection, ID: key.ID, Changes: join(d.pending)}})
	}
	_, err := push()
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 503 || ce.Code != client.CodeUnavailable || ce.RetryAfter <= 0 {
		t.Fatalf("sync while throttled = %v, want 503 unavailable with Retry-After", err)
	}
	if _, err := st.Load(ctx, key); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load after the 503 = %v, want ErrNotFound", err)
	}
	mu.Lock()
	throttled = false
	mu.Unlock()
	time.Sleep(10 * time.Millisecond)
	res, err := push()
	if err != nil || res[0].Err != nil {
		t.Fatalf("resend after recovery = %v, %v", err, res[0].Err)
	}
	entries, err := st.ReadLog(ctx, key, 0)
	if err != nil || len(entries) != 1 {
		t.Fatalf("log after the resend = %d entries, %v; want 1", len(entries), err)
	}
}
