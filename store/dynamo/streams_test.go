package dynamo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/dynamerge/dynamerge/internal/testlog"
	"github.com/dynamerge/dynamerge/store"
)

// fakeStream is an in-memory DynamoDB Stream with the behaviours DynamoDB
// Local does not show on demand: shards that close and have children,
// expired iterators, trimmed records, throttling.
type fakeStream struct {
	mu     sync.Mutex
	arn    string
	shards []*fakeShard
	seq    int // last sequence number handed out

	// Fault injection, consumed by the next matching calls.
	expireNext   int // GetRecords answers ExpiredIteratorException
	throttleNext int // GetRecords answers LimitExceededException
	describeFail int // DescribeStream fails

	// Accounting.
	inflight, maxInflight int
	getRecords            int
	iterTypes             []types.ShardIteratorType
}

type fakeShard struct {
	id, parent string
	records    []types.Record
	closed     bool
	trimmed    int // records[:trimmed] are gone
}

var _ StreamsAPI = (*fakeStream)(nil)

func (f *fakeStream) shard(id string) *fakeShard {
	for _, s := range f.shards {
		if s.id == id {
			return s
		}
	}
	return nil
}

// addShard adds an open shard.
func (f *fakeStream) addShard(id, parent string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shards = append(f.shards, &fakeShard{id: id, parent: parent})
}

// closeShard closes a shard: it takes no more records.
func (f *fakeStream) closeShard(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shard(id).closed = true
}

// put appends a record to a shard.
func (f *fakeStream) put(id string, rec types.Record) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.shard(id)
	if s.closed {
		panic("put on closed shard " + id)
	}
	f.seq++
	sn := fmt.Sprintf("%021d", f.seq)
	d := *rec.Dynamodb
	d.SequenceNumber = &sn
	rec.Dynamodb = &d
	s.records = append(s.records, rec)
}

// trim drops the first n records of a shard.
func (f *fakeStream) trim(id string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shard(id).trimmed = n
}

func (f *fakeStream) DescribeStream(ctx context.Context, in *dynamodbstreams.DescribeStreamInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.describeFail > 0 {
		f.describeFail--
		return nil, &types.InternalServerError{Message: str("injected")}
	}
	if *in.StreamArn != f.arn {
		return nil, &types.ResourceNotFoundException{Message: str("no stream " + *in.StreamArn)}
	}
	// Pages of two shards, to exercise paging.
	start := 0
	if in.ExclusiveStartShardId != nil {
		for i, s := range f.shards {
			if s.id == *in.ExclusiveStartShardId {
				start = i + 1
			}
		}
	}
	end := min(start+2, len(f.shards))
	d := &types.StreamDescription{StreamArn: &f.arn, StreamStatus: types.StreamStatusEnabled}
	for _, s := range f.shards[start:end] {
		sh := types.Shard{ShardId: str(s.id), SequenceNumberRange: &types.SequenceNumberRange{}}
		if s.parent != "" {
			sh.ParentShardId = str(s.parent)
		}
		if s.closed {
			sh.SequenceNumberRange.EndingSequenceNumber = str("x")
		}
		d.Shards = append(d.Shards, sh)
	}
	if end < len(f.shards) {
		d.LastEvaluatedShardId = str(f.shards[end-1].id)
	}
	return &dynamodbstreams.DescribeStreamOutput{StreamDescription: d}, nil
}

// Iterators are "<arn>|<shard>|<position>".
func (f *fakeStream) GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.iterTypes = append(f.iterTypes, in.ShardIteratorType)
	s := f.shard(*in.ShardId)
	if *in.StreamArn != f.arn || s == nil {
		return nil, &types.ResourceNotFoundException{Message: str("no shard")}
	}
	var pos int
	switch in.ShardIteratorType {
	case types.ShardIteratorTypeLatest:
		pos = len(s.records)
	case types.ShardIteratorTypeTrimHorizon:
		pos = s.trimmed
	case types.ShardIteratorTypeAfterSequenceNumber:
		pos = -1
		for i, r := range s.records {
			if *r.Dynamodb.SequenceNumber == *in.SequenceNumber {
				pos = i + 1
			}
		}
		if pos < 0 {
			return nil, fmt.Errorf("fake: unknown sequence number %s", *in.SequenceNumber)
		}
		if pos < s.trimmed {
			return nil, &types.TrimmedDataAccessException{Message: str("trimmed")}
		}
	default:
		return nil, fmt.Errorf("fake: iterator type %s", in.ShardIteratorType)
	}
	if s.closed && pos >= len(s.records) {
		return &dynamodbstreams.GetShardIteratorOutput{}, nil
	}
	return &dynamodbstreams.GetShardIteratorOutput{ShardIterator: str(fmt.Sprintf("%s|%s|%d", f.arn, s.id, pos))}, nil
}

