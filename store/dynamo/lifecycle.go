package dynamo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/dynamerge/dynamerge/store"
)

// DeletedBefore queries the deleted index (a sparse GSI that holds exactly
// the deleted records whose purge is not finished), as described by
// store.Store. A table without the index gives store.ErrNotSupported.
// Records whose purge a crash interrupted are listed again (at their
// purged seq), so that Purge finishes them.
func (s *Store) DeletedBefore(ctx context.Context, before time.Time, limit int) ([]store.DeletedRecord, error) {
	op := "list deleted records"
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("dynamo: %s: %w", op, err)
	}
	if limit <= 0 {
		limit = store.DefaultFeedLimit
	}
	out, err := s.queryPage(ctx, opPurge, &dynamodb.QueryInput{
		TableName:              &s.table,
		IndexName:              aws.String(IndexDeleted),
		KeyConditionExpression: aws.String("#dpk = :dpk AND #del < :before"),
		ExpressionAttributeNames: map[string]string{
			"#dpk": AttrDeletedPK, "#del": AttrDeletedAt,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":dpk":    &types.AttributeValueMemberS{Value: DeletedPK},
			":before": num(uint64(max(before.UnixMicro(), 0))),
		},
		Limit:                  aws.Int32(int32(min(limit, 1000))),
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "ValidationException" && strings.Contains(ae.ErrorMessage(), "index") {
			return nil, fmt.Errorf("dynamo: %s: %w: table %s has no %q index (see schema/dynamodb.md)", op, store.ErrNotSupported, s.table, IndexDeleted)
		}
		return nil, fmt.Errorf("dynamo: %s: %w", op, err)
	}
	recs := make([]store.DeletedRecord, 0, len(out.Items))
	for _, it := range out.Items {
		p, _ := it[AttrPK].(*types.AttributeValueMemberS)
		if p == nil {
			return nil, fmt.Errorf("dynamo: %s: %w: index item without %s", op, errCorrupt, AttrPK)
		}
		col, id, _ := strings.Cut(p.Value, "/")
		key := store.Key{Collection: col, ID: id}
		if err := key.Validate(); err != nil {
			return nil, fmt.Errorf("dynamo: %s: %w: %v", op, errCorrupt, err)
		}
		seq, err := getNum(it, AttrSeq)
		if err != nil {
			return nil, fmt.Errorf("dynamo: %s: %w", op, err)
		}
		del, err := getNum(it, AttrDeletedAt)
		if err != nil {
			return nil, fmt.Errorf("dynamo: %s: %w", op, err)
		}
		recs = append(recs, store.DeletedRecord{Key: key, Seq: seq, DeletedAt: time.UnixMicro(int64(del)).UTC()})
	}
	return recs, nil
}

