package dynamo

// This file spreads a collection's feed index entries over several
// partition keys, so that one collection is not capped by what one index
// partition key takes (about 1,000 write units per second; every Append
// moves its record's entry: a delete and a put).
//
// A table holds one setting, the feed shard count N, in its config item
// (ConfigPK / SKConfigFeed, attribute AttrFeedShards; absent means 1). With
// N = 1 a record's feed key is its collection, as it always was. With N > 1
// it is "<collection>#<k>", k = FNV-1a(id) mod N, so a record keeps one
// shard for its life and its own entries stay ordered. N only grows
// (RaiseFeedShards): a record written before the change keeps its old key
// until its next Append moves it, so Feed reads the unsharded key and every
// shard key of the current N, in parallel, and merges them by feed sort key
// — which is the same order in every shard (time, then id), so cursors are
// unchanged and old cursors keep working.
//
// Why this cannot hide a record: writers (once Open read N) refresh it in
// the background every feedShardsTTL and may use a smaller N than the
// table's (harmless: readers read every key a smaller N uses too); readers read N afresh for every page, so a reader
// that started before N was raised learns it on its next page, and its
// next reading from the end goes back to the floor (FeedOverlap before it
// started), which lists again whatever was written under the new N while it
// did not read those keys.

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dynamerge/dynamerge/store"
)

// Table-level items. Their partition key cannot be a record's: record keys
// always hold "/", and ConfigPK does not.
const (
	// ConfigPK is the partition key of the table's own items: its settings,
	// the stream reader leases and the process registry (fanout.go).
	ConfigPK = "!dynamerge"
	// SKConfigFeed is the sort key of the feed settings item.
	SKConfigFeed = "feed"
	// AttrFeedShards is the feed shard count (number) on the feed settings
	// item.
	AttrFeedShards = "fsh"
	// MaxFeedShards bounds the feed shard count: Feed reads every shard for
	// each page. 64 shards take about 64,000 index write units per second,
	// 30,000 appends per second to one collection.
	MaxFeedShards = 64
	// feedShardsTTL is how long a writer uses the feed shard count it read
	// before reading it again.
	feedShardsTTL = 30 * time.Second
	// feedReadersMax bounds the parallel queries of one Feed page.
	feedReadersMax = 16
)

// feedShards caches the table's feed shard count for writers.
type feedShards struct {
	n    atomic.Int64 // 0 until read
	read atomic.Int64 // when it was read, Unix ns
	mu   sync.Mutex   // one refresh at a time
}

// FeedShards reads the table's feed shard count (1 when never set).
func (s *Store) FeedShards(ctx context.Context) (int, error) {
	if err := s.begin(ctx); err != nil {
		return 0, fmt.Errorf("dynamo: feed shards: %w", err)
	}
	n, err := s.readFeedShards(ctx)
	if err != nil {
		return 0, fmt.Errorf("dynamo: feed shards: %w", err)
	}
	return n, nil
}

func (s *Store) readFeedShards(ctx context.Context) (int, error) {
	cctx, cancel := s.callContext(ctx)
	defer cancel()
	out, err := s.api.GetItem(cctx, &dynamodb.GetItemInput{
		TableName:              &s.table,
		Key:                    itemKey(ConfigPK, SKConfigFeed),
		ConsistentRead:         aws.Bool(true),
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	})
	if err != nil {
		return 0, classify(err)
	}
	s.units.addOne(opFeed, false, out.ConsumedCapacity)
	n := 1
	if v, ok := out.Item[AttrFeedShards].(*types.AttributeValueMemberN); ok {
		if n, err = strconv.Atoi(v.Value); err != nil || n < 1 || n > MaxFeedShards {
			return 0, fmt.Errorf("%w: feed shard count %q", errCorrupt, v.Value)
		}
	}
	s.shards.n.Store(int64(n))
	s.shards.read.Store(time.Now().UnixNano())
	return n, nil
}

// RaiseFeedShards sets the table's feed shard count to n unless it is
// already n or more (it never shrinks: see the file comment). It is
// idempotent. n must be between 1 and MaxFeedShards.
func (s *Store) RaiseFeedShards(ctx context.Context, n int) error {
	if n < 1 || n > MaxFeedShards {
		return fmt.Errorf("dynamo: raise feed shards: %w: %d shards, want 1 to %d", store.ErrInvalidKey, n, MaxFeedShards)
	}
	if err := s.begin(ctx); err != nil {
		return fmt.Errorf("dynamo: raise feed shards: %w", err)
	}
	cctx, cancel := s.callContext(ctx)
	defer cancel()
	_, err := s.api.UpdateItem(cctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       itemKey(ConfigPK, SKConfigFeed),
		UpdateExpression:          aws.String("SET #n = :n"),
		ConditionExpression:       aws.String("attribute_not_exists(#n) OR #n < :n"),
		ExpressionAttributeNames:  map[string]string{"#n": AttrFeedShards},
		ExpressionAttributeValues: map[string]types.AttributeValue{":n": num(uint64(n))},
	})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("dynamo: raise feed shards to %d: %w", n, classify(err))
	}
	_, err = s.readFeedShards(ctx)
	return err
}

