package dynamo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dynamerge/dynamerge/store"
)

// metaItem is the decoded meta item of a record.
type metaItem struct {
	seq        uint64
	heads      []string
	snapSeq    uint64 // 0: no snapshot
	snapVer    string
	snapChunks int
	snapSize   int
	deletedAt  time.Time // zero: not deleted
	purgedSeq  uint64    // log entries up to it were purged
	purged     bool      // purged, nothing appended since
	pending    bool      // deleted, in the deleted index (a purge not finished)
	roots      []string
	updatedAt  time.Time
}

// floor is the seq up to which the log holds no entries (0 for a record
// without a meta item).
func (m *metaItem) floor() uint64 {
	if m == nil {
		return 0
	}
	return max(m.snapSeq, m.purgedSeq)
}

// last is the meta item's seq (0 for a record without one). The log may
// hold one more entry, whose meta update is pending (see Append).
func (m *metaItem) last() uint64 {
	if m == nil {
		return 0
	}
	return m.seq
}

// errMoved says that a record changed under a multi-step read (a
// concurrent compaction removed what an earlier step pointed to): read it
// again from its meta item.
var errMoved = errors.New("dynamo: record changed during the read")

// Load reads the record's meta item, then its snapshot chunks and the log
// entries after the snapshot, all with strongly consistent reads. When a
// concurrent compaction removes what the meta item pointed to between those
// steps, it starts again (up to Options.ReadRetries times).
func (s *Store) Load(ctx context.Context, key store.Key) (*store.Record, error) {
	op := fmt.Sprintf("load %s", key)
	if err := s.beginKey(ctx, key, op); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		rec, err := s.loadOnce(ctx, key)
		if !errors.Is(err, errMoved) {
			if err != nil {
				return nil, fmt.Errorf("dynamo: %s: %w", op, err)
			}
			s.known.saw(key, rec.Seq)
			return rec, nil
		}
		if attempt+1 >= s.opts.ReadRetries {
			return nil, fmt.Errorf("dynamo: %s: %w: %w %d times", op, store.ErrUnavailable, err, attempt+1)
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return nil, fmt.Errorf("dynamo: %s: %w", op, err)
		}
	}
}

func (s *Store) loadOnce(ctx context.Context, key store.Key) (*store.Record, error) {
	m, logged, err := s.getMetaOrLog(ctx, key)
	if err != nil {
		return nil, err
	}
	if m == nil && !logged {
		return nil, store.ErrNotFound
	}
	if m == nil {
		// A first append stored but not completed (its writer crashed
		// between its two writes) is the record: read and complete it.
		entries, err := s.readLog(ctx, key, nil, 1)
		if err != nil {
			return nil, err
		}
		if len(entries) == 0 {
			return nil, store.ErrNotFound
		}
		if m, err = s.getMeta(ctx, key); err != nil {
			return nil, err
		}
		if m == nil {
			// Not completed yet: the log is the truth.
			return &store.Record{Key: key, Seq: entries[len(entries)-1].Seq, Entries: entries}, nil
		}
	}
	rec := &store.Record{Key: key, Seq: m.seq, DeletedAt: m.deletedAt, UpdatedAt: m.updatedAt, Purged: m.purged, Roots: m.roots}
	if m.snapSeq > 0 {
		data, err := s.readSnapshot(ctx, key, m)
		if err != nil {
			return nil, err
		}
		rec.Snapshot = &store.Snapshot{Seq: m.snapSeq, Data: data}
	}
	// Read the log even when the meta says it is empty past the floor: an
	// entry whose meta update is pending is there.
	entries, err := s.readLog(ctx, key, m, m.floor()+1)
	if err != nil {
		return nil, err
	}
	if len(entries) > 0 {
		rec.Entries = entries
		rec.Seq = entries[len(entries)-1].Seq
	}
	return rec, nil
}

