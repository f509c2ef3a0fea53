package dynamo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/dynamerge/dynamerge/store"
	"github.com/dynamerge/dynamerge/store/dynamo"
	"github.com/dynamerge/dynamerge/store/dynamo/dynamotest"
)

var testKey = store.Key{Collection: "faults", ID: "rec"}

func entry(seq uint64, n int) store.Entry {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(seq*31 + uint64(i)*7)
	}
	return store.Entry{Seq: seq, Changes: b}
}

func meta(seq uint64) store.AppendMeta {
	return store.AppendMeta{Heads: []string{fmt.Sprintf("%064x", seq)}, Size: int64(seq)}
}

// faulty returns a store on a fresh table behind a Faults wrapper whose
// Inject is inject.
func faulty(t *testing.T, opts *dynamo.Options, inject func(op string, in any) dynamotest.Fault) (*dynamo.Store, *dynamotest.Faults) {
	t.Helper()
	var f *dynamotest.Faults
	s := dynamotest.NewStore(t, opts, func(api dynamo.API) dynamo.API {
		f = &dynamotest.Faults{API: api, Inject: inject}
		return f
	})
	return s, f
}

// once returns an Inject that applies fault to the first n calls of op.
func once(op string, n int, fault dynamotest.Fault) func(string, any) dynamotest.Fault {
	var left atomic.Int32
	left.Store(int32(n))
	return func(o string, _ any) dynamotest.Fault {
		if o == op && left.Add(-1) >= 0 {
			return fault
		}
		return dynamotest.Fault{}
	}
}

