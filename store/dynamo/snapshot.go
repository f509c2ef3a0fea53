package dynamo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dynamerge/dynamerge/store"
)

// batchWriteMax is the most requests one BatchWriteItem may carry.
const batchWriteMax = 25

// SaveSnapshot stores snap in three steps, none of which can lose data:
//
//  1. put the chunks under a fresh random version ("snap#<seq>#<ver>#…"),
//     where no reader looks yet;
//  2. point the meta item at them, on condition that the record has reached
//     snap.Seq and its current snapshot is older: this is the commit point;
//  3. delete what the new snapshot makes obsolete (older snapshot chunks,
//     log items up to snap.Seq).
//
// A crash or failure after step 1 leaves unreferenced chunks, which step 3
// of a later snapshot deletes; one after step 2 leaves obsolete items that
// no read returns (readers start from the meta item) and that the next
// snapshot deletes too.
func (s *Store) SaveSnapshot(ctx context.Context, key store.Key, snap store.Snapshot) error {
	op := fmt.Sprintf("save snapshot %s seq %d", key, snap.Seq)
	if err := s.beginKey(ctx, key, op); err != nil {
		return err
	}
	m, err := s.getMeta(ctx, key)
	switch {
	case err != nil:
		return fmt.Errorf("dynamo: %s: %w", op, err)
	case m == nil:
		if snap.Seq == 0 {
			return nil
		}
		return fmt.Errorf("dynamo: %s: %w: record does not exist", op, store.ErrConflict)
	case snap.Seq <= m.floor():
		// Older than (or the same as) the current one, or of a history
		// purged since (a compaction that raced the purge).
		return nil
	case snap.Seq > m.seq:
		// The snapshot may include an entry whose meta update is pending
		// (readers return it): complete it, then the meta covers it.
		if m, err = s.rollForward(ctx, key, m); err != nil {
			return fmt.Errorf("dynamo: %s: %w", op, err)
		}
		if snap.Seq > m.last() {
			return fmt.Errorf("dynamo: %s: %w: log ends at %d", op, store.ErrConflict, m.last())
		}
	}

	ver := newVersion()
	chunks := max(1, (len(snap.Data)+ChunkSize-1)/ChunkSize)
	p := pk(key)
	writes := make([]types.WriteRequest, chunks)
	for i := range chunks {
		writes[i] = types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
			AttrPK:   &types.AttributeValueMemberS{Value: p},
			AttrSK:   &types.AttributeValueMemberS{Value: snapSK(snap.Seq, ver, i)},
			AttrData: &types.AttributeValueMemberB{Value: snap.Data[i*ChunkSize : min(len(snap.Data), (i+1)*ChunkSize)]},
		}}}
	}
	// The attribution of the entries this snapshot lets cleanup delete goes
	// with the chunks, before the commit point: once the meta points at
	// the snapshot, the entries (and their attribution) may go.
	for _, c := range store.ChunkRows(snap.Attribution, ChunkSize) {
		rows, err := store.EncodeRows(c.Rows, c.First)
		if err != nil {
			return fmt.Errorf("dynamo: %s: %w", op, err)
		}
		writes = append(writes, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
			AttrPK:   &types.AttributeValueMemberS{Value: p},
			AttrSK:   &types.AttributeValueMemberS{Value: attrSK(c.Seq, c.First)},
			AttrData: &types.AttributeValueMemberB{Value: rows},
		}}})
	}
	if err := s.batchWrite(ctx, opSnapshot, writes); err != nil {
		// Chunks written so far are unreferenced; a later snapshot sweeps
		// them.
		return fmt.Errorf("dynamo: %s: write chunks: %w", op, err)
	}

	committed, err := s.pointMeta(ctx, key, snap, ver, chunks)
	if err != nil {
		if !committed {
			s.deleteKeys(ctx, p, snapKeys(snap.Seq, ver, chunks), op)
		}
		return fmt.Errorf("dynamo: %s: %w", op, err)
	}
	if !committed {
		// Another process saved a snapshot at least as new meanwhile.
		s.deleteKeys(ctx, p, snapKeys(snap.Seq, ver, chunks), op)
		return nil
	}
	s.cleanup(ctx, key, snap.Seq, op)
	return nil
}

// pointMeta makes the meta item refer to the new snapshot. committed is
// false, with a nil error, when a snapshot at least as new is there already;
// it is true with an error when the outcome is unknown (the chunks must then
// stay).
func (s *Store) pointMeta(ctx context.Context, key store.Key, snap store.Snapshot, ver string, chunks int) (committed bool, err error) {
	cctx, cancel := s.callContext(ctx)
	defer cancel()
	out, err := s.api.UpdateItem(cctx, &dynamodb.UpdateItemInput{
		TableName:        &s.table,
		Key:              itemKey(pk(key), SKMeta),
		UpdateExpression: aws.String("SET #ssq = :ssq, #sver = :sver, #sn = :sn, #ssz = :ssz"),
		ConditionExpression: aws.String("attribute_exists(#pk) AND #seq >= :ssq AND " +
			"(attribute_not_exists(#ssq) OR #ssq < :ssq) AND (attribute_not_exists(#pseq) OR #pseq < :ssq)"),
		ExpressionAttributeNames: map[string]string{
			"#pk": AttrPK, "#seq": AttrSeq, "#ssq": AttrSnapSeq, "#pseq": AttrPurgedSeq, "#sver": AttrSnapVersion, "#sn": AttrSnapChunks, "#ssz": AttrSnapSize,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":ssq":  num(snap.Seq),
			":sver": &types.AttributeValueMemberS{Value: ver},
			":sn":   num(uint64(chunks)),
			":ssz":  num(uint64(len(snap.Data))),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		ReturnConsumedCapacity:              types.ReturnConsumedCapacityTotal,
	})
	if err == nil {
		s.units.addOne(opSnapshot, true, out.ConsumedCapacity)
		return true, nil
	}
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		// Unknown outcome: the meta may point at the new chunks.
		return true, fmt.Errorf("update meta: %w", classify(err))
	}
	if ccf.Item == nil {
		return false, fmt.Errorf("%w: record does not exist", store.ErrConflict)
	}
	m, derr := decodeMeta(ccf.Item)
	if derr != nil {
		return false, derr
	}
	if m.floor() >= snap.Seq {
		return false, nil
	}
	return false, fmt.Errorf("%w: log ends at %d", store.ErrConflict, m.seq)
}