func (f *fakeStream) GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error) {
	f.mu.Lock()
	f.getRecords++
	f.inflight++
	f.maxInflight = max(f.maxInflight, f.inflight)
	f.mu.Unlock()
	// Let concurrent calls overlap, so that the bound on them is tested.
	time.Sleep(time.Millisecond)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inflight--
	if f.throttleNext > 0 {
		f.throttleNext--
		return nil, &types.LimitExceededException{Message: str("injected throttling")}
	}
	if f.expireNext > 0 {
		f.expireNext--
		return nil, &types.ExpiredIteratorException{Message: str("injected expiry")}
	}
	parts := strings.Split(*in.ShardIterator, "|")
	if len(parts) != 3 || parts[0] != f.arn {
		return nil, &types.ResourceNotFoundException{Message: str("bad iterator")}
	}
	s := f.shard(parts[1])
	pos, _ := strconv.Atoi(parts[2])
	if pos < s.trimmed {
		return nil, &types.TrimmedDataAccessException{Message: str("trimmed")}
	}
	end := min(len(s.records), pos+int(*in.Limit), pos+3) // small pages
	out := &dynamodbstreams.GetRecordsOutput{Records: slices.Clone(s.records[pos:end])}
	if !s.closed || end < len(s.records) {
		out.NextShardIterator = str(fmt.Sprintf("%s|%s|%d", f.arn, s.id, end))
	}
	return out, nil
}

func str(s string) *string { return &s }

// fakeTable is the DynamoDB side of the fake: DescribeTable tells the
// stream, and it hands out the fake stream as its Streams client.
type fakeTable struct {
	API      // nil: other calls panic, which is what a test of Watch wants
	streams  *fakeStream
	viewType ddbtypes.StreamViewType // "" for no stream
}

func (t *fakeTable) Streams() StreamsAPI { return t.streams }

func (t *fakeTable) DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	td := &ddbtypes.TableDescription{TableName: in.TableName, TableStatus: ddbtypes.TableStatusActive}
	if t.viewType != "" {
		t.streams.mu.Lock()
		td.LatestStreamArn = str(t.streams.arn)
		t.streams.mu.Unlock()
		enabled := true
		td.StreamSpecification = &ddbtypes.StreamSpecification{StreamEnabled: &enabled, StreamViewType: t.viewType}
	}
	return &dynamodb.DescribeTableOutput{Table: td}, nil
}

// metaRecord is the stream record of an Append of key at seq. With oldSeq
// > 0 it is a MODIFY carrying the old image too.
func metaRecord(key store.Key, seq, oldSeq uint64, heads ...string) types.Record {
	img := func(seq uint64) map[string]types.AttributeValue {
		hs := make([]types.AttributeValue, len(heads))
		for i, h := range heads {
			hs[i] = &types.AttributeValueMemberS{Value: h}
		}
		return map[string]types.AttributeValue{
			AttrPK:         &types.AttributeValueMemberS{Value: pk(key)},
			AttrSK:         &types.AttributeValueMemberS{Value: SKMeta},
			AttrCollection: &types.AttributeValueMemberS{Value: key.Collection},
			AttrID:         &types.AttributeValueMemberS{Value: key.ID},
			AttrSeq:        &types.AttributeValueMemberN{Value: strconv.FormatUint(seq, 10)},
			AttrHeads:      &types.AttributeValueMemberL{Value: hs},
		}
	}
	rec := types.Record{
		EventName: types.OperationTypeInsert,
		Dynamodb: &types.StreamRecord{
			Keys: map[string]types.AttributeValue{
				AttrPK: &types.AttributeValueMemberS{Value: pk(key)},
				AttrSK: &types.AttributeValueMemberS{Value: SKMeta},
			},
			NewImage: img(seq),
		},
	}
	if oldSeq > 0 {
		rec.EventName = types.OperationTypeModify
		rec.Dynamodb.OldImage = img(oldSeq)
	}
	return rec
}