// Purge purges a deleted record in three steps, each safe to repeat: (1)
// one conditional update turns the meta item into the tombstone (seq+1,
// purged, roots, no snapshot) if the record is still deleted at seq: that
// is the commit point, and an undelete appended before it wins; (2) the
// history's log items and snapshot chunks are deleted; (3) the record
// leaves the deleted index. A crash after (1) leaves the record in the
// index at its new seq, so the next sweep calls Purge again, which finishes
// (2) and (3).
func (s *Store) Purge(ctx context.Context, key store.Key, seq uint64, roots []string) error {
	op := fmt.Sprintf("purge %s at seq %d", key, seq)
	if err := s.beginKey(ctx, key, op); err != nil {
		return err
	}
	m, err := s.getMeta(ctx, key)
	switch {
	case err != nil:
		return fmt.Errorf("dynamo: %s: %w", op, err)
	case m == nil:
		return fmt.Errorf("dynamo: %s: %w", op, store.ErrNotFound)
	case m.purged && m.pending && m.seq == seq && m.purgedSeq == seq:
		// An interrupted purge: finish it.
		return s.finishPurge(ctx, key, seq, op)
	case m.seq != seq:
		return fmt.Errorf("dynamo: %s: %w: record is at seq %d", op, store.ErrConflict, m.seq)
	case m.deletedAt.IsZero():
		return fmt.Errorf("dynamo: %s: %w: record is not deleted", op, store.ErrConflict)
	case m.purged:
		return fmt.Errorf("dynamo: %s: %w: record is purged already", op, store.ErrConflict)
	}

	now := s.opts.Now()
	rootList := make([]types.AttributeValue, len(roots))
	for i, r := range roots {
		rootList[i] = &types.AttributeValueMemberS{Value: r}
	}
	// The commit point: the tombstone, on condition that the record is
	// still deleted at seq and that no entry follows seq in the log — an
	// append stores its log item before it moves the meta (see Append),
	// and that entry must not be discarded. The same transaction puts a
	// marker at log#<seq+1> on condition that nothing is there; Purge is
	// rare, so its double (transactional) units do not matter.
	in := &dynamodb.TransactWriteItemsInput{
		TransactItems: []types.TransactWriteItem{{Update: &types.Update{
			TableName: &s.table,
			Key:       itemKey(pk(key), SKMeta),
			UpdateExpression: aws.String("SET #seq = :next, #pseq = :next, #prg = :true, #heads = :none, #size = :zero, #upd = :upd, #fsk = :fsk, " +
				"#roots = list_append(if_not_exists(#roots, :none), :roots) REMOVE #ssq, #sver, #sn, #ssz"),
			ConditionExpression: aws.String("#seq = :seq AND attribute_exists(#del) AND attribute_not_exists(#prg)"),
			ExpressionAttributeNames: map[string]string{
				"#seq": AttrSeq, "#pseq": AttrPurgedSeq, "#prg": AttrPurged, "#heads": AttrHeads, "#size": AttrSize,
				"#upd": AttrUpdatedAt, "#fsk": AttrFeedSK, "#roots": AttrRoots, "#del": AttrDeletedAt,
				"#ssq": AttrSnapSeq, "#sver": AttrSnapVersion, "#sn": AttrSnapChunks, "#ssz": AttrSnapSize,
			},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":seq":   num(seq),
				":next":  num(seq + 1),
				":true":  &types.AttributeValueMemberBOOL{Value: true},
				":none":  &types.AttributeValueMemberL{Value: []types.AttributeValue{}},
				":zero":  num(0),
				":upd":   num(uint64(max(now.UnixMicro(), 0))),
				":fsk":   &types.AttributeValueMemberS{Value: feedSK(now, key.ID)},
				":roots": &types.AttributeValueMemberL{Value: rootList},
			},
		}}, {Put: &types.Put{
			// A marker at the tombstone's seq rather than a ConditionCheck
			// (which would need the dynamodb:ConditionCheckItem permission
			// too): it also makes a put of that seq by a writer that missed
			// the purge fail; step 2 deletes it with the history.
			TableName: &s.table,
			Item: map[string]types.AttributeValue{
				AttrPK:          &types.AttributeValueMemberS{Value: pk(key)},
				AttrSK:          &types.AttributeValueMemberS{Value: logSK(seq+1, 0)},
				AttrPurgeMarker: &types.AttributeValueMemberBOOL{Value: true},
			},
			ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
			ExpressionAttributeNames: map[string]string{"#pk": AttrPK},
		}}},
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	}
	cctx, cancel := s.callContext(ctx)
	out, err := s.api.TransactWriteItems(cctx, in)
	cancel()
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		c := readCancellation(tce)
		switch {
		case c.conditionFailed:
			if r := tce.CancellationReasons; len(r) > 1 && deref(r[1].Code) == reasonConditionFailed {
				// An append is stored past seq: complete it, so that the
				// sweep sees the record as it is.
				if _, rerr := s.rollForward(ctx, key, m); rerr != nil {
					slog.Warn("dynamo: completing an entry a purge found failed", "record", key.String(), "err", rerr)
				}
				return fmt.Errorf("dynamo: %s: %w: an entry follows seq %d", op, store.ErrConflict, seq)
			}
			return fmt.Errorf("dynamo: %s: %w: the record changed", op, store.ErrConflict)
		case c.conflict:
			return fmt.Errorf("dynamo: %s: %w: transaction conflict", op, store.ErrConflict)
		case c.throttled:
			return fmt.Errorf("dynamo: %s: %w: throttled: %w", op, store.ErrUnavailable, err)
		}
	}
	if err != nil {
		return fmt.Errorf("dynamo: %s: %w", op, classify(err))
	}
	s.units.add(opPurge, true, out.ConsumedCapacity...)
	s.units.purges.Add(1)
	return s.finishPurge(ctx, key, seq+1, op)
}

// finishPurge deletes the purged history (log items up to seq, snapshot
// chunks below it) and takes the record out of the deleted index.
func (s *Store) finishPurge(ctx context.Context, key store.Key, seq uint64, op string) error {
	if err := s.deleteHistory(ctx, opPurge, key, seq); err != nil {
		return fmt.Errorf("dynamo: %s: %w", op, err)
	}
	cctx, cancel := s.callContext(ctx)
	defer cancel()
	out, err := s.api.UpdateItem(cctx, &dynamodb.UpdateItemInput{
		TableName:                &s.table,
		Key:                      itemKey(pk(key), SKMeta),
		UpdateExpression:         aws.String("REMOVE #dpk"),
		ConditionExpression:      aws.String("#pseq = :seq"),
		ExpressionAttributeNames: map[string]string{"#dpk": AttrDeletedPK, "#pseq": AttrPurgedSeq},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":seq": &types.AttributeValueMemberN{Value: strconv.FormatUint(seq, 10)},
		},
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil // purged again since: that purge finishes itself
	}
	if err != nil {
		return fmt.Errorf("dynamo: %s: leave the deleted index: %w", op, classify(err))
	}
	s.units.addOne(opPurge, true, out.ConsumedCapacity)
	return nil
}
