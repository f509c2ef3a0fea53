package dynamo

import (
	"math"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Operation classes the store counts consumed capacity for.
const (
	opAppend   = iota // Append's writes (log item, meta update), and completing others' appends
	opSnapshot        // SaveSnapshot's chunk writes and meta update
	opCleanup         // deleting compacted log items and old snapshot chunks
	opRead            // Load and ReadLog (meta, snapshot chunks, log)
	opFeed            // Feed queries of the feed index
	opPurge           // DeletedBefore and Purge: the deleted index, tombstones, deleting a history
	opFanout          // fan-out mode: registrations, the registry, leases and checkpoints
	opCount
)

// Capacity is the capacity DynamoDB reported as consumed by this store since
// it was created (ReturnConsumedCapacity TOTAL on every call; indexes
// included), in capacity units. On-demand tables bill exactly these units.
type Capacity struct {
	// AppendWrites is the write units of Append (log items, meta and the
	// feed index update). Appends counts the entries stored.
	AppendWrites float64
	Appends      uint64
	// Completed counts appends this store completed for another writer:
	// entries stored whose meta update had not happened (see rollForward).
	// Their write units count in AppendWrites.
	Completed uint64
	// RefusedWrites counts Append's conditional writes (log item puts, meta
	// updates, completions) refused because another writer got there
	// first. DynamoDB bills a refused write like a write of the item (at
	// least 1 unit) but returns no ConsumedCapacity with the failure, so
	// AppendWrites leaves them out; count about 1 unit each for small
	// entries.
	RefusedWrites uint64
	// SnapshotWrites is the write units of SaveSnapshot's chunk puts and
	// meta update; CleanupWrites those of deleting what a snapshot made
	// obsolete (compacted log items, older snapshot chunks).
	SnapshotWrites, CleanupWrites float64
	// Reads is the read units of Load and ReadLog, FeedReads of Feed, and
	// CleanupReads of the queries that find what to delete.
	Reads, FeedReads, CleanupReads float64
	// PurgeWrites and PurgeReads are those of DeletedBefore and Purge: the
	// tombstone updates and the deletes of purged histories; Purges counts
	// the purges done.
	PurgeWrites, PurgeReads float64
	Purges                  uint64
	// FanoutWrites and FanoutReads are those of the fan-out mode's
	// registrations, registry reads, leases and stream checkpoints.
	FanoutWrites, FanoutReads float64
}

// capacityCounters accumulates Capacity without locks: milli-units, atomic.
type capacityCounters struct {
	read, write [opCount]atomic.Uint64
	appends     atomic.Uint64
	completed   atomic.Uint64
	refused     atomic.Uint64
	purges      atomic.Uint64
}

func (c *capacityCounters) add(op int, write bool, cc ...types.ConsumedCapacity) {
	var total float64
	for _, x := range cc {
		if x.CapacityUnits != nil {
			total += *x.CapacityUnits
		}
	}
	m := uint64(math.Round(total * 1000))
	if write {
		c.write[op].Add(m)
	} else {
		c.read[op].Add(m)
	}
}

func (c *capacityCounters) addOne(op int, write bool, cc *types.ConsumedCapacity) {
	if cc != nil {
		c.add(op, write, *cc)
	}
}

// Capacity returns the capacity consumed so far, for metrics and benchmarks.
func (s *Store) Capacity() Capacity {
	u := func(a *atomic.Uint64) float64 { return float64(a.Load()) / 1000 }
	c := &s.units
	return Capacity{
		AppendWrites:   u(&c.write[opAppend]),
		Appends:        c.appends.Load(),
		Completed:      c.completed.Load(),
		RefusedWrites:  c.refused.Load(),
		SnapshotWrites: u(&c.write[opSnapshot]),
		CleanupWrites:  u(&c.write[opCleanup]),
		Reads:          u(&c.read[opRead]),
		FeedReads:      u(&c.read[opFeed]),
		CleanupReads:   u(&c.read[opCleanup]),
		PurgeWrites:    u(&c.write[opPurge]),
		PurgeReads:     u(&c.read[opPurge]),
		Purges:         c.purges.Load(),
		FanoutWrites:   u(&c.write[opFanout]),
		FanoutReads:    u(&c.read[opFanout]),
	}
}
