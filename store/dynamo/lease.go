package dynamo

// Leases on reading the table's stream, for the fan-out mode (fanout.go).
// Lease i is the item (ConfigPK, "lease#<i>"): its owner (a process's
// registration id), when it lapses (AttrExpires, Unix ms), and the holder's
// checkpoint: the stream (AttrLeaseStream) and, per shard not yet drained,
// the sequence number of the last record it passed on (AttrCheckpoint).
//
// A process holds at most one lease. It takes a free or lapsed one with a
// conditional update, renews it every third of LeaseTTL with its
// checkpoint (conditional on still owning it), and stops reading as soon as
// a renewal finds another owner or its own expiry passed without a
// successful renewal, so two processes read under one lease only while
// clocks disagree. A process that takes over resumes from the checkpoint:
// records passed on after the last checkpoint are passed on again
// (repeats, never a loss). Clocks of the processes must agree within a
// small part of LeaseTTL (NTP does).

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dynamerge/dynamerge/store"
)

// Attributes of a lease item.
const (
	// SKLeasePrefix starts the sort key of a lease: "lease#<i>".
	SKLeasePrefix = "lease#"
	// AttrOwner is the registration id of the lease's holder (string).
	AttrOwner = "own"
	// AttrLeaseStream is the stream ARN the checkpoint belongs to (string).
	AttrLeaseStream = "arn"
	// AttrCheckpoint maps shard ids to the last sequence number passed on
	// (map of strings; "" for a shard to read from its start).
	AttrCheckpoint = "cp"
)

// leaseStats counts what the lease loop and the receivers did.
type leaseStats struct {
	taken, lost, changes, received, reads atomic.Uint64
}

// leaseLoop takes a lease when one is free and reads the stream while it
// holds it, until ctx is done.
func (s *Store) leaseLoop(ctx context.Context) {
	f := &s.fan
	tick := time.NewTicker(f.opts.LeaseTTL / 3)
	defer tick.Stop()
	var r *leasedReader
	defer func() {
		if r != nil {
			r.stop()
			s.releaseLease(r) // shutting down: let another take over now
		}
	}()
	for {
		if r == nil {
			for i := range f.opts.Leases {
				if r = s.takeLease(ctx, i); r != nil {
					break
				}
			}
		} else if !s.renewLease(ctx, r) {
			r.stop()
			r = nil
			f.lease.lost.Add(1)
			continue // try to take one at once (another may be free)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-r.doneOrNil():
			// The reader ended (stream gone, store closed): give the
			// lease up so that another process takes it.
			s.releaseLease(r)
			r = nil
			f.lease.lost.Add(1)
		}
	}
}

// takeLease tries to take lease i; it returns its running reader, or nil.
func (s *Store) takeLease(ctx context.Context, i int) *leasedReader {
	f := &s.fan
	now := time.Now()
	cctx, cancel := s.callContext(ctx)
	out, err := s.api.UpdateItem(cctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       itemKey(ConfigPK, SKLeasePrefix+strconv.Itoa(i)),
		UpdateExpression:          aws.String("SET #own = :me, #exp = :exp"),
		ConditionExpression:       aws.String("attribute_not_exists(#own) OR #own = :me OR #exp < :now"),
		ExpressionAttributeNames:  map[string]string{"#own": AttrOwner, "#exp": AttrExpires},
		ExpressionAttributeValues: map[string]types.AttributeValue{":me": &types.AttributeValueMemberS{Value: f.id}, ":exp": num(uint64(now.Add(f.opts.LeaseTTL).UnixMilli())), ":now": num(uint64(now.UnixMilli()))},
		ReturnValues:              types.ReturnValueAllNew,
		ReturnConsumedCapacity:    types.ReturnConsumedCapacityTotal,
	})
	cancel()
	if err != nil {
		if !isConditionFailed(err) && ctx.Err() == nil {
			f.log.Warn("dynamo: fanout: taking a stream lease failed", "lease", i, "err", classify(err))
		}
		return nil
	}
	s.units.addOne(opFanout, true, out.ConsumedCapacity)
	r := &leasedReader{lease: i, until: now.Add(f.opts.LeaseTTL)}
	arn, _ := out.Attributes[AttrLeaseStream].(*types.AttributeValueMemberS)
	cp, _ := out.Attributes[AttrCheckpoint].(*types.AttributeValueMemberM)
	if arn != nil && cp != nil {
		r.resumeARN = arn.Value
		r.resume = make(map[string]string, len(cp.Value))
		for id, v := range cp.Value {
			if sv, ok := v.(*types.AttributeValueMemberS); ok {
				r.resume[id] = sv.Value
			}
		}
	}
	if err := s.startReader(ctx, r); err != nil {
		f.log.Warn("dynamo: fanout: took a stream lease but cannot read the stream; giving it up", "lease", i, "err", err)
		s.releaseLease(r)
		return nil
	}
	f.lease.taken.Add(1)
	f.log.Info("dynamo: fanout: reading the stream", "lease", i, "resumed", r.resume != nil)
	return r
}