// logRecord is the stream record of a log item, which Watch ignores.
func logRecord(key store.Key, seq uint64) types.Record {
	return types.Record{
		EventName: types.OperationTypeInsert,
		Dynamodb: &types.StreamRecord{
			Keys: map[string]types.AttributeValue{
				AttrPK: &types.AttributeValueMemberS{Value: pk(key)},
				AttrSK: &types.AttributeValueMemberS{Value: logSK(seq, 0)},
			},
			NewImage: map[string]types.AttributeValue{AttrData: &types.AttributeValueMemberB{Value: []byte("x")}},
		},
	}
}

func quiet() *slog.Logger { return testlog.New() }

// fastStream are reader settings for tests: quick polls.
var fastStream = StreamOptions{Poll: 10 * time.Millisecond, Describe: 50 * time.Millisecond, Readers: 2}

func newFakeWatch(tb testing.TB, f *fakeStream, opts StreamOptions) (*Store, <-chan store.Change, context.CancelFunc) {
	tb.Helper()
	st := New(&fakeTable{streams: f, viewType: ddbtypes.StreamViewTypeNewImage}, "t", nil)
	ctx, cancel := context.WithCancel(context.Background())
	if opts.Logger == nil {
		opts.Logger = quiet()
	}
	ch, err := st.WatchWith(ctx, opts)
	if err != nil {
		cancel()
		tb.Fatalf("WatchWith: %v", err)
	}
	tb.Cleanup(func() {
		cancel()
		for range ch {
		}
	})
	return st, ch, cancel
}

// collect receives changes until n non-gap ones arrived (and returns the
// gaps seen), failing after d.
func collect(tb testing.TB, ch <-chan store.Change, n int, d time.Duration) (got []store.Change, gaps int) {
	tb.Helper()
	deadline := time.After(d)
	for len(got) < n {
		select {
		case c, ok := <-ch:
			if !ok {
				tb.Fatalf("channel closed after %d of %d changes", len(got), n)
			}
			if c.Gap {
				gaps++
				continue
			}
			got = append(got, c)
		case <-deadline:
			tb.Fatalf("%d of %d changes after %v: %+v", len(got), n, d, got)
		}
	}
	return got, gaps
}

// quietFor fails when a change arrives within d.
func quietFor(tb testing.TB, ch <-chan store.Change, d time.Duration) {
	tb.Helper()
	select {
	case c := <-ch:
		tb.Errorf("unexpected change %+v", c)
	case <-time.After(d):
	}
}

var (
	keyA = store.Key{Collection: "todos", ID: "a"}
	keyB = store.Key{Collection: "todos", ID: "b"}
)

func seqsOf(cs []store.Change, key store.Key) []uint64 {
	var out []uint64
	for _, c := range cs {
		if c.Key == key {
			out = append(out, c.Seq)
		}
	}
	return out
}