// ReadLog returns the entries after `after`: one strongly consistent Query
// from log#<after+1> through the meta item (which sorts right after the log
// items), so that it costs what reading the meta item alone did when
// nothing is new, and returns an entry whose meta update is pending (see
// Append) too. An `after` below the snapshot's seq is store.ErrCompacted,
// whether or not the compacted items are deleted yet.
func (s *Store) ReadLog(ctx context.Context, key store.Key, after uint64) ([]store.Entry, error) {
	op := fmt.Sprintf("read log %s after %d", key, after)
	if err := s.beginKey(ctx, key, op); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		items, err := s.queryAll(ctx, opRead, &dynamodb.QueryInput{
			TableName:                 &s.table,
			ConsistentRead:            aws.Bool(true),
			KeyConditionExpression:    aws.String("#pk = :pk AND #sk BETWEEN :from AND :meta"),
			ExpressionAttributeNames:  map[string]string{"#pk": AttrPK, "#sk": AttrSK},
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: pk(key)}, ":from": &types.AttributeValueMemberS{Value: logSK(after+1, 0)}, ":meta": &types.AttributeValueMemberS{Value: SKMeta}},
		})
		if err != nil {
			return nil, fmt.Errorf("dynamo: %s: %w", op, err)
		}
		var m *metaItem
		if n := len(items); n > 0 && skOf(items[n-1]) == SKMeta {
			if m, err = decodeMeta(items[n-1]); err != nil {
				return nil, fmt.Errorf("dynamo: %s: %w", op, err)
			}
			items = items[:n-1]
		}
		if after < m.floor() {
			return nil, fmt.Errorf("dynamo: %s: %w: snapshot or purge at %d", op, store.ErrCompacted, m.floor())
		}
		entries, err := s.logTail(ctx, key, m, after+1, items)
		if err == nil {
			s.known.saw(key, m.last())
			if len(entries) > 0 {
				s.known.saw(key, entries[len(entries)-1].Seq)
			}
			return entries, nil
		}
		if !errors.Is(err, errMoved) {
			return nil, fmt.Errorf("dynamo: %s: %w", op, err)
		}
		if attempt+1 >= s.opts.ReadRetries {
			return nil, fmt.Errorf("dynamo: %s: %w: %w %d times", op, store.ErrUnavailable, err, attempt+1)
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return nil, fmt.Errorf("dynamo: %s: %w", op, err)
		}
	}
}

// getMetaOrLog reads the record's meta item, in one request as getMeta
// does, and for a record without one says whether it has a log item (a
// first append whose meta update is pending): a strongly consistent Query
// of the last item from "log#" through "meta", which is the meta item when
// there is one.
func (s *Store) getMetaOrLog(ctx context.Context, key store.Key) (m *metaItem, logged bool, err error) {
	out, err := s.queryPage(ctx, opRead, &dynamodb.QueryInput{
		TableName:                 &s.table,
		ConsistentRead:            aws.Bool(true),
		KeyConditionExpression:    aws.String("#pk = :pk AND #sk BETWEEN :log AND :meta"),
		ExpressionAttributeNames:  map[string]string{"#pk": AttrPK, "#sk": AttrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: pk(key)}, ":log": &types.AttributeValueMemberS{Value: SKLogPrefix}, ":meta": &types.AttributeValueMemberS{Value: SKMeta}},
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(1),
		ReturnConsumedCapacity:    types.ReturnConsumedCapacityTotal,
	})
	if err != nil {
		return nil, false, fmt.Errorf("get meta: %w", err)
	}
	if len(out.Items) == 0 {
		return nil, false, nil
	}
	if skOf(out.Items[0]) != SKMeta {
		return nil, true, nil
	}
	m, err = decodeMeta(out.Items[0])
	return m, false, err
}

