package dynamo

// This file makes Store a store.Watcher by reading the table's DynamoDB
// Stream: every Append updates the record's meta item (layout.go), and the
// stream carries the new image of that item (seq and heads) to every process
// that reads it.
//
// How the stream is read:
//
//   - Watch resolves the table's latest stream (DescribeTable), lists its
//     shards (DescribeStream, every page) and takes a LATEST iterator on
//     every open shard before it returns, so appends made after it returns
//     are seen.
//   - One coordinator goroutine owns the shard list and schedules polls;
//     at most StreamOptions.Readers GetRecords calls run at once, whatever
//     the number of shards. A shard is polled by one call at a time and its
//     records are delivered in order, so the changes of one record (always
//     in one shard lineage) keep their order.
//   - A shard that yields records is polled again at once; an idle one
//     every StreamOptions.Poll; a failing one with exponential backoff.
//   - Shards close (DynamoDB rolls them over every few hours, and splits
//     them when a partition splits): GetRecords then returns no next
//     iterator. The coordinator lists the shards again at once and reads
//     each child from TRIM_HORIZON only after its parent is drained, which
//     is what keeps per-record order across a split. The list is also
//     refreshed every StreamOptions.Describe to find shards whose parent it
//     never knew.
//   - An expired iterator (15 minutes unused: the consumer stalled, or
//     DynamoDB was unreachable that long) is replaced from the last record
//     delivered (AFTER_SEQUENCE_NUMBER), losing nothing. Records trimmed
//     (older than 24 hours) before they were read, a stream replaced by a
//     new one, or an expired iterator with no record read yet on its shard
//     make the reader skip ahead and deliver a store.Change with Gap set.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/dynamerge/dynamerge/store"
)

// StreamsAPI is the part of *dynamodbstreams.Client the watcher uses. Tests
// wrap a real client in it to inject the faults DynamoDB Local never
// produces (throttling, expired iterators, shard rollovers).
type StreamsAPI interface {
	DescribeStream(ctx context.Context, in *dynamodbstreams.DescribeStreamInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error)
	GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error)
}

var _ StreamsAPI = (*dynamodbstreams.Client)(nil)

// StreamsProvider is implemented by an API that supplies the Streams client
// Watch should use. Without it, Watch derives one from a *dynamodb.Client
// (same region, credentials, endpoint and HTTP client); any other API
// cannot be watched.
type StreamsProvider interface {
	Streams() StreamsAPI
}

// Default settings of the stream reader.
const (
	// DefaultStreamPoll is how often an idle shard is polled. DynamoDB
	// Streams serves about five GetRecords calls per second per shard to all
	// readers together, and every server process reads every shard: at 1 s,
	// up to five processes stay under that, and a change reaches the others
	// about 0.5 s after it is readable on average.
	DefaultStreamPoll = time.Second
	// DefaultStreamDescribe is how often the shard list is refreshed when no
	// shard closed meanwhile (a closed shard refreshes it at once).
	DefaultStreamDescribe = 30 * time.Second
	// DefaultStreamReaders bounds the GetRecords calls in flight per watch.
	DefaultStreamReaders = 4
	// streamMaxBackoff caps the wait between attempts on a failing shard or
	// stream.
	streamMaxBackoff = 10 * time.Second
	// streamRecordsLimit is the most records one GetRecords returns (the
	// API's maximum).
	streamRecordsLimit = 1000
	// streamChangeBuffer is how many changes wait for the consumer before
	// the readers block.
	streamChangeBuffer = 256
)

