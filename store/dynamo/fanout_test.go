package dynamo_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynamerge/dynamerge/store"
	"github.com/dynamerge/dynamerge/store/dynamo"
	"github.com/dynamerge/dynamerge/store/dynamo/dynamotest"
)

var fanoutProcs = flag.Int("dynamo.fanout-procs", 0, "run TestFanoutSimulation with this many in-process stores (e.g. 100; 0: 8 stores and 40 appends)")

const testSecret = "0123456789abcdef-test"

// killable is a DynamoDB client that can be cut off, like a process that
// died: every call fails afterwards, the stream's too.
type killable struct {
	dynamo.API
	streams *dynamodbstreams.Client
	dead    atomic.Bool
}

var errDead = errors.New("test: process is dead")

func newKillable(c *dynamodb.Client) *killable {
	o := c.Options()
	return &killable{API: c, streams: dynamodbstreams.New(dynamodbstreams.Options{
		Region: o.Region, Credentials: o.Credentials, BaseEndpoint: o.BaseEndpoint, HTTPClient: o.HTTPClient,
	})}
}

func (k *killable) Streams() dynamo.StreamsAPI { return killableStreams{k} }

func (k *killable) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if k.dead.Load() {
		return nil, errDead
	}
	return k.API.UpdateItem(ctx, in, o...)
}

func (k *killable) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	if k.dead.Load() {
		return nil, errDead
	}
	return k.API.Query(ctx, in, o...)
}

func (k *killable) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	if k.dead.Load() {
		return nil, errDead
	}
	return k.API.BatchWriteItem(ctx, in, o...)
}

type killableStreams struct{ k *killable }

func (s killableStreams) DescribeStream(ctx context.Context, in *dynamodbstreams.DescribeStreamInput, o ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error) {
	if s.k.dead.Load() {
		return nil, errDead
	}
	return s.k.streams.DescribeStream(ctx, in, o...)
}

func (s killableStreams) GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, o ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error) {
	if s.k.dead.Load() {
		return nil, errDead
	}
	return s.k.streams.GetShardIterator(ctx, in, o...)
}

func (s killableStreams) GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, o ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error) {
	if s.k.dead.Load() {
		return nil, errDead
	}
	return s.k.streams.GetRecords(ctx, in, o...)
}

// fanProc is one simulated process: a store in fan-out mode, its peer
// endpoint, and what its watch received (when, per record and seq).
type fanProc struct {
	s    *dynamo.Store
	api  *killable
	srv  *httptest.Server
	mu   sync.Mutex
	got  map[string]time.Time // "<key>@<seq>" → first arrival
	gaps int
	stop context.CancelFunc
	done chan struct{}
}

func fanoutOpts(url string) *dynamo.FanoutOptions {
	return &dynamo.FanoutOptions{
		URL: url, Secret: testSecret,
		LeaseTTL: 1500 * time.Millisecond, PeerRefresh: 300 * time.Millisecond, PeerTTL: 3 * time.Second,
		Stream: dynamo.StreamOptions{Describe: 2 * time.Second},
	}
}

func startFanProc(t testing.TB, client *dynamodb.Client, table string, tune func(*dynamo.FanoutOptions)) *fanProc {
	t.Helper()
	p := &fanProc{api: newKillable(client), got: map[string]time.Time{}, done: make(chan struct{})}
	var h atomic.Value
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.Load().(http.Handler).ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	opts := fanoutOpts(p.srv.URL)
	if tune != nil {
		tune(opts)
	}
	p.s = dynamo.New(p.api, table, &dynamo.Options{Fanout: opts})
	h.Store(p.s.FanoutHandler())
	ctx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	ch, err := p.s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		for c := range ch {
			now := time.Now()
			p.mu.Lock()
			if c.Gap {
				p.gaps++
			} else if k := fmt.Sprintf("%s@%d", c.Key, c.Seq); p.got[k].IsZero() {
				p.got[k] = now
			}
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() { p.close() })
	return p
}

func (p *fanProc) close() {
	p.stop()
	p.s.Close()
	<-p.done
}