// getMeta reads the record's meta item (strongly consistent); nil when the
// record does not exist.
func (s *Store) getMeta(ctx context.Context, key store.Key) (*metaItem, error) {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:              &s.table,
		Key:                    itemKey(pk(key), SKMeta),
		ConsistentRead:         aws.Bool(true),
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	})
	if err != nil {
		return nil, fmt.Errorf("get meta: %w", classify(err))
	}
	s.units.addOne(opRead, false, out.ConsumedCapacity)
	if out.Item == nil {
		return nil, nil
	}
	return decodeMeta(out.Item)
}

func decodeMeta(item map[string]types.AttributeValue) (*metaItem, error) {
	var m metaItem
	var err error
	if m.seq, err = getNum(item, AttrSeq); err != nil {
		return nil, err
	}
	if m.heads, err = decodeHeads(item); err != nil {
		return nil, err
	}
	if _, ok := item[AttrUpdatedAt]; ok {
		upd, err := getNum(item, AttrUpdatedAt)
		if err != nil {
			return nil, err
		}
		m.updatedAt = time.UnixMicro(int64(upd)).UTC()
	}
	if _, ok := item[AttrDeletedAt]; ok {
		del, err := getNum(item, AttrDeletedAt)
		if err != nil {
			return nil, err
		}
		m.deletedAt = time.UnixMicro(int64(del)).UTC()
	}
	if _, ok := item[AttrPurgedSeq]; ok {
		if m.purgedSeq, err = getNum(item, AttrPurgedSeq); err != nil {
			return nil, err
		}
	}
	_, m.purged = item[AttrPurged]
	_, m.pending = item[AttrDeletedPK]
	if l, ok := item[AttrRoots].(*types.AttributeValueMemberL); ok {
		for _, v := range l.Value {
			r, ok := v.(*types.AttributeValueMemberS)
			if !ok {
				return nil, fmt.Errorf("%w: meta %s holds a %T", errCorrupt, AttrRoots, v)
			}
			m.roots = append(m.roots, r.Value)
		}
	}
	if _, ok := item[AttrSnapSeq]; !ok {
		return &m, nil
	}
	if m.snapSeq, err = getNum(item, AttrSnapSeq); err != nil {
		return nil, err
	}
	ver, ok := item[AttrSnapVersion].(*types.AttributeValueMemberS)
	if !ok {
		return nil, fmt.Errorf("%w: meta has a snapshot seq but no version", errCorrupt)
	}
	m.snapVer = ver.Value
	n, err := getNum(item, AttrSnapChunks)
	if err != nil {
		return nil, err
	}
	size, err := getNum(item, AttrSnapSize)
	if err != nil {
		return nil, err
	}
	m.snapChunks, m.snapSize = int(n), int(size)
	return &m, nil
}

// decodeHeads reads AttrHeads, a list of strings (empty when absent).
func decodeHeads(item map[string]types.AttributeValue) ([]string, error) {
	heads := []string{}
	hl, ok := item[AttrHeads].(*types.AttributeValueMemberL)
	if !ok {
		return heads, nil
	}
	for _, h := range hl.Value {
		hs, ok := h.(*types.AttributeValueMemberS)
		if !ok {
			return nil, fmt.Errorf("%w: heads hold a %T", errCorrupt, h)
		}
		heads = append(heads, hs.Value)
	}
	return heads, nil
}

// getNum reads a non-negative integer attribute.
func getNum(item map[string]types.AttributeValue, name string) (uint64, error) {
	v, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("%w: attribute %s missing or not a number", errCorrupt, name)
	}
	n, err := strconv.ParseUint(v.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: attribute %s = %q", errCorrupt, name, v.Value)
	}
	return n, nil
}