// checkLog checks that the record's log is exactly want (0 lost, 0
// duplicated), read with a store that injects nothing.
func checkLog(t *testing.T, s *dynamo.Store, want ...store.Entry) {
	t.Helper()
	got, err := s.ReadLog(context.Background(), testKey, 0)
	if err != nil {
		t.Fatalf("ReadLog = %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("log has %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Seq != want[i].Seq || !bytes.Equal(got[i].Changes, want[i].Changes) {
			t.Fatalf("entry %d = seq %d (%d bytes), want seq %d (%d bytes)", i, got[i].Seq, len(got[i].Changes), want[i].Seq, len(want[i].Changes))
		}
	}
}

// onMeta and onLog pick the calls of op on the meta item or on a log item
// (by the key of a GetItem, PutItem or UpdateItem), so that a fault hits
// one of Append's steps: the read of the meta item, the put of the log
// item, the meta update, or the check of an unknown outcome.
func onItem(op, skPrefix string, n int, fault dynamotest.Fault) func(string, any) dynamotest.Fault {
	var left atomic.Int32
	left.Store(int32(n))
	return func(o string, in any) dynamotest.Fault {
		if o != op || !strings.HasPrefix(skOf(in), skPrefix) {
			return dynamotest.Fault{}
		}
		if left.Add(-1) >= 0 {
			return fault
		}
		return dynamotest.Fault{}
	}
}

func onMeta(op string, n int, fault dynamotest.Fault) func(string, any) dynamotest.Fault {
	return onItem(op, dynamo.SKMeta, n, fault)
}

func onLog(op string, n int, fault dynamotest.Fault) func(string, any) dynamotest.Fault {
	return onItem(op, dynamo.SKLogPrefix, n, fault)
}

// skOf is the sort key a single-item call is about.
func skOf(in any) string {
	var key map[string]types.AttributeValue
	switch in := in.(type) {
	case *dynamodb.GetItemInput:
		key = in.Key
	case *dynamodb.UpdateItemInput:
		key = in.Key
	case *dynamodb.PutItemInput:
		key = in.Item
	}
	if sk, ok := key[dynamo.AttrSK].(*types.AttributeValueMemberS); ok {
		return sk.Value
	}
	return ""
}

// both applies a, then b if a injected nothing.
func both(a, b func(string, any) dynamotest.Fault) func(string, any) dynamotest.Fault {
	return func(op string, in any) dynamotest.Fault {
		if f := a(op, in); f.Err != nil {
			return f
		}
		return b(op, in)
	}
}

// TestAppendFaults injects a fault into each of Append's writes (the put of
// the log item, the meta update) and into the check of an unknown outcome:
// whatever the answer, the log then holds seq 1 exactly once, and the next
// append completes whatever was left half done.
func TestAppendFaults(t *testing.T) {
	dynamotest.Endpoint(t)
	ctx := context.Background()
	e1, e2 := entry(1, 100), entry(2, 100)
	ccf := &types.ConditionalCheckFailedException{Message: aws.String("injected")}
	tests := []struct {
		name   string
		inject func(string, any) dynamotest.Fault
		// first is what the first Append of seq 1 must return (nil or a
		// sentinel); retry, whether a second Append of seq 1 follows and
		// what it must return.
		first   error
		retry   bool
		retryIs error
	}{
		{
			name:    "log put throttled past the SDK's retries: unavailable, nothing written",
			inject:  onLog(dynamotest.OpPutItem, 1, dynamotest.Fault{Err: dynamotest.Throttled()}),
			first:   store.ErrUnavailable,
			retry:   true,
			retryIs: nil,
		},
		{
			name:   "log put's response lost after it landed: resolved as written, meta updated",
			inject: onLog(dynamotest.OpPutItem, 1, dynamotest.Fault{Err: dynamotest.Timeout("PutItem"), Landed: true}),
			first:  nil,
		},
		{
			// The retry of the same entry, a new Append, finds the seq
			// taken (Append is not idempotent: store.Store; the engine
			// then re-reads the log and finds its changes): stored once.
			name: "log put's response lost and the check fails too: unavailable; the retry finds the seq taken",
			inject: both(onLog(dynamotest.OpPutItem, 1, dynamotest.Fault{Err: dynamotest.Timeout("PutItem"), Landed: true}),
				onLog(dynamotest.OpGetItem, 1, dynamotest.Fault{Err: dynamotest.Throttled()})),
			first:   store.ErrUnavailable,
			retry:   true,
			retryIs: store.ErrConflict,
		},
		{
			name:   "log put timed out before it landed: unavailable, nothing written",
			inject: onLog(dynamotest.OpPutItem, 1, dynamotest.Fault{Err: dynamotest.Timeout("PutItem")}),
			first:  store.ErrUnavailable, retry: true, retryIs: nil,
		},
		{
			name:   "log put's condition failed: conflict",
			inject: onLog(dynamotest.OpPutItem, 1, dynamotest.Fault{Err: ccf}),
			first:  store.ErrConflict, retry: true, retryIs: nil,
		},
		{
			name:   "meta update throttled within the retries: written once",
			inject: onMeta(dynamotest.OpUpdateItem, dynamo.DefaultConflictRetries, dynamotest.Fault{Err: dynamotest.Throttled()}),
			first:  nil,
		},
		{
			name:   "meta update's response lost after it landed: the retry sees it done",
			inject: onMeta(dynamotest.OpUpdateItem, 1, dynamotest.Fault{Err: dynamotest.Timeout("UpdateItem"), Landed: true}),
			first:  nil,
		},
		{
			// The entry is stored and every read returns it; the caller is
			// told to retry, and its retry, a new Append, finds the seq
			// taken (Append is not idempotent: store.Store) and re-reads
			// the log; the next append completes the meta update.
			name:   "meta update throttled past the retries: unavailable, entry stored, the retry conflicts",
			inject: onMeta(dynamotest.OpUpdateItem, dynamo.DefaultConflictRetries+1, dynamotest.Fault{Err: dynamotest.Throttled()}),
			first:  store.ErrUnavailable, retry: true, retryIs: store.ErrConflict,
		},
		{
			// As above, but the next append is another writer's.
			name:   "meta update throttled past the retries: unavailable, entry stored, completed by the next append",
			inject: onMeta(dynamotest.OpUpdateItem, dynamo.DefaultConflictRetries+1, dynamotest.Fault{Err: dynamotest.Throttled()}),
			first:  store.ErrUnavailable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, f := faulty(t, nil, tt.inject)
			err := s.Append(ctx, testKey, e1, meta(1))
			if tt.first == nil && err != nil || tt.first != nil && !errors.Is(err, tt.first) {
				t.Fatalf("Append = %v, want %v", err, tt.first)
			}
			if len(f.Injected()) == 0 {
				t.Fatal("no fault was injected")
			}
			if tt.retry {
				err := s.Append(ctx, testKey, e1, meta(1))
				if tt.retryIs == nil && err != nil || tt.retryIs != nil && !errors.Is(err, tt.retryIs) {
					t.Fatalf("Append again = %v, want %v", err, tt.retryIs)
				}
			}
			// Whatever happened, the log holds seq 1 exactly once, and the
			// next seq appends normally.
			checkLog(t, s, e1)
			if err := s.Append(ctx, testKey, e2, meta(2)); err != nil {
				t.Fatalf("Append(2) = %v", err)
			}
			checkLog(t, s, e1, e2)
			rec, err := s.Load(ctx, testKey)
			if err != nil || rec.Seq != 2 {
				t.Fatalf("Load = seq %v, %v; want 2", rec, err)
			}
			checkFeed(t, s, meta(2))
		})
	}
}