// StreamOptions configures the stream reader of Watch. Zero values mean
// defaults.
type StreamOptions struct {
	// Poll is how often an idle shard is polled. Defaults to
	// DefaultStreamPoll.
	Poll time.Duration
	// Describe is how often the shard list is refreshed. Defaults to
	// DefaultStreamDescribe.
	Describe time.Duration
	// Readers bounds the GetRecords calls in flight. Defaults to
	// DefaultStreamReaders.
	Readers int
	// MinPoll is the least time between two GetRecords calls on one
	// shard, even when the last one returned records. 0: none (a shard
	// with records is read on at once). The fan-out mode's leased readers
	// set it so that, together, they stay within Streams' five calls per
	// second per shard.
	MinPoll time.Duration
	// Logger receives warnings about a failing stream. Defaults to
	// slog.Default().
	Logger *slog.Logger
}

func (o StreamOptions) withDefaults() StreamOptions {
	if o.Poll <= 0 {
		o.Poll = DefaultStreamPoll
	}
	if o.Describe <= 0 {
		o.Describe = DefaultStreamDescribe
	}
	if o.Readers <= 0 {
		o.Readers = DefaultStreamReaders
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

var _ store.Watcher = (*Store)(nil)

// Watch reads the table's DynamoDB Stream and reports every Append (see
// store.Watcher for the contract). The table must have a stream whose view
// type includes new images (NEW_IMAGE or NEW_AND_OLD_IMAGES); otherwise, or
// when the table or stream cannot be reached, Watch returns an error. The
// channel is closed when ctx is done, or within StreamOptions.Poll after the
// store is closed.
func (s *Store) Watch(ctx context.Context) (<-chan store.Change, error) {
	return s.WatchWith(ctx, StreamOptions{})
}

// WatchWith is Watch with explicit reader settings.
func (s *Store) WatchWith(ctx context.Context, opts StreamOptions) (<-chan store.Change, error) {
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("dynamo: watch %s: %w", s.table, err)
	}
	if s.opts.Fanout != nil {
		return s.watchFanout(ctx)
	}
	api, err := s.streamsAPI()
	if err != nil {
		return nil, fmt.Errorf("dynamo: watch %s: %w", s.table, err)
	}
	opts = opts.withDefaults()
	w := &streamWatch{
		s:      s,
		api:    api,
		opts:   opts,
		shards: make(map[string]*shard),
		out:    make(chan store.Change, streamChangeBuffer),
		done:   make(chan result, opts.Readers),
	}
	w.log = w.opts.Logger.With("table", s.table)
	if err := w.start(ctx); err != nil {
		return nil, fmt.Errorf("dynamo: watch %s: %w", s.table, err)
	}
	go w.run(ctx)
	return w.out, nil
}

// streamsAPI returns the Streams client to watch with.
func (s *Store) streamsAPI() (StreamsAPI, error) {
	if p, ok := s.api.(StreamsProvider); ok {
		return p.Streams(), nil
	}
	c, ok := s.api.(*dynamodb.Client)
	if !ok {
		return nil, fmt.Errorf("no DynamoDB Streams client: the store's API (%T) is not a *dynamodb.Client and does not implement StreamsProvider", s.api)
	}
	o := c.Options()
	// The same account, region and endpoint: DynamoDB Local serves Streams
	// on its own port, and AWS resolves the Streams endpoint from the region
	// when BaseEndpoint is nil.
	return dynamodbstreams.New(dynamodbstreams.Options{
		Region:           o.Region,
		Credentials:      o.Credentials,
		BaseEndpoint:     o.BaseEndpoint,
		HTTPClient:       o.HTTPClient,
		AppID:            o.AppID,
		RetryMaxAttempts: o.RetryMaxAttempts,
		RetryMode:        o.RetryMode,
	}), nil
}

// shardState is where a shard stands in the reader.
type shardState int

const (
	shardWaiting shardState = iota // its parent is still being read
	shardIdle                      // ready to poll at shard.next
	shardPolling                   // a GetRecords call is in flight
	shardDrained                   // closed and read to its end (or closed before we started)
)

// shard is the reader's position in one shard. Only the coordinator
// goroutine touches it, except that a poll works on a copy.
type shard struct {
	id, parent string
	state      shardState
	iter       string // next iterator; "" when one must be fetched
	// after is the sequence number of the last record delivered ("" none):
	// an expired iterator is replaced from there.
	after string
	// from says how to get the first iterator when there is neither iter
	// nor after: LATEST for shards open when the watch started,
	// TRIM_HORIZON for shards found later.
	from  types.ShardIteratorType
	next  time.Time // earliest next poll
	fails int       // consecutive failed polls
}

// result is what one poll reports back to the coordinator.
type result struct {
	id     string
	iter   string // the next iterator ("" with closed)
	after  string // last record delivered by this poll ("" none)
	n      int    // records in the answer
	closed bool   // the shard has no more records
	err    error
	// What to do about err.
	expired, trimmed, gone bool
}

type streamWatch struct {
	s    *Store
	api  StreamsAPI
	opts StreamOptions
	log  *slog.Logger

	out  chan store.Change
	done chan result // polls report here; buffered to Readers

	// Owned by the coordinator (start, then run).
	arn      string
	shards   map[string]*shard
	inflight int

	// For the leased reader of the fan-out mode (lease.go): where to resume
	// (shard id → last sequence number delivered, "" for the shard's
	// start), where it stands after each poll, and a count of GetRecords
	// calls. All nil for Watch.
	resume map[string]string
	pos    *positions
	reads  *atomic.Uint64
}

// positions is a leased reader's place in the stream, copied out by the
// coordinator after each poll for the lease's checkpoint.
type positions struct {
	mu  sync.Mutex
	arn string
	at  map[string]string
}

// record copies where every shard not yet drained stands. A shard read from
// LATEST with nothing delivered yet is recorded as "": a reader that takes
// over reads it from its start (repeats, never a loss).
func (w *streamWatch) record() {
	if w.pos == nil {
		return
	}
	at := make(map[string]string, len(w.shards))
	for id, s := range w.shards {
		if s.state != shardDrained {
			at[id] = s.after
		}
	}
	w.pos.mu.Lock()
	w.pos.arn, w.pos.at = w.arn, at
	w.pos.mu.Unlock()
}

// start finds the stream and takes a LATEST iterator on every open shard.
func (w *streamWatch) start(ctx context.Context) error {
	arn, err := w.streamARN(ctx)
	if err != nil {
		return err
	}
	w.arn = arn
	listed, err := w.describe(ctx)
	if err != nil {
		return err
	}
	if w.resume != nil {
		return w.startFrom(ctx, listed)
	}
	for _, sh := range listed {
		id := deref(sh.ShardId)
		s := &shard{id: id, parent: deref(sh.ParentShardId), from: types.ShardIteratorTypeLatest, state: shardIdle}
		if sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber != nil {
			// Closed before we started: everything in it is history.
			s.state = shardDrained
		} else {
			if s.iter, err = w.iterator(ctx, s); err != nil {
				return err
			}
		}
		w.shards[id] = s
	}
	w.record()
	return nil
}

// startFrom places a leased reader where the previous holder's checkpoint
// (w.resume) says: shards in it resume after their last delivered record
// (or from their start), their descendants wait for them, and shards
// neither in it nor below it are history (closed) or read from their start
// (open ones, which the previous holder had not listed yet).
func (w *streamWatch) startFrom(ctx context.Context, listed []types.Shard) error {
	for _, sh := range listed {
		id := deref(sh.ShardId)
		s := &shard{id: id, parent: deref(sh.ParentShardId), from: types.ShardIteratorTypeTrimHorizon, state: shardWaiting}
		after, inCheckpoint := w.resume[id]
		closed := sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber != nil
		switch {
		case inCheckpoint:
			s.after, s.state = after, shardIdle
		case closed:
			s.state = shardDrained
		}
		w.shards[id] = s
	}
	// A shard waits for its parent only if the parent is being read.
	for _, s := range w.shards {
		if s.state == shardWaiting {
			if p, ok := w.shards[s.parent]; !ok || p.state == shardDrained {
				s.state = shardIdle
			}
		}
	}
	w.record()
	return nil
}

// streamARN returns the table's latest stream, checking that its records
// carry new images (the meta item's seq and heads).
func (w *streamWatch) streamARN(ctx context.Context) (string, error) {
	cctx, cancel := w.s.callContext(ctx)
	defer cancel()
	out, err := w.s.api.DescribeTable(cctx, &dynamodb.DescribeTableInput{TableName: &w.s.table})
	if err != nil {
		return "", fmt.Errorf("describe table: %w", classify(err))
	}
	t := out.Table
	if t == nil || t.LatestStreamArn == nil || t.StreamSpecification == nil || t.StreamSpecification.StreamEnabled == nil || !*t.StreamSpecification.StreamEnabled {
		return "", errors.New("the table has no DynamoDB Stream: enable one with view type NEW_IMAGE (dynamerge --create-table does; see schema/dynamodb.md)")
	}
	switch vt := t.StreamSpecification.StreamViewType; vt {
	case ddbtypes.StreamViewTypeNewImage, ddbtypes.StreamViewTypeNewAndOldImages:
	default:
		return "", fmt.Errorf("the table's stream has view type %s; cross-process events need NEW_IMAGE or NEW_AND_OLD_IMAGES", vt)
	}
	return *t.LatestStreamArn, nil
}

// describe lists every shard of the stream, all pages.
func (w *streamWatch) describe(ctx context.Context) ([]types.Shard, error) {
	var shards []types.Shard
	var start *string
	for {
		cctx, cancel := w.s.callContext(ctx)
		out, err := w.api.DescribeStream(cctx, &dynamodbstreams.DescribeStreamInput{StreamArn: &w.arn, ExclusiveStartShardId: start})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("describe stream: %w", classifyStreams(err))
		}
		d := out.StreamDescription
		if d == nil {
			return nil, errors.New("describe stream: empty answer")
		}
		switch d.StreamStatus {
		case types.StreamStatusDisabled, types.StreamStatusDisabling:
			return nil, fmt.Errorf("describe stream: %w: stream is %s", errStreamGone, d.StreamStatus)
		}
		shards = append(shards, d.Shards...)
		if d.LastEvaluatedShardId == nil || *d.LastEvaluatedShardId == "" {
			return shards, nil
		}
		start = d.LastEvaluatedShardId
	}
}

