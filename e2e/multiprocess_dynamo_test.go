package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/store"
	"github.com/dynamerge/dynamerge/store/dynamo"
	"github.com/dynamerge/dynamerge/store/dynamo/dynamotest"
)

// Sizes of TestMultiProcessDynamo.
const (
	mpProcs        = 3
	mpEventChanges = 120 // changes whose cross-process notification is timed
	// mpEventRecords is as many as changes: with fewer, the process that
	// writes a record's next state may show the previous one before the
	// stream brings it (an event for a later state tells about the earlier
	// changes too), which would flatter the timing.
	mpEventRecords = mpEventChanges
	// mpEventDeadline is how late a notification may arrive on another
	// process. The issue asks for "a couple of seconds"; the default poll
	// of the stream reader is 1 s (store/dynamo DefaultStreamPoll), and a
	// loaded 2-core CI machine adds some.
	mpEventDeadline = 3 * time.Second
	mpWriters       = 6 // two per process
	mpHotRecords    = 2 // every writer edits these
	mpSharedRecords = 3 // every other writer edits these
	mpWriteFor      = 6 * time.Second
	mpWriteForLong  = 60 * time.Second
)

// TestMultiProcessDynamo runs three dynamerge processes on one DynamoDB
// Local table (issue 3, point 6): a change made through one process, or
// appended to the table by another program through the store package,
// reaches /v1/events on every process within a couple of seconds; and
// clients spread across the processes, editing shared and hot records
// while one process is SIGKILLed and restarted, all converge without
// losing an acknowledged change.
func TestMultiProcessDynamo(t *testing.T) {
	requireUnix(t)
	endpoint := dynamotest.SetEnv(t) // skips without DynamoDB Local
	table := dynamotest.NewTable(t, dynamotest.Client(t))
	bin := buildBinary(t)

	procs := make([]*proc, mpProcs)
	addrs := make([]string, mpProcs)
	clients := make([]*client.Client, mpProcs)
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	for i := range procs {
		addrs[i] = freeAddr(t)
		procs[i] = startDynamoProc(t, bin, addrs[i], table, endpoint)
		clients[i] = client.New("http://" + addrs[i])
		clients[i].HTTP = &http.Client{Transport: tr}
	}
	t.Cleanup(func() {
		for _, p := range procs {
			p.kill()
		}
	})

	t.Run("events", func(t *testing.T) { testCrossProcessEvents(t, clients) })
	t.Run("store append", func(t *testing.T) { testStoreAppendEvents(t, clients, table) })
	t.Run("convergence with SIGKILL", func(t *testing.T) {
		testMultiProcessConvergence(t, bin, procs, addrs, clients, table, endpoint)
	})
	if t.Failed() {
		for i, p := range procs {
			t.Logf("process %d output (tail):\n%s", i, tail(p.output(), 4000))
		}
	}
}