// checkFeed checks that the feed lists testKey with the heads of m: the
// meta item (which the feed index holds) is not behind the log.
func checkFeed(t *testing.T, s *dynamo.Store, m store.AppendMeta) {
	t.Helper()
	page, err := s.Feed(context.Background(), testKey.Collection, "", 10)
	if err != nil {
		t.Fatalf("Feed = %v", err)
	}
	for _, it := range page.Items {
		if it.ID == testKey.ID {
			if !slices.Equal(it.Heads, m.Heads) {
				t.Fatalf("feed lists %s with heads %v, want %v", it.ID, it.Heads, m.Heads)
			}
			return
		}
	}
	t.Fatalf("feed does not list %s: %+v", testKey.ID, page.Items)
}

// TestAppendSDKRetryAfterLostResponse drops the response of a log item put
// that landed, inside the SDK (a middleware after the request was sent), so
// that the SDK's retryer sends it again: the second attempt fails its
// condition on our own item (a put has no idempotency token), which the
// item returned with the failure shows, so Append succeeds without a check
// of its own and the entry is written once.
func TestAppendSDKRetryAfterLostResponse(t *testing.T) {
	dynamotest.Endpoint(t)
	var attempts, drops atomic.Int32
	drop := middleware.DeserializeMiddlewareFunc("dropFirstResponse", func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
		out, md, err := next.HandleDeserialize(ctx, in)
		if middleware.GetOperationName(ctx) != "PutItem" {
			return out, md, err
		}
		attempts.Add(1)
		if err == nil && drops.CompareAndSwap(0, 1) {
			return out, md, retryableError{}
		}
		return out, md, err
	})
	client := dynamotest.Client(t, func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Deserialize.Add(drop, middleware.Before)
		})
	})
	table := dynamotest.NewTable(t, client)
	var logGets atomic.Int32
	s := dynamo.New(&dynamotest.Faults{API: client, Inject: func(op string, in any) dynamotest.Fault {
		if op == dynamotest.OpGetItem && strings.HasPrefix(skOf(in), dynamo.SKLogPrefix) {
			logGets.Add(1)
		}
		return dynamotest.Fault{}
	}}, table, nil)

	e1 := entry(1, 100)
	if err := s.Append(context.Background(), testKey, e1, meta(1)); err != nil {
		t.Fatalf("Append with a dropped response = %v, want nil", err)
	}
	if got := attempts.Load(); drops.Load() != 1 || got != 2 {
		t.Fatalf("%d responses dropped, %d SDK attempts; want 1 and 2", drops.Load(), got)
	}
	if n := logGets.Load(); n != 0 {
		t.Fatalf("Append checked its outcome (%d GetItem of a log item): the failed condition's item should have settled it", n)
	}
	checkLog(t, s, e1)
	checkFeed(t, s, meta(1))
	if err := s.Append(context.Background(), testKey, entry(2, 10), meta(2)); err != nil {
		t.Fatalf("Append(2) = %v", err)
	}
}