func (p *fanProc) arrived(key store.Key, seq uint64) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	at, ok := p.got[fmt.Sprintf("%s@%d", key, seq)]
	return at, ok
}

// waitAll waits until every process received key@seq, and returns the
// arrival times (zero for a process that did not within d).
func waitAll(procs []*fanProc, key store.Key, seq uint64, d time.Duration) []time.Time {
	deadline := time.Now().Add(d)
	out := make([]time.Time, len(procs))
	for {
		missing := 0
		for i, p := range procs {
			if out[i].IsZero() {
				if at, ok := p.arrived(key, seq); ok {
					out[i] = at
				} else {
					missing++
				}
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			return out
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func leaseHolders(procs []*fanProc) []int {
	var held []int
	for i, p := range procs {
		st := p.s.FanoutStats()
		if st.Leases > st.LeasesLost {
			held = append(held, i)
		}
	}
	return held
}

func waitHolder(t *testing.T, procs []*fanProc, d time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		h := leaseHolders(procs)
		if len(h) == 1 {
			return h[0]
		}
		// Two holders may overlap for a moment, when one's renewal came
		// too late and the other took the lease; never for long.
		if time.Now().After(deadline) {
			t.Fatalf("not exactly one holder of the stream lease within %v: %v", d, h)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func appendOne(t testing.TB, s store.Store, key store.Key, seq uint64) {
	t.Helper()
	h := fmt.Sprintf("%s-%d", key.ID, seq)
	if err := s.Append(context.Background(), key, store.Entry{Seq: seq, Changes: []byte(h)}, store.AppendMeta{Heads: []string{h}}); err != nil {
		t.Fatal(err)
	}
}

// TestFanoutEvents runs three processes in fan-out mode on one table: one
// of them reads the stream, the others do not touch it; every append made
// through any of them reaches all three, and so does one made by a
// program that is not in fan-out mode (through the leased reader).
func TestFanoutEvents(t *testing.T) {
	dynamotest.Endpoint(t)
	client := dynamotest.Client(t)
	table := dynamotest.NewTable(t, client)
	procs := []*fanProc{}
	for range 3 {
		procs = append(procs, startFanProc(t, client, table, nil))
	}
	holder := waitHolder(t, procs, 5*time.Second)
	var lat []time.Duration
	for i := range 30 {
		key := store.Key{Collection: "fan", ID: fmt.Sprintf("r%d", i)}
		appendOne(t, procs[i%3].s, key, 1)
		start := time.Now()
		for j, at := range waitAll(procs, key, 1, 5*time.Second) {
			if at.IsZero() {
				for x, p := range procs {
					t.Logf("process %d: %+v gaps %d got %d", x, p.s.FanoutStats(), p.gaps, len(p.got))
				}
				t.Fatalf("process %d never heard of %s written through process %d (holder %d)", j, key, i%3, holder)
			}
			if j != i%3 {
				// From the writer's Append returning; the message is sent
				// as it returns, and may arrive first.
				lat = append(lat, max(at.Sub(start), 0))
			}
		}
	}
	other := dynamo.New(client, table, nil) // not in fan-out mode
	key := store.Key{Collection: "fan", ID: "other-program"}
	appendOne(t, other, key, 1)
	for j, at := range waitAll(procs, key, 1, 10*time.Second) {
		if at.IsZero() {
			t.Fatalf("process %d never heard of an append made by another program (stream lease held by %d)", j, holder)
		}
	}
	for i, p := range procs {
		st := p.s.FanoutStats()
		if i != holder && st.StreamReads != 0 {
			t.Errorf("process %d holds no lease but made %d GetRecords calls", i, st.StreamReads)
		}
		if st.Peers != 2 {
			t.Errorf("process %d knows %d peers, want 2", i, st.Peers)
		}
		if p.gaps != 0 {
			t.Errorf("process %d saw %d gaps", i, p.gaps)
		}
	}
	// What an operator sees on /metrics.
	reg := prometheus.NewRegistry()
	reg.MustRegister(procs[holder].s.Collector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			for _, l := range m.GetLabel() {
				name += "/" + l.GetValue()
			}
			got[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	if got["dynamerge_fanout_peers"] != 2 || got["dynamerge_fanout_changes_total/sent"] == 0 || got["dynamerge_fanout_stream_reads_total"] == 0 ||
		got["dynamerge_fanout_leases_total/taken"] != 1 || got["dynamerge_dynamodb_write_units_total/fanout"] == 0 {
		t.Errorf("metrics of the lease holder: %v", got)
	}
	slices.Sort(lat)
	t.Logf("3 processes, %d cross-process deliveries: p50 %v, p99 %v, max %v", len(lat), lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
}

// TestFanoutLeaseTakeover kills the process that reads the stream (its
// calls fail from then on, so it can neither renew nor give up its lease):
// the other takes the lease over once it lapses and resumes from the
// checkpoint, so an append another program made while nobody read the
// stream still arrives.
func TestFanoutLeaseTakeover(t *testing.T) {
	dynamotest.Endpoint(t)
	client := dynamotest.Client(t)
	table := dynamotest.NewTable(t, client)
	procs := []*fanProc{startFanProc(t, client, table, nil), startFanProc(t, client, table, nil)}
	holder := waitHolder(t, procs, 5*time.Second)
	survivor := procs[1-holder]
	other := dynamo.New(client, table, nil)
	before := store.Key{Collection: "fan", ID: "before"}
	appendOne(t, other, before, 1)
	if at := waitAll([]*fanProc{survivor}, before, 1, 5*time.Second); at[0].IsZero() {
		t.Fatal("an append by another program did not arrive through the stream lease holder")
	}
	time.Sleep(600 * time.Millisecond) // a renewal carries the checkpoint past it

	killedAt := time.Now()
	procs[holder].api.dead.Store(true)
	during := store.Key{Collection: "fan", ID: "during"}
	appendOne(t, other, during, 1) // nobody reads the stream now
	at := waitAll([]*fanProc{survivor}, during, 1, 10*time.Second)[0]
	if at.IsZero() {
		t.Fatal("an append made while the lease holder was dead never arrived: the lease was not taken over, or not from the checkpoint")
	}
	if st := survivor.s.FanoutStats(); st.Leases != 1 {
		t.Errorf("survivor took %d leases, want 1", st.Leases)
	}
	// The dead one stops reading once it cannot renew.
	deadline := time.Now().Add(5 * time.Second)
	for st := procs[holder].s.FanoutStats(); st.LeasesLost == 0; st = procs[holder].s.FanoutStats() {
		if time.Now().After(deadline) {
			t.Fatal("the dead lease holder kept reading")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("takeover: the append made after the holder died arrived %v after its death (lease TTL 1.5 s)", at.Sub(killedAt).Round(time.Millisecond))
}

// TestFanoutOptions: Watch refuses fan-out options that cannot work, by
// name, before touching the table.
func TestFanoutOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts dynamo.FanoutOptions
		want string
	}{
		{"no URL", dynamo.FanoutOptions{Secret: testSecret}, "URL"},
		{"short secret", dynamo.FanoutOptions{URL: "http://127.0.0.1:1", Secret: "short"}, "Secret"},
		{"too many leases", dynamo.FanoutOptions{URL: "http://127.0.0.1:1", Secret: testSecret, Leases: 9}, "Leases"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := dynamo.New(nil, "never-reached", &dynamo.Options{Fanout: &tc.opts})
			if _, err := s.Watch(context.Background()); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Watch()=%v, want an error naming %s", err, tc.want)
			}
		})
	}
}

// TestFanoutHandler checks the peer endpoint's refusals and its gap
// detection.
func TestFanoutHandler(t *testing.T) {
	dynamotest.Endpoint(t)
	client := dynamotest.Client(t)
	table := dynamotest.NewTable(t, client, dynamotest.WithoutStream)
	p := startFanProc(t, client, table, func(o *dynamo.FanoutOptions) { o.Leases = 1 })
	post := func(secret, body string) int {
		req, _ := http.NewRequest(http.MethodPost, p.srv.URL+dynamo.PeerPath, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name, secret, body string
		want               int
	}{
		{"wrong secret", "not-the-secret-at-all", `{"from":"x","n":1,"changes":[]}`, 401},
		{"not json", testSecret, `{`, 400},
		{"no sender", testSecret, `{"n":1,"changes":[]}`, 400},
		{"bad key", testSecret, `{"from":"x","n":1,"changes":[{"c":"Bad/","i":"a","s":1}]}`, 400},
		{"seq zero", testSecret, `{"from":"x","n":1,"changes":[{"c":"c","i":"a","s":0}]}`, 400},
		{"first batch", testSecret, `{"from":"x","n":1,"changes":[{"c":"c","i":"a","s":1,"h":["a"]}]}`, 204},
		{"resent batch", testSecret, `{"from":"x","n":1,"changes":[{"c":"c","i":"a","s":1,"h":["a"]}]}`, 204},
		{"skipped batch", testSecret, `{"from":"x","n":3,"changes":[{"c":"c","i":"b","s":1,"h":["b"]}]}`, 204},
		{"older seq", testSecret, `{"from":"x","n":4,"changes":[{"c":"c","i":"b","s":2,"h":["b"]},{"c":"c","i":"b","s":1,"h":["b"]}]}`, 204},
	} {
		if got := post(tc.secret, tc.body); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	time.Sleep(100 * time.Millisecond)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gaps != 1 {
		t.Errorf("%d gaps after a skipped batch, want 1", p.gaps)
	}
	if len(p.got) != 3 {
		t.Errorf("received %v, want c/a@1, c/b@1, c/b@2", p.got)
	}
}

// TestFanoutSimulation runs -dynamo.fanout-procs stores in fan-out mode on
// one table (in this process, each with its own peer endpoint), appends
// through them in turn, and reports cross-process event latency and the
// stream reads per second (one leased reader whatever the count).
//
//	go test ./store/dynamo -run TestFanoutSimulation -dynamo.fanout-procs 100 -v
//
// Without the flag it runs 8 processes and 40 appends, so that every
// make test checks that none of the deliveries goes missing.
func TestFanoutSimulation(t *testing.T) {
	n, appends := *fanoutProcs, 100
	if n == 0 {
		if testing.Short() {
			t.Skip("a simulation of 8 processes (-dynamo.fanout-procs N for more)")
		}
		n, appends = 8, 40
	}
	dynamotest.Endpoint(t)
	client := dynamotest.Client(t)
	table := dynamotest.NewTable(t, client)
	procs := make([]*fanProc, n)
	var wg sync.WaitGroup
	for i := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			procs[i] = startFanProc(t, client, table, func(o *dynamo.FanoutOptions) {
				o.PeerRefresh, o.PeerTTL, o.LeaseTTL = 2*time.Second, 30*time.Second, dynamo.DefaultLeaseTTL
				o.Client = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			})
		}()
	}
	wg.Wait()
	waitHolder(t, procs, 10*time.Second)
	readsBefore := uint64(0)
	for _, p := range procs {
		readsBefore += p.s.FanoutStats().StreamReads
	}
	start := time.Now()
	var lat, writes []time.Duration
	missing := 0
	for i := range appends {
		key := store.Key{Collection: "sim", ID: fmt.Sprintf("r%d", i)}
		w := i % n
		t0 := time.Now()
		appendOne(t, procs[w].s, key, 1)
		t1 := time.Now()
		writes = append(writes, t1.Sub(t0))
		for j, at := range waitAll(procs, key, 1, 5*time.Second) {
			switch {
			case j == w:
			case at.IsZero():
				missing++
			default:
				// From the writer's Append returning (the message may
				// even arrive before that: it is sent as the write
				// returns).
				lat = append(lat, max(at.Sub(t1), 0))
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	elapsed := time.Since(start)
	reads := uint64(0)
	for _, p := range procs {
		reads += p.s.FanoutStats().StreamReads
	}
	slices.Sort(lat)
	slices.Sort(writes)
	late := 0
	for _, d := range lat {
		if d > 250*time.Millisecond {
			late++
		}
	}
	t.Logf("%d processes, %d appends in %v (Append p50 %v, max %v), %d cross-process deliveries (%d missing after 5 s, %d over 250 ms): p50 %v, p99 %v, max %v; stream GetRecords %.1f/s over all processes; holders %v",
		n, appends, elapsed.Round(time.Millisecond), writes[len(writes)/2], writes[len(writes)-1], len(lat), missing, late, lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1],
		float64(reads-readsBefore)/elapsed.Seconds(), leaseHolders(procs))
	if missing > 0 {
		t.Errorf("%d deliveries missing", missing)
	}
}

// TestFanoutLeaseHandOver: a lease holder that shuts down (Close) lets its
// lease lapse at once, so another process takes over well before the TTL,
// from its checkpoint.
func TestFanoutLeaseHandOver(t *testing.T) {
	dynamotest.Endpoint(t)
	client := dynamotest.Client(t)
	table := dynamotest.NewTable(t, client)
	slow := func(o *dynamo.FanoutOptions) { o.LeaseTTL = 6 * time.Second }
	procs := []*fanProc{startFanProc(t, client, table, slow), startFanProc(t, client, table, slow)}
	holder := waitHolder(t, procs, 10*time.Second)
	survivor := procs[1-holder]
	other := dynamo.New(client, table, nil)
	appendOne(t, other, store.Key{Collection: "fan", ID: "before"}, 1)
	waitAll([]*fanProc{survivor}, store.Key{Collection: "fan", ID: "before"}, 1, 5*time.Second)
	time.Sleep(2100 * time.Millisecond) // a renewal (every 2 s) saves the checkpoint

	closedAt := time.Now()
	procs[holder].close()
	key := store.Key{Collection: "fan", ID: "after-close"}
	appendOne(t, other, key, 1)
	at := waitAll([]*fanProc{survivor}, key, 1, 10*time.Second)[0]
	if at.IsZero() {
		t.Fatal("an append made after the lease holder closed never arrived")
	}
	if d := at.Sub(closedAt); d > 4*time.Second {
		t.Errorf("took %v to take over a lease given up on Close (TTL 6 s, renewals every 2 s)", d)
	}
	t.Logf("hand-over on Close: %v", at.Sub(closedAt).Round(time.Millisecond))
}

// TestFanoutTwoLeases: with Leases 2, two of three processes read the
// stream (each at most every 400 ms per shard, so together within the five
// reads per second), and an append by another program still arrives
// everywhere.
func TestFanoutTwoLeases(t *testing.T) {
	dynamotest.Endpoint(t)
	client := dynamotest.Client(t)
	table := dynamotest.NewTable(t, client)
	two := func(o *dynamo.FanoutOptions) { o.Leases = 2 }
	procs := []*fanProc{startFanProc(t, client, table, two), startFanProc(t, client, table, two), startFanProc(t, client, table, two)}
	deadline := time.Now().Add(5 * time.Second)
	for len(leaseHolders(procs)) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("holders %v, want two", leaseHolders(procs))
		}
		time.Sleep(20 * time.Millisecond)
	}
	key := store.Key{Collection: "fan", ID: "two"}
	appendOne(t, dynamo.New(client, table, nil), key, 1)
	for j, at := range waitAll(procs, key, 1, 5*time.Second) {
		if at.IsZero() {
			t.Fatalf("process %d never heard of an append by another program", j)
		}
	}
	start := time.Now()
	reads := func() (n uint64) {
		for _, p := range procs {
			n += p.s.FanoutStats().StreamReads
		}
		return n
	}
	before := reads()
	time.Sleep(2 * time.Second)
	perSecond := float64(reads()-before) / time.Since(start).Seconds()
	// DynamoDB Local's stream has one or two shards here; two readers at
	// 2.5 reads a second each per shard.
	if perSecond > 10.5 {
		t.Errorf("%.1f GetRecords a second from two readers: more than 5 per shard", perSecond)
	}
	t.Logf("two leased readers: %.1f GetRecords/s in all", perSecond)
}