// readSnapshot reads and joins the chunks of the snapshot m points to.
func (s *Store) readSnapshot(ctx context.Context, key store.Key, m *metaItem) ([]byte, error) {
	prefix := snapPrefix(m.snapSeq, m.snapVer)
	items, err := s.queryAll(ctx, opRead, &dynamodb.QueryInput{
		TableName:                 &s.table,
		ConsistentRead:            aws.Bool(true),
		KeyConditionExpression:    aws.String("#pk = :pk AND begins_with(#sk, :prefix)"),
		ExpressionAttributeNames:  map[string]string{"#pk": AttrPK, "#sk": AttrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: pk(key)}, ":prefix": &types.AttributeValueMemberS{Value: prefix}},
	})
	if err != nil {
		return nil, fmt.Errorf("read snapshot %d: %w", m.snapSeq, err)
	}
	if len(items) != m.snapChunks {
		// A newer snapshot replaced this one and its chunks are being
		// deleted: the meta item read before is stale.
		return nil, fmt.Errorf("%w: snapshot %d has %d of its %d chunks", errMoved, m.snapSeq, len(items), m.snapChunks)
	}
	data := make([]byte, 0, m.snapSize)
	for i, it := range items {
		if sk := skOf(it); sk != snapSK(m.snapSeq, m.snapVer, i) {
			return nil, fmt.Errorf("%w: snapshot %d: chunk %d has sort key %q", errMoved, m.snapSeq, i, sk)
		}
		d, ok := it[AttrData].(*types.AttributeValueMemberB)
		if !ok {
			return nil, fmt.Errorf("%w: snapshot chunk %s without data", errCorrupt, skOf(it))
		}
		data = append(data, d.Value...)
	}
	if len(data) != m.snapSize {
		return nil, fmt.Errorf("%w: snapshot %d has %d bytes, meta says %d", errCorrupt, m.snapSeq, len(data), m.snapSize)
	}
	return data, nil
}

// readLog reads the entries from seq `from` on (see logTail for what it
// returns), m being the meta item read before (nil: none).
func (s *Store) readLog(ctx context.Context, key store.Key, m *metaItem, from uint64) ([]store.Entry, error) {
	items, err := s.queryAll(ctx, opRead, &dynamodb.QueryInput{
		TableName:                 &s.table,
		ConsistentRead:            aws.Bool(true),
		KeyConditionExpression:    aws.String("#pk = :pk AND #sk BETWEEN :from AND :end"),
		ExpressionAttributeNames:  map[string]string{"#pk": AttrPK, "#sk": AttrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: pk(key)}, ":from": &types.AttributeValueMemberS{Value: logSK(from, 0)}, ":end": &types.AttributeValueMemberS{Value: skLogEnd}},
	})
	if err != nil {
		return nil, fmt.Errorf("read log from %d: %w", from, err)
	}
	return s.logTail(ctx, key, m, from, items)
}

// PendingGrace is how old an entry whose meta update is pending must be
// before a reader completes it (rollForward): its writer normally does so
// within milliseconds, but a loaded table or throttling (the SDK's retries
// back off for seconds) can hold it longer, and a reader racing it wastes
// a billed write. The next writer of the record does not wait.
const PendingGrace = 5 * time.Second

// logTail joins the log items read from seq `from` on into entries, and
// checks that they run gap-free from `from` to at least m's seq (the log
// may have grown since m was read). A shortfall means a compaction removed
// entries after m was read: errMoved. Past m's seq it returns what follows
// gap-free: the entry whose meta update is pending, if any, which it
// completes when that is older than PendingGrace (a crashed writer's).
func (s *Store) logTail(ctx context.Context, key store.Key, m *metaItem, from uint64, items []map[string]types.AttributeValue) ([]store.Entry, error) {
	through := m.last()
	entries, err := assembleLog(items)
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 || entries[0].Seq != from {
		if through < from {
			return []store.Entry{}, nil // nothing was promised
		}
		return nil, fmt.Errorf("%w: log from %d starts at %v", errMoved, from, firstSeq(entries))
	}
	for i := 1; i < len(entries); i++ {
		if entries[i].Seq != entries[i-1].Seq+1 {
			if entries[i-1].Seq >= through {
				// Past what the meta promised: cut at the gap.
				entries = entries[:i]
				break
			}
			return nil, fmt.Errorf("%w: log jumps from %d to %d", errMoved, entries[i-1].Seq, entries[i].Seq)
		}
	}
	last := entries[len(entries)-1].Seq
	if last < through {
		return nil, fmt.Errorf("%w: log ends at %d, meta says %d", errMoved, last, through)
	}
	if last > through {
		s.completeStale(ctx, key, through+1, items)
	}
	return entries, nil
}