// errStreamGone marks a stream that was disabled or deleted: the table's
// latest stream (if any) must be found again.
var errStreamGone = errors.New("stream gone")

// iterator gets an iterator for s: after its last delivered record if any,
// else from s.from.
func (w *streamWatch) iterator(ctx context.Context, s *shard) (string, error) {
	in := &dynamodbstreams.GetShardIteratorInput{StreamArn: &w.arn, ShardId: &s.id, ShardIteratorType: s.from}
	if s.after != "" {
		in.ShardIteratorType = types.ShardIteratorTypeAfterSequenceNumber
		in.SequenceNumber = &s.after
	}
	cctx, cancel := w.s.callContext(ctx)
	defer cancel()
	out, err := w.api.GetShardIterator(cctx, in)
	if err != nil {
		return "", fmt.Errorf("get shard iterator %s: %w", s.id, classifyStreams(err))
	}
	if out.ShardIterator == nil {
		// The shard is closed and has nothing past that point.
		return "", nil
	}
	return *out.ShardIterator, nil
}

// run is the coordinator: it schedules polls, applies their results, and
// refreshes the shard list, until ctx is done or the store is closed.
func (w *streamWatch) run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		for w.inflight > 0 { // let every poll finish before closing out
			<-w.done
			w.inflight--
		}
		close(w.out)
	}()
	describeAt := time.Now().Add(w.opts.Describe)
	describeFails := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if w.s.closed.Load() {
			return
		}
		now := time.Now()
		if !now.Before(describeAt) {
			if err := w.refreshShards(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				describeFails++
				wait := streamBackoff(w.opts.Poll, describeFails)
				if describeFails == 1 || describeFails%10 == 0 {
					w.log.Warn("dynamo: stream: listing shards failed; retrying", "err", err, "fails", describeFails, "retry_in", wait)
				}
				describeAt = now.Add(wait)
			} else {
				describeFails = 0
				describeAt = now.Add(w.opts.Describe)
				w.record()
			}
		}
		wake := w.dispatch(ctx, now)
		if describeAt.Before(wake) {
			wake = describeAt
		}
		// Wake at least every Poll to notice a closed store.
		if limit := now.Add(w.opts.Poll); limit.Before(wake) {
			wake = limit
		}
		timer.Reset(time.Until(wake))
		select {
		case <-ctx.Done():
			return
		case r := <-w.done:
			w.inflight--
			if w.apply(ctx, r) {
				describeAt = time.Now() // a shard closed: find its children now
			}
			w.record()
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		case <-timer.C:
		}
	}
}