// renewLease extends the lease and saves the checkpoint. It reports false
// when the lease is lost: taken by another, or lapsed without a renewal.
func (s *Store) renewLease(ctx context.Context, r *leasedReader) bool {
	f := &s.fan
	now := time.Now()
	names := map[string]string{"#own": AttrOwner, "#exp": AttrExpires}
	values := map[string]types.AttributeValue{":me": &types.AttributeValueMemberS{Value: f.id}, ":exp": num(uint64(now.Add(f.opts.LeaseTTL).UnixMilli()))}
	update := "SET #exp = :exp"
	r.pos.mu.Lock()
	if r.pos.arn != "" {
		cp := make(map[string]types.AttributeValue, len(r.pos.at))
		for id, after := range r.pos.at {
			cp[id] = &types.AttributeValueMemberS{Value: after}
		}
		update += ", #arn = :arn, #cp = :cp"
		names["#arn"], names["#cp"] = AttrLeaseStream, AttrCheckpoint
		values[":arn"] = &types.AttributeValueMemberS{Value: r.pos.arn}
		values[":cp"] = &types.AttributeValueMemberM{Value: cp}
	}
	r.pos.mu.Unlock()
	cctx, cancel := s.callContext(ctx)
	out, err := s.api.UpdateItem(cctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       itemKey(ConfigPK, SKLeasePrefix+strconv.Itoa(r.lease)),
		UpdateExpression:          &update,
		ConditionExpression:       aws.String("#own = :me"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
		ReturnConsumedCapacity:    types.ReturnConsumedCapacityTotal,
	})
	cancel()
	switch {
	case err == nil:
		s.units.addOne(opFanout, true, out.ConsumedCapacity)
		r.until = now.Add(f.opts.LeaseTTL)
		return true
	case isConditionFailed(err):
		f.log.Warn("dynamo: fanout: another process took the stream lease", "lease", r.lease)
		return false
	case time.Now().Add(f.opts.LeaseTTL / 3).After(r.until):
		// Cannot tell whether it is still ours: stop before it may lapse.
		f.log.Warn("dynamo: fanout: cannot renew the stream lease; giving it up", "lease", r.lease, "err", classify(err))
		return false
	default:
		return true
	}
}

// releaseLease lets the lease lapse now (keeping the checkpoint), so that
// another process can take it without waiting for LeaseTTL. Best effort.
func (s *Store) releaseLease(r *leasedReader) {
	f := &s.fan
	cctx, cancel := s.callContext(context.Background())
	defer cancel()
	s.api.UpdateItem(cctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       itemKey(ConfigPK, SKLeasePrefix+strconv.Itoa(r.lease)),
		UpdateExpression:          aws.String("SET #exp = :zero"),
		ConditionExpression:       aws.String("#own = :me"),
		ExpressionAttributeNames:  map[string]string{"#own": AttrOwner, "#exp": AttrExpires},
		ExpressionAttributeValues: map[string]types.AttributeValue{":me": &types.AttributeValueMemberS{Value: f.id}, ":zero": num(0)},
	})
}

// leasedReader is the stream reader run under a lease.
type leasedReader struct {
	lease     int
	until     time.Time // the lease lapses then unless renewed
	resume    map[string]string
	resumeARN string
	pos       positions
	cancel    context.CancelFunc
	done      chan struct{} // closed when the reader and its forwarder ended
}

func (r *leasedReader) doneOrNil() <-chan struct{} {
	if r == nil {
		return nil
	}
	return r.done
}

func (r *leasedReader) stop() {
	r.cancel()
	<-r.done
}

// startReader starts reading the stream for r, resuming from its
// checkpoint when it belongs to the table's current stream, and passes
// every change on: to this process's watches and to every peer.
func (s *Store) startReader(ctx context.Context, r *leasedReader) error {
	f := &s.fan
	api, err := s.streamsAPI()
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	w := &streamWatch{
		s:      s,
		api:    api,
		opts:   f.opts.Stream.withDefaults(),
		shards: make(map[string]*shard),
		// Unbuffered: a change is handed over (and queued for every peer)
		// before the checkpoint moves past it.
		out:   make(chan store.Change),
		pos:   &r.pos,
		reads: &f.lease.reads,
	}
	w.done = make(chan result, w.opts.Readers)
	w.log = w.opts.Logger.With("table", s.table, "lease", r.lease)
	gap := false
	if r.resume != nil {
		arn, err := w.streamARN(rctx)
		if err != nil {
			cancel()
			return err
		}
		if arn == r.resumeARN {
			w.resume = r.resume
		} else {
			// The checkpoint is of a stream that is gone: what was
			// written meanwhile cannot be read.
			gap = true
		}
	}
	if err := w.start(rctx); err != nil {
		cancel()
		return err
	}
	r.cancel = cancel
	r.done = make(chan struct{})
	go w.run(rctx)
	go func() {
		defer close(r.done)
		if gap {
			s.deliver(store.Change{Gap: true})
			s.sendAll([]store.Change{{Gap: true}})
		}
		for c := range w.out {
			if !c.Gap {
				f.lease.changes.Add(1)
			}
			s.deliver(c)
			s.sendAll([]store.Change{c})
		}
	}()
	return nil
}

// String names a lease for logs.
func (r *leasedReader) String() string { return fmt.Sprintf("lease#%d", r.lease) }