// completeStale completes the pending entry seq (its log item is among
// items) if it is older than PendingGrace, and checks a younger one again
// once it is (completeLater). A failure is left for the next reader or
// writer: the entry is returned either way.
func (s *Store) completeStale(ctx context.Context, key store.Key, seq uint64, items []map[string]types.AttributeValue) {
	sk := logSK(seq, 0)
	for _, it := range items {
		if skOf(it) != sk {
			continue
		}
		em, ok, err := decodeEntryMeta(it)
		if err != nil || !ok {
			return
		}
		if age := s.opts.Now().Sub(em.at); age < PendingGrace {
			s.completeLater(key, seq, PendingGrace-age)
			return
		}
		// One completion of a record at a time per store: the readers of a
		// hot record would otherwise all send the same update, and all but
		// one be refused (and billed).
		if !s.known.completing.claim(key) {
			return
		}
		defer s.known.completing.release(key)
		if _, err := s.completeEntry(ctx, key, seq, it); err != nil {
			slog.Warn("dynamo: completing a stored entry whose meta update is pending failed; the next reader or writer retries", "record", key.String(), "seq", seq, "err", err)
		}
		return
	}
}

// completeLater checks pending entry seq of key again after d, and
// completes it if its meta update still has not happened. A young pending
// entry is left to its writer, but the writer may have given up
// (ErrUnavailable) and the caller of this read may acknowledge the entry's
// changes (a client's retry through another process finds them stored):
// without this, nothing would complete it until the record is read or
// written again, and the feed would not list the acknowledged change. One
// check per record at a time; none once the store is closed.
func (s *Store) completeLater(key store.Key, seq uint64, d time.Duration) {
	if s.closed.Load() || !s.known.scheduled.claim(key) {
		return
	}
	time.AfterFunc(d, func() {
		defer s.known.scheduled.release(key)
		if s.closed.Load() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*s.opts.CallTimeout)
		defer cancel()
		m, err := s.getMeta(ctx, key)
		if err == nil && m.last() == seq-1 {
			_, err = s.rollForward(ctx, key, m)
		}
		if err != nil {
			slog.Warn("dynamo: completing a stored entry whose meta update is pending failed; the next reader or writer retries", "record", key.String(), "seq", seq, "err", err)
		}
	})
}

func firstSeq(es []store.Entry) any {
	if len(es) == 0 {
		return "nothing"
	}
	return es[0].Seq
}