// startDynamoProc starts the binary on addr and the DynamoDB Local table,
// and waits until /healthz answers. The AWS environment comes from
// dynamotest.SetEnv.
func startDynamoProc(tb testing.TB, bin, addr, table, endpoint string) *proc {
	tb.Helper()
	return startBinary(tb, bin, addr, 60*time.Second, "--store", "dynamodb:"+table, "--dynamodb-endpoint", endpoint)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// eventLog collects the SSE notifications of one process, in arrival
// order.
type eventLog struct {
	mu     sync.Mutex
	events []seenEvent
	keys   map[store.Key]bool
}

type seenEvent struct {
	key   store.Key
	heads string // sorted, comma-joined
	at    time.Time
}

func joinHeads(heads []string) string { return strings.Join(sortedHeads(heads), ",") }

// subscribe opens /v1/events on c for collection and logs what arrives
// until ctx ends.
func subscribe(ctx context.Context, tb testing.TB, c *client.Client, collection string) *eventLog {
	tb.Helper()
	ch, err := c.Events(ctx, collection)
	if err != nil {
		tb.Fatalf("events on %s: %v", c.BaseURL, err)
	}
	l := &eventLog{keys: map[store.Key]bool{}}
	go func() {
		for ev := range ch {
			key := store.Key{Collection: ev.Collection, ID: ev.ID}
			l.mu.Lock()
			l.events = append(l.events, seenEvent{key, joinHeads(ev.Heads), time.Now()})
			l.keys[key] = true
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *eventLog) has(key store.Key) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.keys[key]
}

// snapshot returns the events logged so far.
func (l *eventLog) snapshot() []seenEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// seenAt returns when a process was first told about each of a record's
// successive states: states[k] is the k-th state's heads, and at[k] the
// arrival of the first event showing state k or a later one (an event for
// a later state also tells about every earlier change: the engine publishes
// a record's states in order and drops an older one that arrives after a
// newer, so a newer state may stand in for one the process never showed).
// A zero time means no such event. dups counts states shown more than once.
func seenAt(events []seenEvent, key store.Key, states []string) (at []time.Time, dups int) {
	index := make(map[string]int, len(states))
	for k, h := range states {
		index[h] = k
	}
	at = make([]time.Time, len(states))
	shown := map[int]int{}
	for _, ev := range events {
		if ev.key != key {
			continue
		}
		k, ok := index[ev.heads]
		if !ok {
			continue
		}
		if shown[k]++; shown[k] == 2 {
			dups++
		}
		for j := k; j >= 0 && at[j].IsZero(); j-- {
			at[j] = ev.at
		}
	}
	return at, dups
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

// testCrossProcessEvents writes changes through each process in turn and
// times their notifications on the other two, from the writer's 200.
func testCrossProcessEvents(t *testing.T, clients []*client.Client) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const col = "live"
	logs := make([]*eventLog, len(clients))
	for i, c := range clients {
		logs[i] = subscribe(ctx, t, c, col)
	}
	reps := make([]*client.Replica, mpEventRecords)
	for i := range reps {
		reps[i] = client.NewReplica(clients[0], col, fmt.Sprintf("r%d", i))
	}
	// Each record's successive states (its heads after each write), and
	// when and through which process each was acknowledged.
	type write struct {
		proc int
		at   time.Time
	}
	states := make([][]string, len(reps))
	writes := make([][]write, len(reps))
	for i := range mpEventChanges {
		j, p := i%len(reps), i%len(clients)
		r := reps[j]
		if err := r.Doc().RootMap().Set("n", int64(i)); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Doc().Commit(fmt.Sprintf("change %d", i)); err != nil {
			t.Fatal(err)
		}
		sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
		err := client.SyncAll(sctx, clients[p], []*client.Replica{r})
		scancel()
		if err != nil {
			t.Fatalf("change %d through process %d: %v", i, p, err)
		}
		states[j] = append(states[j], joinHeads(r.ServerHeads()))
		writes[j] = append(writes[j], write{p, time.Now()})
		time.Sleep(5 * time.Millisecond)
	}

	// Wait until every process has shown every record's last state.
	deadline := time.Now().Add(mpEventDeadline + 2*time.Second)
	for _, l := range logs {
		for time.Now().Before(deadline) {
			done := true
			for j, r := range reps {
				at, _ := seenAt(l.snapshot(), store.Key{Collection: col, ID: r.ID()}, states[j])
				if at[len(at)-1].IsZero() {
					done = false
					break
				}
			}
			if done {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	var lat []time.Duration
	late, missing, dups := 0, 0, 0
	for p, l := range logs {
		events := l.snapshot()
		for j, r := range reps {
			key := store.Key{Collection: col, ID: r.ID()}
			at, d := seenAt(events, key, states[j])
			dups += d
			for k, w := range writes[j] {
				if at[k].IsZero() {
					missing++
					t.Errorf("process %d: no event within %v for %s state %d, written through process %d", p, mpEventDeadline+2*time.Second, key, k, w.proc)
					continue
				}
				if p == w.proc {
					continue // its own write: published at once, not timed
				}
				d := max(at[k].Sub(w.at), 0)
				lat = append(lat, d)
				if d > mpEventDeadline {
					late++
				}
			}
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("cross-process notification latency, from the writer's 200 to the first SSE event on another process showing that change: %d changes x %d other processes = %d samples: p50 %v, p99 %v, max %v; late (>%v) %d, missing %d, states shown twice %d",
		mpEventChanges, len(clients)-1, len(lat), percentile(lat, 0.50).Round(time.Millisecond), percentile(lat, 0.99).Round(time.Millisecond),
		percentile(lat, 1).Round(time.Millisecond), mpEventDeadline, late, missing, dups)
	if late > 0 {
		t.Errorf("%d of %d notifications later than %v", late, len(lat), mpEventDeadline)
	}
	if dups > 0 {
		// Allowed by the protocol, but the engine is meant to tell each
		// state once: its own writes are not republished from the stream.
		t.Errorf("%d record states were notified more than once on some process", dups)
	}
}

// testStoreAppendEvents appends a record straight through the store
// package, as another program sharing the table would: every process
// notifies it, and serves it.
func testStoreAppendEvents(t *testing.T, clients []*client.Client, table string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const col = "ext"
	logs := make([]*eventLog, len(clients))
	for i, c := range clients {
		logs[i] = subscribe(ctx, t, c, col)
	}
	st := dynamo.New(dynamotest.Client(t), table, nil)
	defer st.Close()

	d := automerge.New()
	if err := d.RootMap().Set("from", "store"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Commit("written by another program"); err != nil {
		t.Fatal(err)
	}
	changes, err := d.Changes()
	if err != nil {
		t.Fatal(err)
	}
	raw := automerge.SaveChanges(changes)
	heads := hashStrings(d.Heads())
	key := store.Key{Collection: col, ID: "external"}
	if err := st.Append(ctx, key, store.Entry{Seq: 1, Changes: raw}, store.AppendMeta{Heads: heads, Size: int64(len(raw))}); err != nil {
		t.Fatalf("Append through the store package: %v", err)
	}
	at := time.Now()
	states := []string{joinHeads(heads)}
	for p, l := range logs {
		var seen time.Time
		for deadline := at.Add(mpEventDeadline); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if ts, _ := seenAt(l.snapshot(), key, states); !ts[0].IsZero() {
				seen = ts[0]
				break
			}
		}
		if seen.IsZero() {
			t.Errorf("process %d: no event within %v for an append made through the store package", p, mpEventDeadline)
			continue
		}
		t.Logf("process %d: event %v after the store append returned", p, seen.Sub(at).Round(time.Millisecond))
	}
	for p, c := range clients {
		rec, err := c.Get(ctx, col, key.ID)
		if err != nil {
			t.Errorf("process %d: GET %s: %v", p, key, err)
			continue
		}
		if got, want := sortedHeads(rec.Heads), heads; !slices.Equal(got, want) {
			t.Errorf("process %d: %s heads %v, want %v", p, key, got, want)
		}
		if got, want := decodeJSON(t, rec.Doc), docJSON(t, d); !jsonEqual(got, want) {
			t.Errorf("process %d: %s is %s, want %s", p, key, compact(got), compact(want))
		}
	}
}

// mpWriter is one client: replicas of the records it edits, synced through
// one process at a time (the next live one when its process fails, as a
// load balancer would).
type mpWriter struct {
	id   int
	proc atomic.Int32
	reps []*client.Replica
}

// testMultiProcessConvergence is the test: concurrent edits through
// all processes, one of them SIGKILLed midway (and restarted later); then
// every replica converges, every process serves the same, and no
// acknowledged change is lost.
func testMultiProcessConvergence(t *testing.T, bin string, procs []*proc, addrs []string, clients []*client.Client, table, endpoint string) {
	seed := seedFor(t)
	const col = "mp"
	writeFor := mpWriteFor
	switch {
	case *flagLong:
		writeFor = mpWriteForLong
	case testing.Short():
		writeFor = mpWriteFor / 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := make([]*eventLog, len(clients))
	for i, c := range clients {
		logs[i] = subscribe(ctx, t, c, col)
	}
	var alive [mpProcs]atomic.Bool
	for i := range alive {
		alive[i].Store(true)
	}

	var keys []store.Key
	for i := range mpHotRecords {
		keys = append(keys, store.Key{Collection: col, ID: fmt.Sprintf("hot%d", i)})
	}
	for i := range mpSharedRecords {
		keys = append(keys, store.Key{Collection: col, ID: fmt.Sprintf("shared%d", i)})
	}
	writers := make([]*mpWriter, mpWriters)
	own := map[store.Key]int{} // record → the process its only writer starts on
	for w := range writers {
		wr := &mpWriter{id: w}
		wr.proc.Store(int32(w % len(clients)))
		add := func(key store.Key) {
			wr.reps = append(wr.reps, client.NewReplica(clients[w%len(clients)], key.Collection, key.ID))
		}
		for i := range mpHotRecords {
			add(keys[i])
		}
		for i := range mpSharedRecords {
			if (w+i)%2 == 0 {
				add(keys[mpHotRecords+i])
			}
		}
		ownKey := store.Key{Collection: col, ID: fmt.Sprintf("own%d", w)}
		keys = append(keys, ownKey)
		own[ownKey] = w % len(clients)
		add(ownKey)
		writers[w] = wr
	}

	acks := newAckLog()
	var pushes, acked, failovers atomic.Int64
	// syncVia syncs one replica through the writer's process, recording
	// what a 200 acknowledged; on a failed request it moves the writer to
	// the next live process.
	syncVia := func(ctx context.Context, wr *mpWriter, r *client.Replica) error {
		p := int(wr.proc.Load())
		pending, err := pendingChanges(r)
		if err != nil {
			return err
		}
		sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
		err = client.SyncAll(sctx, clients[p], []*client.Replica{r})
		scancel()
		var ce *client.Error
		switch {
		case err == nil:
			acks.add(store.Key{Collection: r.Collection(), ID: r.ID()}, pending)
			return nil
		case errors.As(err, &ce) && ce.Status == 0 && ce.Code != client.CodeUnavailable:
			return fmt.Errorf("writer %d via process %d: per-doc error: %w", wr.id, p, err)
		default:
			// Connection refused or reset (the process died), or 503: the
			// changes stay pending; go elsewhere.
			failovers.Add(1)
			for i := 1; i <= len(clients); i++ {
				if q := (p + i) % len(clients); alive[q].Load() {
					wr.proc.Store(int32(q))
					break
				}
			}
			return err
		}
	}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, wr := range writers {
		rng := rand.New(rand.NewPCG(seed, uint64(100+wr.id)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for step := 0; ; step++ {
				select {
				case <-stop:
					return
				default:
				}
				// Every record first, the writer's own one (the last) before
				// the others: only this writer creates it, and a loaded
				// machine may not get through all of them in the writing
				// window (hot records are contended, so slower; the others
				// also get written in the quiesce rounds); then at random,
				// hot records half the time.
				r := wr.reps[(step+len(wr.reps)-1)%len(wr.reps)]
				if step >= len(wr.reps) {
					r = wr.reps[rng.IntN(len(wr.reps))]
					if rng.IntN(2) == 0 {
						r = wr.reps[rng.IntN(mpHotRecords)]
					}
				}
				key := store.Key{Collection: r.Collection(), ID: r.ID()}
				for range 1 + rng.IntN(2) {
					(&replica{key: key, doc: r.Doc()}).edit(t, rng)
				}
				pushes.Add(1)
				if err := syncVia(ctx, wr, r); err == nil {
					acked.Add(1)
				} else if !isTransient(err) {
					t.Errorf("%v", err)
					return
				} else {
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}

	const victim = 1
	start := time.Now()
	time.Sleep(writeFor * 2 / 5)
	procs[victim].kill()
	alive[victim].Store(false)
	killedAt := time.Since(start)
	time.Sleep(writeFor * 3 / 10)
	procs[victim] = startDynamoProc(t, bin, addrs[victim], table, endpoint)
	alive[victim].Store(true)
	restartedAt := time.Since(start)
	time.Sleep(writeFor * 3 / 10)
	close(stop)
	wg.Wait()
	if t.Failed() {
		return
	}

	// Quiesce: every replica pushes what is pending and pulls, twice, so
	// that each has everyone's changes; each writer goes through its own
	// process (the restarted one included).
	vctx, vcancel := context.WithTimeout(ctx, 60*time.Second)
	defer vcancel()
	for round := range 2 {
		for _, wr := range writers {
			wr.proc.Store(int32(wr.id % len(clients)))
			for _, r := range wr.reps {
				var err error
				for try := 0; try < 5; try++ {
					if err = syncVia(vctx, wr, r); err == nil {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				if err != nil {
					t.Fatalf("round %d: writer %d %s/%s: %v", round, wr.id, r.Collection(), r.ID(), err)
				}
			}
		}
	}

	// Every replica of a record, and every process, shows the same heads and
	// JSON, and holds every acknowledged change.
	byKey := map[store.Key][]*client.Replica{}
	for _, wr := range writers {
		for _, r := range wr.reps {
			k := store.Key{Collection: r.Collection(), ID: r.ID()}
			byKey[k] = append(byKey[k], r)
		}
	}
	lost := 0
	for _, key := range keys {
		reps := byKey[key]
		want := sortedHeads(reps[0].Heads())
		wantJSON := docJSON(t, reps[0].Doc())
		for i, r := range reps {
			if got := sortedHeads(r.Heads()); !slices.Equal(got, want) {
				t.Errorf("%s: replica %d heads %v, replica 0 %v", key, i, got, want)
			}
			if got := docJSON(t, r.Doc()); !jsonEqual(got, wantJSON) {
				t.Errorf("%s: replica %d is %s, replica 0 %s", key, i, compact(got), compact(wantJSON))
			}
			if m := acks.missing(key, r.Doc()); len(m) > 0 {
				lost += len(m)
				t.Errorf("%s: replica %d lacks %d acknowledged changes, e.g. %s", key, i, len(m), m[0])
			}
		}
		for p, c := range clients {
			rec, err := c.Get(vctx, key.Collection, key.ID)
			if err != nil {
				t.Errorf("process %d: GET %s: %v", p, key, err)
				continue
			}
			if got := sortedHeads(rec.Heads); !slices.Equal(got, want) {
				t.Errorf("process %d: %s heads %v, replicas %v", p, key, got, want)
			}
			if got := decodeJSON(t, rec.Doc); !jsonEqual(got, wantJSON) {
				t.Errorf("process %d: %s is %s, replicas %s", p, key, compact(got), compact(wantJSON))
			}
		}
		// A fresh pull through each process holds every acknowledged change.
		for p, c := range clients {
			res, err := c.Sync(vctx, []client.Doc{{Collection: key.Collection, ID: key.ID}})
			if err != nil || len(res) != 1 || res[0].Err != nil {
				t.Errorf("process %d: fresh pull of %s: %v %+v", p, key, err, res)
				continue
			}
			d := automerge.New()
			if err := d.LoadIncremental(res[0].Changes); err != nil {
				t.Errorf("process %d: %s: LoadIncremental(pull): %v", p, key, err)
				continue
			}
			if m := acks.missing(key, d); len(m) > 0 {
				lost += len(m)
				t.Errorf("process %d: %s: a fresh pull lacks %d acknowledged changes", p, key, len(m))
			}
		}
	}

	// Under this load, the processes that stayed up were told about records
	// written only through the others.
	for p := range clients {
		if p == victim {
			continue
		}
		for key, q := range own {
			if q != p && !logs[p].has(key) {
				t.Errorf("process %d: no event for %s, written only through process %d", p, key, q)
			}
		}
	}
	t.Logf("seed %d: %d writers on %d processes for %v (process %d SIGKILLed at %v, restarted at %v): pushes %d, acked %d, failed over %d; acknowledged changes %d, lost %d",
		seed, len(writers), len(clients), writeFor, victim, killedAt.Round(time.Millisecond), restartedAt.Round(time.Millisecond),
		pushes.Load(), acked.Load(), failovers.Load(), acks.count(), lost)
}

// pendingChanges returns the changes a Sync of r will push: those after the
// server's heads of its last successful sync.
func pendingChanges(r *client.Replica) ([]*automerge.Change, error) {
	since, err := parseHashes(r.ServerHeads())
	if err != nil {
		return nil, err
	}
	return r.Doc().Changes(since...)
}

// isTransient reports whether a sync error is one a client retries
// (connection failures, 503, timeouts), as opposed to a refusal.
func isTransient(err error) bool {
	var ce *client.Error
	if errors.As(err, &ce) {
		return ce.Status != 0 || ce.Code == client.CodeUnavailable
	}
	return true
}