// dispatch starts polls of every due shard while readers are free, and
// returns when the next idle shard is due.
func (w *streamWatch) dispatch(ctx context.Context, now time.Time) (wake time.Time) {
	wake = now.Add(w.opts.Describe)
	for _, s := range w.shards {
		if s.state == shardWaiting {
			if p, ok := w.shards[s.parent]; !ok || p.state == shardDrained {
				s.state = shardIdle
			}
		}
		if s.state != shardIdle {
			continue
		}
		if s.next.After(now) || w.inflight >= w.opts.Readers {
			if s.next.Before(wake) {
				wake = s.next
			}
			continue
		}
		s.state = shardPolling
		w.inflight++
		go func(s shard) { w.done <- w.poll(ctx, s) }(*s)
	}
	if w.inflight >= w.opts.Readers {
		// Woken by the next poll to finish anyway.
		return now.Add(w.opts.Describe)
	}
	return wake
}

// poll reads one batch of records from a copy of a shard's state and
// delivers its changes in order. It blocks while the consumer lags.
func (w *streamWatch) poll(ctx context.Context, s shard) result {
	r := result{id: s.id}
	if s.iter == "" {
		it, err := w.iterator(ctx, &s)
		if err != nil {
			r.err = err
			r.trimmed, r.gone = isTrimmed(err), isGone(err)
			return r
		}
		if it == "" {
			r.closed = true
			return r
		}
		s.iter = it
	}
	if w.reads != nil {
		w.reads.Add(1)
	}
	cctx, cancel := w.s.callContext(ctx)
	out, err := w.api.GetRecords(cctx, &dynamodbstreams.GetRecordsInput{ShardIterator: &s.iter, Limit: int32ptr(streamRecordsLimit)})
	cancel()
	if err != nil {
		r.err = fmt.Errorf("get records %s: %w", s.id, classifyStreams(err))
		var exp *types.ExpiredIteratorException
		r.expired = errors.As(err, &exp)
		r.trimmed, r.gone = isTrimmed(err), isGone(err)
		return r
	}
	r.n = len(out.Records)
	for _, rec := range out.Records {
		c, ok, err := changeOf(rec)
		if err != nil {
			w.log.Warn("dynamo: stream: skipping a meta record this version cannot read", "shard", s.id, "err", err)
		} else if ok {
			select {
			case w.out <- c:
			case <-ctx.Done():
				// Not delivered: leave after where it was, so that a
				// restart from here would deliver it again.
				r.iter = s.iter
				return r
			}
		}
		if rec.Dynamodb != nil && rec.Dynamodb.SequenceNumber != nil {
			r.after = *rec.Dynamodb.SequenceNumber
		}
	}
	if out.NextShardIterator == nil {
		r.closed = true
	} else {
		r.iter = *out.NextShardIterator
	}
	return r
}