// assembleLog joins log items (in sort key order) into entries, checking
// each against its length and hash. Queries are read-committed, not
// serializable: an Append committing while the query runs may show only
// some of its parts. Such an entry, and everything after it, is left out:
// the result is the log as it was a moment earlier.
func assembleLog(items []map[string]types.AttributeValue) ([]store.Entry, error) {
	var entries []store.Entry
	for i := 0; i < len(items); {
		sk := skOf(items[i])
		seq, part, err := parseLogSK(sk)
		if err != nil {
			return nil, err
		}
		if part != 0 {
			// A later part whose first part is not visible (or was
			// deleted by compaction first): stop here.
			return entries, nil
		}
		first := items[i]
		parts, err := getNum(first, AttrParts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sk, err)
		}
		length, err := getNum(first, AttrLen)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sk, err)
		}
		hash, _ := first[AttrEntryHash].(*types.AttributeValueMemberB)
		if parts == 0 || parts > maxParts || length > MaxEntrySize || hash == nil {
			return nil, fmt.Errorf("%w: %s: %d parts, %d bytes, hash %v", errCorrupt, sk, parts, length, hash != nil)
		}
		data := make([]byte, 0, length)
		for p := range int(parts) {
			if i+p >= len(items) {
				return entries, nil // the rest is not visible yet
			}
			it := items[i+p]
			if s2, p2, err := parseLogSK(skOf(it)); err != nil || s2 != seq || p2 != p {
				return entries, nil
			}
			d, ok := it[AttrData].(*types.AttributeValueMemberB)
			if !ok {
				return nil, fmt.Errorf("%w: %s without data", errCorrupt, skOf(it))
			}
			data = append(data, d.Value...)
		}
		if sum := sha256.Sum256(data); uint64(len(data)) != length || !bytes.Equal(sum[:], hash.Value) {
			return nil, fmt.Errorf("%w: entry %d: %d bytes that do not match its length %d or hash", errCorrupt, seq, len(data), length)
		}
		e := store.Entry{Seq: seq, Changes: data}
		if a, ok := first[AttrAttribution].(*types.AttributeValueMemberB); ok {
			if e.By, e.At, err = store.DecodeEntryAttribution(a.Value, len(data)); err != nil {
				return nil, fmt.Errorf("%w: entry %d: %v", errCorrupt, seq, err)
			}
		}
		entries = append(entries, e)
		i += int(parts)
	}
	return entries, nil
}

// queryAll runs a Query to the end, page by page, each page under its own
// call deadline, and counts the read capacity under op.
func (s *Store) queryAll(ctx context.Context, op int, in *dynamodb.QueryInput) ([]map[string]types.AttributeValue, error) {
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	var items []map[string]types.AttributeValue
	for {
		out, err := s.queryPage(ctx, op, in)
		if err != nil {
			return nil, err
		}
		items = append(items, out.Items...)
		if len(out.LastEvaluatedKey) == 0 {
			return items, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

func (s *Store) queryPage(ctx context.Context, op int, in *dynamodb.QueryInput) (*dynamodb.QueryOutput, error) {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	out, err := s.api.Query(ctx, in)
	if err != nil {
		return nil, classify(err)
	}
	s.units.addOne(op, false, out.ConsumedCapacity)
	return out, nil
}

func skOf(item map[string]types.AttributeValue) string {
	if v, ok := item[AttrSK].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// ReadAttribution returns the rows compactions kept, as described by
// store.Store: one strongly consistent Query of the record's "attr#" items
// (about 42 bytes per change: some 10 read units per thousand changes).
func (s *Store) ReadAttribution(ctx context.Context, key store.Key) ([]store.Attributed, error) {
	op := "read attribution " + key.String()
	if err := s.beginKey(ctx, key, op); err != nil {
		return nil, err
	}
	items, err := s.queryAll(ctx, opRead, &dynamodb.QueryInput{
		TableName:                &s.table,
		ConsistentRead:           aws.Bool(true),
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk BETWEEN :lo AND :hi"),
		ExpressionAttributeNames: map[string]string{"#pk": AttrPK, "#sk": AttrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: pk(key)},
			":lo": &types.AttributeValueMemberS{Value: SKAttrPrefix},
			":hi": &types.AttributeValueMemberS{Value: skAttrEnd},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("dynamo: %s: %w", op, err)
	}
	chunks := make([]store.RowChunk, 0, len(items))
	for _, it := range items {
		d, ok := it[AttrData].(*types.AttributeValueMemberB)
		if !ok {
			return nil, fmt.Errorf("dynamo: %s: %w: %s without data", op, errCorrupt, skOf(it))
		}
		rows, first, err := store.DecodeRows(d.Value)
		if err != nil {
			return nil, fmt.Errorf("dynamo: %s: %w: %s: %v", op, errCorrupt, skOf(it), err)
		}
		if len(rows) > 0 {
			chunks = append(chunks, store.RowChunk{Seq: rows[0].Seq, First: first, Rows: rows})
		}
	}
	return store.MergeRows(chunks), nil
}