func TestChangeOf(t *testing.T) {
	h := strings.Repeat("ab", 32)
	noNew := metaRecord(keyA, 1, 0, h)
	noNew.Dynamodb.NewImage = nil
	badSeq := metaRecord(keyA, 1, 0, h)
	badSeq.Dynamodb.NewImage[AttrSeq] = &types.AttributeValueMemberS{Value: "1"}
	badKey := metaRecord(store.Key{Collection: "Todos", ID: "a"}, 1, 0, h)
	badHeads := metaRecord(keyA, 1, 0, h)
	badHeads.Dynamodb.NewImage[AttrHeads] = &types.AttributeValueMemberSS{Value: []string{h}}
	noHeads := metaRecord(keyA, 1, 0)
	delete(noHeads.Dynamodb.NewImage, AttrHeads)
	removed := metaRecord(keyA, 1, 0, h)
	removed.EventName = types.OperationTypeRemove
	for _, tc := range []struct {
		name    string
		rec     types.Record
		want    store.Change
		ok, err bool
	}{
		{"insert", metaRecord(keyA, 1, 0, h), store.Change{Key: keyA, Seq: 1, Heads: []string{h}}, true, false},
		{"append", metaRecord(keyA, 7, 6, h, h), store.Change{Key: keyA, Seq: 7, Heads: []string{h, h}}, true, false},
		{"snapshot saved", metaRecord(keyA, 7, 7, h), store.Change{}, false, false},
		{"log item", logRecord(keyA, 1), store.Change{}, false, false},
		{"removed", removed, store.Change{}, false, false},
		{"no heads", noHeads, store.Change{Key: keyA, Seq: 1}, true, false},
		{"keys only", noNew, store.Change{}, false, true},
		{"seq not a number", badSeq, store.Change{}, false, true},
		{"invalid key", badKey, store.Change{}, false, true},
		{"heads not a list", badHeads, store.Change{}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ok, err := changeOf(tc.rec)
			if (err != nil) != tc.err {
				t.Fatalf("changeOf() error = %v, want error %v", err, tc.err)
			}
			if ok != tc.ok {
				t.Fatalf("changeOf() ok = %v, want %v", ok, tc.ok)
			}
			if c.Key != tc.want.Key || c.Seq != tc.want.Seq || !slices.Equal(c.Heads, tc.want.Heads) || c.Gap {
				t.Errorf("changeOf() = %+v, want %+v", c, tc.want)
			}
		})
	}
}

func TestWatchStartsAtLatest(t *testing.T) {
	f := &fakeStream{arn: "arn:1"}
	f.addShard("s1", "")
	f.addShard("old", "")
	f.put("old", metaRecord(keyA, 1, 0))
	f.closeShard("old")
	f.put("s1", metaRecord(keyA, 2, 1)) // before Watch: not reported
	_, ch, _ := newFakeWatch(t, f, fastStream)
	f.put("s1", logRecord(keyA, 3))
	f.put("s1", metaRecord(keyA, 3, 2, "h3"))
	f.put("s1", metaRecord(keyA, 3, 3, "h3")) // SaveSnapshot: not news
	f.put("s1", metaRecord(keyB, 1, 0, "b1"))
	got, gaps := collect(t, ch, 2, 5*time.Second)
	if gaps != 0 {
		t.Errorf("%d gaps, want 0", gaps)
	}
	if got[0].Key != keyA || got[0].Seq != 3 || !slices.Equal(got[0].Heads, []string{"h3"}) {
		t.Errorf("first change %+v, want %s seq 3 heads [h3]", got[0], keyA)
	}
	if got[1].Key != keyB || got[1].Seq != 1 {
		t.Errorf("second change %+v, want %s seq 1", got[1], keyB)
	}
	quietFor(t, ch, 100*time.Millisecond)
}

func TestWatchShardRollover(t *testing.T) {
	// A shard closes and splits in two; the children hold later changes of
	// the same records. Nothing is lost and each record keeps its order,
	// because the children are read only once the parent is drained.
	f := &fakeStream{arn: "arn:1"}
	f.addShard("p", "")
	_, ch, _ := newFakeWatch(t, f, fastStream)
	for seq := uint64(1); seq <= 5; seq++ {
		f.put("p", metaRecord(keyA, seq, seq-1))
		f.put("p", metaRecord(keyB, seq, seq-1))
	}
	f.closeShard("p")
	f.addShard("c1", "p")
	f.addShard("c2", "p")
	for seq := uint64(6); seq <= 10; seq++ {
		f.put("c1", metaRecord(keyA, seq, seq-1))
		f.put("c2", metaRecord(keyB, seq, seq-1))
	}
	// And a grandchild after c1 closes.
	f.closeShard("c1")
	f.addShard("g", "c1")
	f.put("g", metaRecord(keyA, 11, 10))
	got, gaps := collect(t, ch, 21, 5*time.Second)
	if gaps != 0 {
		t.Errorf("%d gaps, want 0", gaps)
	}
	want := func(n uint64) []uint64 {
		var s []uint64
		for i := uint64(1); i <= n; i++ {
			s = append(s, i)
		}
		return s
	}
	if got, want := seqsOf(got, keyA), want(11); !slices.Equal(got, want) {
		t.Errorf("seqs of %s = %v, want %v", keyA, got, want)
	}
	if got, want := seqsOf(got, keyB), want(10); !slices.Equal(got, want) {
		t.Errorf("seqs of %s = %v, want %v", keyB, got, want)
	}
	quietFor(t, ch, 100*time.Millisecond)
}