// cleanup deletes, after the snapshot at seq is committed, the log items up
// to seq and every snapshot chunk of a seq below it (the previous snapshot
// and any left unreferenced by failed saves). It finds them with
// eventually consistent key-only queries, which cost an eighth of the
// deletes. Failures are logged, not returned: the snapshot is saved, and
// what is left is invisible to readers and deleted by the next snapshot.
func (s *Store) cleanup(ctx context.Context, key store.Key, seq uint64, op string) {
	if err := s.deleteHistory(ctx, opCleanup, key, seq); err != nil {
		slog.Warn("dynamo: snapshot saved, deleting obsolete items failed; the next snapshot retries", "op", op, "err", err)
	}
}

// deleteHistory deletes the record's log items up to seq and its snapshot
// chunks of seqs below seq, found with eventually consistent key-only
// queries (an eighth of the cost of the deletes).
func (s *Store) deleteHistory(ctx context.Context, op int, key store.Key, seq uint64) error {
	p := pk(key)
	ranges := [][2]string{
		{SKLogPrefix, logSK(seq, 0) + "#~"},                 // log#… up to every part of seq
		{SKSnapPrefix, SKSnapPrefix + padUint(seq, seqPad)}, // snap#<lower seq>#…
	}
	if op == opPurge {
		// The purged history's attribution goes with it; a compaction
		// keeps it.
		ranges = append(ranges, [2]string{SKAttrPrefix, attrSK(seq, 0)})
	}
	for _, r := range ranges {
		items, err := s.queryAll(ctx, op, &dynamodb.QueryInput{
			TableName:                 &s.table,
			KeyConditionExpression:    aws.String("#pk = :pk AND #sk BETWEEN :lo AND :hi"),
			ProjectionExpression:      aws.String("#sk"),
			ExpressionAttributeNames:  map[string]string{"#pk": AttrPK, "#sk": AttrSK},
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: p}, ":lo": &types.AttributeValueMemberS{Value: r[0]}, ":hi": &types.AttributeValueMemberS{Value: r[1]}},
		})
		if err != nil {
			return fmt.Errorf("query %s: %w", r[0], err)
		}
		if len(items) == 0 {
			continue
		}
		writes := make([]types.WriteRequest, len(items))
		for i, it := range items {
			writes[i] = types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: itemKey(p, skOf(it))}}
		}
		if err := s.batchWrite(ctx, op, writes); err != nil {
			return fmt.Errorf("delete %d items: %w", len(writes), err)
		}
	}
	return nil
}

// deleteKeys deletes the items of partition p with sort keys sks, logging
// failures (see cleanup).
func (s *Store) deleteKeys(ctx context.Context, p string, sks []string, op string) {
	if len(sks) == 0 {
		return
	}
	writes := make([]types.WriteRequest, len(sks))
	for i, sk := range sks {
		writes[i] = types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: itemKey(p, sk)}}
	}
	if err := s.batchWrite(ctx, opCleanup, writes); err != nil {
		slog.Warn("dynamo: deleting obsolete items failed; the next snapshot retries", "op", op, "items", len(sks), "err", err)
	}
}

func snapKeys(seq uint64, ver string, chunks int) []string {
	sks := make([]string, chunks)
	for i := range sks {
		sks[i] = snapSK(seq, ver, i)
	}
	return sks
}

// batchWrite runs writes in BatchWriteItem calls of at most 25, resending
// unprocessed items (throttled ones) with backoff until ctx ends.
func (s *Store) batchWrite(ctx context.Context, op int, writes []types.WriteRequest) error {
	for len(writes) > 0 {
		n := min(len(writes), batchWriteMax)
		pending := writes[:n]
		writes = writes[n:]
		for attempt := 0; len(pending) > 0; attempt++ {
			if attempt > 0 {
				if err := sleep(ctx, backoff(attempt)); err != nil {
					return fmt.Errorf("%w: %d items unprocessed: %w", store.ErrUnavailable, len(pending), err)
				}
			}
			cctx, cancel := s.callContext(ctx)
			out, err := s.api.BatchWriteItem(cctx, &dynamodb.BatchWriteItemInput{
				RequestItems:           map[string][]types.WriteRequest{s.table: pending},
				ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
			})
			cancel()
			if err != nil {
				return classify(err)
			}
			s.units.add(op, true, out.ConsumedCapacity...)
			pending = out.UnprocessedItems[s.table]
		}
	}
	return nil
}

// newVersion returns a random snapshot version: 8 hex digits, enough that
// two processes saving a snapshot of the same seq never pick the same one.
func newVersion() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}