// apply takes in a poll's result. It reports whether a shard closed (the
// shard list should be refreshed to find its children).
func (w *streamWatch) apply(ctx context.Context, r result) (closed bool) {
	s := w.shards[r.id]
	if s == nil {
		return false // dropped meanwhile (the stream was replaced)
	}
	now := time.Now()
	s.state = shardIdle
	if r.after != "" {
		s.after = r.after
	}
	switch {
	case r.err == nil && r.closed:
		s.state, s.iter = shardDrained, ""
		if s.fails > 0 {
			w.log.Info("dynamo: stream: shard readable again", "shard", s.id)
		}
		s.fails = 0
		return true
	case r.err == nil:
		if s.fails > 0 {
			w.log.Info("dynamo: stream: shard readable again", "shard", s.id, "after_fails", s.fails)
		}
		s.iter, s.fails = r.iter, 0
		if r.n > 0 {
			s.next = now.Add(w.opts.MinPoll) // more may be waiting: read on
		} else {
			s.next = now.Add(w.opts.Poll)
		}
		return false
	case r.expired:
		// Resume after the last record delivered; with none delivered yet,
		// where LATEST stood is lost: skip ahead and say so.
		s.iter = ""
		if s.after == "" && s.from == types.ShardIteratorTypeLatest {
			w.gap(ctx, "shard iterator expired before any record was read", s.id)
		}
		s.next = now
		return false
	case r.trimmed:
		// The records after our position are gone (older than 24 hours):
		// read from the oldest one left.
		w.gap(ctx, "records trimmed before they were read", s.id)
		s.iter, s.after, s.from, s.next = "", "", types.ShardIteratorTypeTrimHorizon, now
		return false
	case r.gone:
		w.log.Warn("dynamo: stream: shard or stream not found; looking for the table's stream again", "shard", s.id, "err", r.err)
		s.fails++
		s.iter, s.next = "", now.Add(streamBackoff(w.opts.Poll, s.fails))
		return true
	default:
		// Throttled, unreachable, or a server error: the iterator was not
		// used up (only an answer moves it on), so try it again later.
		s.fails++
		wait := streamBackoff(w.opts.Poll, s.fails)
		if s.fails == 1 || s.fails%10 == 0 {
			w.log.Warn("dynamo: stream: reading a shard failed; retrying", "shard", s.id, "err", r.err, "fails", s.fails, "retry_in", wait)
		}
		s.next = now.Add(wait)
		return false
	}
}