func TestWatchExpiredIterator(t *testing.T) {
	f := &fakeStream{arn: "arn:1"}
	f.addShard("s", "")
	_, ch, _ := newFakeWatch(t, f, fastStream)
	f.put("s", metaRecord(keyA, 1, 0))
	collect(t, ch, 1, 5*time.Second)
	// The iterator expires: the reader resumes after the last record it
	// delivered, so the next ones arrive once and no gap is reported.
	f.mu.Lock()
	f.expireNext = 1
	f.mu.Unlock()
	f.put("s", metaRecord(keyA, 2, 1))
	f.put("s", metaRecord(keyA, 3, 2))
	got, gaps := collect(t, ch, 2, 5*time.Second)
	if gaps != 0 {
		t.Errorf("%d gaps after an expired iterator with a known position, want 0", gaps)
	}
	if s := seqsOf(got, keyA); !slices.Equal(s, []uint64{2, 3}) {
		t.Errorf("seqs %v, want [2 3]", s)
	}
	f.mu.Lock()
	types := slices.Clone(f.iterTypes)
	f.mu.Unlock()
	if !slices.Contains(types, "AFTER_SEQUENCE_NUMBER") {
		t.Errorf("iterator types %v: the expired one was not replaced after the last sequence number", types)
	}
	quietFor(t, ch, 100*time.Millisecond)
}

