package dynamo

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/dynamerge/dynamerge/store"
)

// API is the part of *dynamodb.Client the store uses. Tests wrap a real
// client in it to inject the faults DynamoDB Local never produces
// (throttling, transaction conflicts, lost responses).
type API interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DeleteTable(ctx context.Context, in *dynamodb.DeleteTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteTableOutput, error)
}

var _ API = (*dynamodb.Client)(nil)

// Default store settings, used for zero fields of Options.
const (
	// DefaultCallTimeout bounds each DynamoDB call, the SDK's own retries
	// included, when the caller's context allows longer. A 3.5 MB
	// transaction takes well under a second on a healthy table; 10 s leaves
	// room for the SDK's backoff on throttling without letting a hung
	// connection hold a record's writer for ever.
	DefaultCallTimeout = 10 * time.Second
	// DefaultFeedOverlap is how far back in time the feed re-reads when a
	// reader reaches its end. Records are ordered by their writer's clock,
	// and the feed index is updated asynchronously; a record whose time is
	// behind a reader's cursor by less than this is still shown to it. It
	// covers clock skew between server processes and index propagation
	// delay (normally well under a second), at the price of listing
	// records changed in the last DefaultFeedOverlap again.
	DefaultFeedOverlap = 30 * time.Second
	// DefaultConflictRetries is how often Append retries a transaction
	// cancelled by TransactionConflict (another transaction on the same
	// record in flight) before answering store.ErrConflict.
	DefaultConflictRetries = 3
	// DefaultReadRetries is how often Load re-reads a record whose
	// snapshot or log changed under it (a concurrent compaction) before
	// giving up with store.ErrUnavailable.
	DefaultReadRetries = 5
)

// ErrClosed is store.ErrClosed, returned by calls made after Close.
var ErrClosed = store.ErrClosed

// Options configures New. The zero value (and nil) means every default.
type Options struct {
	// CallTimeout bounds each DynamoDB call. Defaults to DefaultCallTimeout.
	CallTimeout time.Duration
	// FeedOverlap is the feed's look-back window. Defaults to
	// DefaultFeedOverlap (30 s).
	FeedOverlap time.Duration
	// ConflictRetries bounds Append's retries after TransactionConflict.
	// Defaults to DefaultConflictRetries; negative means none.
	ConflictRetries int
	// ReadRetries bounds Load's re-reads after a concurrent compaction.
	// Defaults to DefaultReadRetries.
	ReadRetries int
	// Now returns the current time, for the feed. Defaults to time.Now.
	Now func() time.Time
	// Fanout, when set, makes Watch use the fan-out mode (fanout.go):
	// processes tell each other of their appends, and only leased readers
	// read the table's stream. Nil: every watching process reads the
	// stream (fine up to about five processes).
	Fanout *FanoutOptions
}

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.CallTimeout <= 0 {
		r.CallTimeout = DefaultCallTimeout
	}
	if r.FeedOverlap <= 0 {
		r.FeedOverlap = DefaultFeedOverlap
	}
	if r.ConflictRetries == 0 {
		r.ConflictRetries = DefaultConflictRetries
	}
	r.ConflictRetries = max(r.ConflictRetries, 0)
	if r.ReadRetries <= 0 {
		r.ReadRetries = DefaultReadRetries
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	return r
}

// Store is a store.Store in one DynamoDB table. Create it with New (given a
// client) or Open (from the standard AWS configuration chain).
type Store struct {
	api   API
	table string
	opts  Options

	closed atomic.Bool
	units  capacityCounters
	shards feedShards
	fan    fanout
	known  knownSeqs
}

var _ store.Store = (*Store)(nil)

// New returns a store on table through api. It does not check the table;
// call CheckTable (or Open, which does) for a clear error when it is missing
// or has another layout.
func New(api API, table string, opts *Options) *Store {
	return &Store{api: api, table: table, opts: opts.withDefaults()}
}

// Table returns the name of the store's table.
func (s *Store) Table() string { return s.table }

// Ping checks that the table is reachable and active (for /readyz).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.begin(ctx); err != nil {
		return fmt.Errorf("dynamo: ping %s: %w", s.table, err)
	}
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	out, err := s.api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &s.table})
	if err != nil {
		return fmt.Errorf("dynamo: ping %s: %w", s.table, classify(err))
	}
	if st := out.Table.TableStatus; st != "ACTIVE" && st != "UPDATING" {
		return fmt.Errorf("dynamo: ping %s: %w: table is %s", s.table, store.ErrUnavailable, st)
	}
	return nil
}

// Close marks the store closed: later calls return ErrClosed. In fan-out
// mode it also gives up the process's registration and stream lease. The
// SDK client holds no resources that need releasing. Closing twice is
// safe.
func (s *Store) Close() error {
	s.closed.Store(true)
	s.stopFanout()
	return nil
}

// begin is the common start of every call: a closed store or a done
// context fail before anything is sent.
func (s *Store) begin(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// beginKey is begin for a call on one record, op naming the call in the
// error: a key that is not a record's fails too.
func (s *Store) beginKey(ctx context.Context, key store.Key, op string) error {
	if err := key.Validate(); err != nil {
		return fmt.Errorf("dynamo: %s: %w", op, err)
	}
	if err := s.begin(ctx); err != nil {
		return fmt.Errorf("dynamo: %s: %w", op, err)
	}
	return nil
}

// callContext bounds one DynamoDB call (with the SDK's retries) by
// CallTimeout, within whatever deadline ctx already has: every call has a
// deadline, even when the caller gave none.
func (s *Store) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opts.CallTimeout)
}