// refreshFeedShards re-reads the shard count for writers, in the
// background, when the cached one is older than feedShardsTTL. It reads
// nothing until the count was read once (Open, Feed, FeedShards or
// RaiseFeedShards did): until then, and when a read fails, writers keep the
// count they have (1 if none), and a smaller count than the table's only
// puts entries on keys that readers read anyway.
func (s *Store) refreshFeedShards() {
	read := s.shards.read.Load()
	if read == 0 || time.Since(time.Unix(0, read)) < feedShardsTTL || !s.shards.mu.TryLock() {
		return
	}
	// Try again after a while whatever happens, not on every append.
	s.shards.read.Store(time.Now().UnixNano())
	go func() {
		defer s.shards.mu.Unlock()
		if s.closed.Load() {
			return
		}
		s.readFeedShards(context.Background())
	}()
}

// feedPK is the feed index partition key of the record k for the cached
// shard count.
func (s *Store) feedPK(k store.Key) string {
	return feedShardKey(k, int(s.shards.n.Load()))
}

// feedShardKey is the feed index partition key of k among n shards.
func feedShardKey(k store.Key, n int) string {
	if n <= 1 {
		return k.Collection
	}
	h := fnv.New32a()
	h.Write([]byte(k.ID))
	return feedShardPK(k.Collection, int(h.Sum32()%uint32(n)))
}

func feedShardPK(collection string, shard int) string {
	return collection + "#" + strconv.Itoa(shard)
}

// feedKeys are the feed index partition keys Feed reads for a collection
// with n shards: the unsharded one, then every shard's.
func feedKeys(collection string, n int) []string {
	keys := []string{collection}
	if n > 1 {
		for i := range n {
			keys = append(keys, feedShardPK(collection, i))
		}
	}
	return keys
}

// feedQuery reads up to limit+1 index items of one feed key after pos.
func (s *Store) feedQuery(ctx context.Context, fpk, pos string, limit int) ([]map[string]types.AttributeValue, error) {
	cond := "#fpk = :c"
	names := map[string]string{"#fpk": AttrFeedPK}
	values := map[string]types.AttributeValue{":c": &types.AttributeValueMemberS{Value: fpk}}
	if pos != "" {
		cond += " AND #fsk > :pos"
		names["#fsk"] = AttrFeedSK
		values[":pos"] = &types.AttributeValueMemberS{Value: pos}
	}
	in := &dynamodb.QueryInput{
		TableName:                 &s.table,
		IndexName:                 aws.String(IndexFeed),
		KeyConditionExpression:    &cond,
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
		ReturnConsumedCapacity:    types.ReturnConsumedCapacityTotal,
	}
	// One more than the page, to know whether there is more.
	var items []map[string]types.AttributeValue
	for len(items) <= limit {
		in.Limit = aws.Int32(int32(min(limit+1-len(items), 1000)))
		out, err := s.queryPage(ctx, opFeed, in)
		if err != nil {
			return nil, err
		}
		items = append(items, out.Items...)
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	return items, nil
}

// feedMerged reads every feed key of the collection after pos, in
// parallel, and returns their items in feed sort key order: up to limit+1
// of them, which are the first limit+1 of the union (each key gave its own
// first limit+1).
func (s *Store) feedMerged(ctx context.Context, collection, pos string, limit int) ([]map[string]types.AttributeValue, error) {
	n, err := s.readFeedShards(ctx)
	if err != nil {
		return nil, err
	}
	keys := feedKeys(collection, n)
	if len(keys) == 1 {
		return s.feedQuery(ctx, keys[0], pos, limit)
	}
	results := make([][]map[string]types.AttributeValue, len(keys))
	errs := make([]error, len(keys))
	sem := make(chan struct{}, feedReadersMax)
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i], errs[i] = s.feedQuery(ctx, k, pos, limit)
		}()
	}
	wg.Wait()
	var all []map[string]types.AttributeValue
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("feed key %s: %w", keys[i], err)
		}
		all = append(all, results[i]...)
	}
	slices.SortStableFunc(all, func(a, b map[string]types.AttributeValue) int {
		x, _ := a[AttrFeedSK].(*types.AttributeValueMemberS)
		y, _ := b[AttrFeedSK].(*types.AttributeValueMemberS)
		if x == nil || y == nil {
			return 0 // decodeFeedItem reports it
		}
		switch {
		case x.Value < y.Value:
			return -1
		case x.Value > y.Value:
			return 1
		}
		return 0
	})
	if len(all) > limit+1 {
		all = all[:limit+1]
	}
	return all, nil
}

func isConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}