// refreshShards lists the shards again: new ones are read from their start
// once their parent is drained; drained ones no longer listed are forgotten.
// When the stream is gone it finds the table's current one and starts over
// on it, reporting a gap.
func (w *streamWatch) refreshShards(ctx context.Context) error {
	listed, err := w.describe(ctx)
	if errors.Is(err, errStreamGone) || isGone(err) {
		arn, aerr := w.streamARN(ctx)
		if aerr != nil {
			return fmt.Errorf("%w; finding the table's stream again: %w", err, aerr)
		}
		if arn == w.arn {
			return err
		}
		w.log.Warn("dynamo: stream: the table has a new stream; reading it from its start", "old", w.arn, "new", arn)
		w.arn = arn
		// Polls in flight on the old stream report to shards no longer
		// known, and are ignored.
		w.shards = make(map[string]*shard)
		w.gap(ctx, "the table's stream was replaced", "")
		if listed, err = w.describe(ctx); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	seen := make(map[string]bool, len(listed))
	for _, sh := range listed {
		id := deref(sh.ShardId)
		seen[id] = true
		if w.shards[id] != nil {
			continue
		}
		w.shards[id] = &shard{id: id, parent: deref(sh.ParentShardId), from: types.ShardIteratorTypeTrimHorizon, state: shardWaiting}
	}
	for id, s := range w.shards {
		if !seen[id] && s.state == shardDrained {
			delete(w.shards, id)
		}
	}
	return nil
}

// gap tells the consumer that changes may have been missed.
func (w *streamWatch) gap(ctx context.Context, why, shardID string) {
	w.log.Warn("dynamo: stream: some changes may not be reported", "why", why, "shard", shardID)
	select {
	case w.out <- store.Change{Gap: true}:
	case <-ctx.Done():
	}
}

// changeOf turns a stream record into a Change. ok is false for records
// that are not news: items other than meta, removals, and meta updates that
// did not move seq (SaveSnapshot), when the old image tells.
func changeOf(rec types.Record) (c store.Change, ok bool, err error) {
	d := rec.Dynamodb
	if d == nil || rec.EventName == types.OperationTypeRemove {
		return c, false, nil
	}
	if sk, _ := d.Keys[AttrSK].(*types.AttributeValueMemberS); sk == nil || sk.Value != SKMeta {
		return c, false, nil
	}
	img := d.NewImage
	if img == nil {
		return c, false, errors.New("meta record without a new image (the stream's view type must include new images)")
	}
	col, err1 := stringAttr(img, AttrCollection)
	id, err2 := stringAttr(img, AttrID)
	seq, err3 := seqAttr(img)
	if err := errors.Join(err1, err2, err3); err != nil {
		return c, false, fmt.Errorf("meta of %s: %w", pkOf(d.Keys), err)
	}
	key := store.Key{Collection: col, ID: id}
	if err := key.Validate(); err != nil {
		return c, false, fmt.Errorf("meta of %s: %w", pkOf(d.Keys), err)
	}
	if d.OldImage != nil {
		if old, err := seqAttr(d.OldImage); err == nil && old == seq {
			return c, false, nil
		}
	}
	var heads []string
	switch h := img[AttrHeads].(type) {
	case *types.AttributeValueMemberL:
		heads = make([]string, 0, len(h.Value))
		for _, v := range h.Value {
			s, ok := v.(*types.AttributeValueMemberS)
			if !ok {
				return c, false, fmt.Errorf("meta of %s: %s holds a %T", key, AttrHeads, v)
			}
			heads = append(heads, s.Value)
		}
	case nil:
		// A record whose heads are empty (an Append of no change cannot
		// happen, but an empty list may be left out).
	default:
		return c, false, fmt.Errorf("meta of %s: %s is a %T, want a list", key, AttrHeads, h)
	}
	_, deleted := img[AttrDeletedAt]
	return store.Change{Key: key, Seq: seq, Heads: heads, Deleted: deleted}, true, nil
}

func stringAttr(img map[string]types.AttributeValue, name string) (string, error) {
	v, ok := img[name].(*types.AttributeValueMemberS)
	if !ok {
		return "", fmt.Errorf("attribute %s missing or not a string", name)
	}
	return v.Value, nil
}

func seqAttr(img map[string]types.AttributeValue) (uint64, error) {
	v, ok := img[AttrSeq].(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("attribute %s missing or not a number", AttrSeq)
	}
	n, err := strconv.ParseUint(v.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("attribute %s: %w", AttrSeq, err)
	}
	return n, nil
}

func pkOf(keys map[string]types.AttributeValue) string {
	if v, ok := keys[AttrPK].(*types.AttributeValueMemberS); ok {
		return strconv.Quote(v.Value)
	}
	return "an item without a partition key"
}

// classifyStreams wraps Streams errors like classify does DynamoDB's. The
// Streams API answers throttling with LimitExceededException, which
// classify already counts as transient.
func classifyStreams(err error) error { return classify(err) }

func isTrimmed(err error) bool {
	var e *types.TrimmedDataAccessException
	return errors.As(err, &e)
}

func isGone(err error) bool {
	var e *types.ResourceNotFoundException
	return errors.As(err, &e)
}

// streamBackoff is the wait before attempt fails+1: base doubled per failure, up
// to streamMaxBackoff, with jitter so that processes do not retry in step.
func streamBackoff(base time.Duration, fails int) time.Duration {
	d := min(base<<min(fails, 10), streamMaxBackoff)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func int32ptr(n int32) *int32 { return &n }