func TestWatchExpiredBeforeAnyRecordIsAGap(t *testing.T) {
	f := &fakeStream{arn: "arn:1"}
	f.addShard("s", "")
	f.mu.Lock()
	f.expireNext = 1
	f.mu.Unlock()
	_, ch, _ := newFakeWatch(t, f, fastStream)
	select {
	case c := <-ch:
		if !c.Gap {
			t.Fatalf("got %+v, want a gap", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no gap reported for an iterator lost before its first record")
	}
	// Records written once it stands at the new LATEST are reported.
	for deadline := time.Now().Add(5 * time.Second); ; {
		f.mu.Lock()
		n := len(f.iterTypes)
		f.mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no new iterator taken after the expiry")
		}
		time.Sleep(time.Millisecond)
	}
	f.put("s", metaRecord(keyA, 1, 0))
	collect(t, ch, 1, 5*time.Second)
}

func TestWatchTrimmed(t *testing.T) {
	f := &fakeStream{arn: "arn:1"}
	f.addShard("s", "")
	_, ch, _ := newFakeWatch(t, f, fastStream)
	f.put("s", metaRecord(keyA, 1, 0))
	collect(t, ch, 1, 5*time.Second)
	// The reader stalls (throttled) while records age out of the stream.
	f.mu.Lock()
	f.throttleNext = 1 << 30
	f.mu.Unlock()
	time.Sleep(50 * time.Millisecond)
	f.put("s", metaRecord(keyA, 2, 1))
	f.put("s", metaRecord(keyA, 3, 2))
	f.trim("s", 2) // seq 1 and 2 are gone; 3 is left
	f.mu.Lock()
	f.throttleNext = 0
	f.expireNext = 1 // its iterator expired meanwhile too
	f.mu.Unlock()
	got, gaps := collect(t, ch, 1, 5*time.Second)
	if gaps != 1 {
		t.Errorf("%d gaps, want 1", gaps)
	}
	if got[0].Seq != 3 {
		t.Errorf("after the gap got %+v, want seq 3", got[0])
	}
}

func TestWatchThrottledAndFailing(t *testing.T) {
	f := &fakeStream{arn: "arn:1"}
	f.addShard("s", "")
	_, ch, _ := newFakeWatch(t, f, fastStream)
	f.mu.Lock()
	f.throttleNext = 3
	f.describeFail = 2
	f.mu.Unlock()
	for seq := uint64(1); seq <= 4; seq++ {
		f.put("s", metaRecord(keyA, seq, seq-1))
	}
	got, gaps := collect(t, ch, 4, 10*time.Second)
	if gaps != 0 {
		t.Errorf("%d gaps, want 0", gaps)
	}
	if s := seqsOf(got, keyA); !slices.Equal(s, []uint64{1, 2, 3, 4}) {
		t.Errorf("seqs %v, want [1 2 3 4]", s)
	}
}

func TestWatchBoundsReaders(t *testing.T) {
	f := &fakeStream{arn: "arn:1"}
	const shards = 20
	for i := range shards {
		f.addShard(fmt.Sprintf("s%02d", i), "")
	}
	_, ch, _ := newFakeWatch(t, f, StreamOptions{Poll: time.Millisecond, Describe: time.Second, Readers: 3})
	for i := range shards {
		f.put(fmt.Sprintf("s%02d", i), metaRecord(store.Key{Collection: "c", ID: fmt.Sprint(i)}, 1, 0))
	}
	collect(t, ch, shards, 5*time.Second)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.maxInflight > 3 {
		t.Errorf("%d GetRecords calls at once, want at most 3", f.maxInflight)
	}
	if f.maxInflight < 2 {
		t.Errorf("at most %d GetRecords call at once: polls do not overlap", f.maxInflight)
	}
}

func TestWatchStreamReplaced(t *testing.T) {
	f := &fakeStream{arn: "arn:1"}
	f.addShard("s", "")
	_, ch, _ := newFakeWatch(t, f, fastStream)
	f.put("s", metaRecord(keyA, 1, 0))
	collect(t, ch, 1, 5*time.Second)
	// Streams disabled and enabled again: a new ARN, new shards.
	f.mu.Lock()
	f.arn = "arn:2"
	f.shards = nil
	f.mu.Unlock()
	f.addShard("n", "")
	f.put("n", metaRecord(keyA, 2, 1))
	got, gaps := collect(t, ch, 1, 5*time.Second)
	if gaps != 1 {
		t.Errorf("%d gaps, want 1", gaps)
	}
	if got[0].Seq != 2 {
		t.Errorf("got %+v, want seq 2 from the new stream", got[0])
	}
}

func TestWatchEnds(t *testing.T) {
	t.Run("context", func(t *testing.T) {
		f := &fakeStream{arn: "arn:1"}
		f.addShard("s", "")
		_, ch, cancel := newFakeWatch(t, f, fastStream)
		cancel()
		waitClosed(t, ch)
	})
	t.Run("store closed", func(t *testing.T) {
		f := &fakeStream{arn: "arn:1"}
		f.addShard("s", "")
		st, ch, _ := newFakeWatch(t, f, fastStream)
		st.Close()
		waitClosed(t, ch)
		if _, err := st.Watch(context.Background()); !errors.Is(err, ErrClosed) {
			t.Errorf("Watch after Close: %v, want ErrClosed", err)
		}
	})
	t.Run("consumer gone", func(t *testing.T) {
		// Nobody receives; cancelling must still stop the readers blocked
		// on delivery.
		f := &fakeStream{arn: "arn:1"}
		f.addShard("s", "")
		_, ch, cancel := newFakeWatch(t, f, fastStream)
		for seq := uint64(1); seq <= streamChangeBuffer+10; seq++ {
			f.put("s", metaRecord(keyA, seq, seq-1))
		}
		time.Sleep(100 * time.Millisecond)
		cancel()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case _, ok := <-ch:
				if !ok {
					return
				}
			case <-deadline:
				t.Fatal("channel not closed 5s after cancel")
			}
		}
	})
}

func waitClosed(tb testing.TB, ch <-chan store.Change) {
	tb.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			tb.Fatal("channel not closed within 5s")
		}
	}
}

func TestWatchNeedsNewImages(t *testing.T) {
	for _, tc := range []struct {
		name string
		view ddbtypes.StreamViewType
		want string
	}{
		{"no stream", "", "no DynamoDB Stream"},
		{"keys only", ddbtypes.StreamViewTypeKeysOnly, "NEW_IMAGE"},
		{"old image", ddbtypes.StreamViewTypeOldImage, "NEW_IMAGE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeStream{arn: "arn:1"}
			st := New(&fakeTable{streams: f, viewType: tc.view}, "t", nil)
			_, err := st.Watch(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Watch() error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	t.Run("no streams client", func(t *testing.T) {
		st := New(struct{ API }{}, "t", nil)
		if _, err := st.Watch(context.Background()); err == nil || !strings.Contains(err.Error(), "StreamsProvider") {
			t.Errorf("Watch() error = %v, want one about the missing Streams client", err)
		}
	})
}