// retryableError is an error the SDK's standard retryer retries.
type retryableError struct{}

func (retryableError) Error() string        { return "injected: connection reset after the request was sent" }
func (retryableError) RetryableError() bool { return true }

// TestCallDeadlines checks that every call carries a deadline even when the
// caller's context has none, and that a hung call ends at CallTimeout with
// store.ErrUnavailable.
func TestCallDeadlines(t *testing.T) {
	dynamotest.Endpoint(t)
	var hang atomic.Bool
	var noDeadline atomic.Int32
	client := dynamotest.Client(t)
	table := dynamotest.NewTable(t, client, dynamotest.WithoutStream)
	api := &deadlineAPI{API: client, hang: &hang, noDeadline: &noDeadline}
	s := dynamo.New(api, table, nil)
	ctx := context.Background()
	if err := s.Append(ctx, testKey, entry(1, 10), meta(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, testKey); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(ctx, testKey, store.Snapshot{Seq: 1, Data: []byte("doc")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Feed(ctx, testKey.Collection, "", 10); err != nil {
		t.Fatal(err)
	}
	if n := noDeadline.Load(); n != 0 {
		t.Fatalf("%d calls had no deadline", n)
	}
	// A store with a short call timeout, on the same table: how long the
	// hung calls take depends on it alone, not on the machine's speed.
	fast := dynamo.New(api, table, &dynamo.Options{CallTimeout: 300 * time.Millisecond})
	hang.Store(true)
	start := time.Now()
	err := fast.Append(ctx, testKey, entry(2, 10), meta(2))
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Append on a hung connection = %v, want ErrUnavailable", err)
	}
	// The append and the check of its outcome each end at CallTimeout.
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Append on a hung connection took %v", took)
	}
	hang.Store(false)
	if rec, err := s.Load(ctx, testKey); err != nil || rec.Seq != 1 {
		t.Fatalf("Load after the hung Append = %+v, %v; want seq 1", rec, err)
	}
}

// deadlineAPI counts calls without a deadline and, while hang is set,
// blocks every call until its context ends.
type deadlineAPI struct {
	dynamo.API
	hang       *atomic.Bool
	noDeadline *atomic.Int32
}

func (d *deadlineAPI) check(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		d.noDeadline.Add(1)
	}
	if d.hang.Load() {
		<-ctx.Done()
		return fmt.Errorf("hung: %w", ctx.Err())
	}
	return nil
}

func (d *deadlineAPI) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if err := d.check(ctx); err != nil {
		return nil, err
	}
	return d.API.GetItem(ctx, in, o...)
}

func (d *deadlineAPI) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if err := d.check(ctx); err != nil {
		return nil, err
	}
	return d.API.UpdateItem(ctx, in, o...)
}

func (d *deadlineAPI) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	if err := d.check(ctx); err != nil {
		return nil, err
	}
	return d.API.Query(ctx, in, o...)
}

func (d *deadlineAPI) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if err := d.check(ctx); err != nil {
		return nil, err
	}
	return d.API.TransactWriteItems(ctx, in, o...)
}

func (d *deadlineAPI) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	if err := d.check(ctx); err != nil {
		return nil, err
	}
	return d.API.BatchWriteItem(ctx, in, o...)
}

func (d *deadlineAPI) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if err := d.check(ctx); err != nil {
		return nil, err
	}
	return d.API.PutItem(ctx, in, o...)
}
