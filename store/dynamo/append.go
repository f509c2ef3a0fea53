package dynamo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dynamerge/dynamerge/store"
)

// Append writes entry e of the record as one transaction: the entry's log
// items (one per ChunkSize bytes) and the update of the meta item, which is
// conditional on the meta's seq being e.Seq-1 (absent for seq 1). Exactly
// one of any number of writers of the same seq passes that condition; the
// others get store.ErrConflict and write nothing. See the package
// documentation for the handling of failures whose outcome is unknown.
func (s *Store) Append(ctx context.Context, key store.Key, e store.Entry, meta store.AppendMeta) error {
	op := fmt.Sprintf("append %s seq %d", key, e.Seq)
	if err := key.Validate(); err != nil {
		return fmt.Errorf("dynamo: %s: %w", op, err)
	}
	if err := s.begin(ctx); err != nil {
		return fmt.Errorf("dynamo: %s: %w", op, err)
	}
	if e.Seq == 0 {
		return fmt.Errorf("dynamo: %s: %w: log seqs start at 1", op, store.ErrConflict)
	}
	if len(e.Changes) > MaxEntrySize {
		return fmt.Errorf("dynamo: %s: %w: entry of %d bytes, at most %d fit one transaction", op, store.ErrTooLarge, len(e.Changes), MaxEntrySize)
	}
	hash := sha256.Sum256(e.Changes)
	s.refreshFeedShards()
	for attempt := 0; ; attempt++ {
		// A fresh input each attempt: the SDK fills in a new idempotency
		// token (ClientRequestToken) for it, which its own retries of this
		// attempt reuse, so that a retried request that had landed is not
		// applied twice.
		in := s.appendInput(key, e, meta, hash[:])
		err := s.transact(ctx, in)
		if err == nil {
			s.units.appends.Add(1)
			s.announce(key, e.Seq, meta)
			return nil
		}
		var tce *types.TransactionCanceledException
		if !errors.As(err, &tce) {
			// Anything but a cancellation may hide a write that landed (a
			// timeout, a lost response, or an SDK retry that failed after
			// an earlier attempt succeeded): find out before answering.
			err = s.resolve(ctx, key, e.Seq, hash[:], op, err)
			if err == nil {
				s.announce(key, e.Seq, meta)
			}
			return err
		}
		c := readCancellation(tce)
		switch {
		case c.conditionFailed:
			return fmt.Errorf("dynamo: %s: %w", op, store.ErrConflict)
		case c.throttled:
			return fmt.Errorf("dynamo: %s: %w: throttled: %w", op, store.ErrUnavailable, err)
		case len(c.other) > 0:
			return fmt.Errorf("dynamo: %s: transaction cancelled: %v: %w", op, c.other, err)
		case c.conflict && attempt < s.opts.ConflictRetries:
			// Another transaction on the meta item was in flight; nothing
			// of ours was written. Back off with jitter and try again.
			if err := sleep(ctx, backoff(attempt)); err != nil {
				return fmt.Errorf("dynamo: %s: %w", op, err)
			}
		case c.conflict:
			// Still contended: most likely another writer is taking this
			// seq. ErrConflict makes the caller re-read the log and retry,
			// which is right either way since nothing was written.
			return fmt.Errorf("dynamo: %s: %w: transaction conflict after %d retries", op, store.ErrConflict, attempt)
		default:
			return fmt.Errorf("dynamo: %s: transaction cancelled without a reason: %w", op, classify(err))
		}
	}
}

// transact runs one TransactWriteItems call under the call deadline and
// counts its capacity.
func (s *Store) transact(ctx context.Context, in *dynamodb.TransactWriteItemsInput) error {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	out, err := s.api.TransactWriteItems(ctx, in)
	if err != nil {
		return err
	}
	s.units.add(opAppend, true, out.ConsumedCapacity...)
	return nil
}

// resolve settles an Append whose outcome is unknown: it reads the first log
// item of seq (consistently) and compares its entry hash with ours. Ours:
// the write landed, and Append succeeds. Another: someone else won the seq
// (ErrConflict). None: it did not land, or has not yet; the caller gets
// store.ErrUnavailable, and if it lands later the caller's next Append of
// that seq gets ErrConflict and finds the entry in the log, so nothing is
// lost or written twice. The read runs even when ctx is done (that is often
// why the outcome is unknown), under its own call deadline.
func (s *Store) resolve(ctx context.Context, key store.Key, seq uint64, hash []byte, op string, cause error) error {
	rctx, cancel := s.callContext(context.WithoutCancel(ctx))
	defer cancel()
	out, err := s.api.GetItem(rctx, &dynamodb.GetItemInput{
		TableName:                &s.table,
		Key:                      itemKey(pk(key), logSK(seq, 0)),
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     aws.String("#h"),
		ExpressionAttributeNames: map[string]string{"#h": AttrEntryHash},
		ReturnConsumedCapacity:   types.ReturnConsumedCapacityTotal,
	})
	if err != nil {
		return fmt.Errorf("dynamo: %s: %w (outcome unknown, checking it failed too: %v)", op, classify(cause), err)
	}
	s.units.addOne(opRead, false, out.ConsumedCapacity)
	if out.Item == nil {
		return fmt.Errorf("dynamo: %s: %w (not written)", op, classify(cause))
	}
	got, _ := out.Item[AttrEntryHash].(*types.AttributeValueMemberB)
	if got != nil && bytes.Equal(got.Value, hash) {
		s.units.appends.Add(1)
		return nil
	}
	return fmt.Errorf("dynamo: %s: %w (after %v)", op, store.ErrConflict, cause)
}

// appendInput builds Append's transaction.
func (s *Store) appendInput(key store.Key, e store.Entry, meta store.AppendMeta, hash []byte) *dynamodb.TransactWriteItemsInput {
	p := pk(key)
	parts := max(1, (len(e.Changes)+ChunkSize-1)/ChunkSize)
	items := make([]types.TransactWriteItem, 0, parts+1)
	for i := range parts {
		chunk := e.Changes[i*ChunkSize : min(len(e.Changes), (i+1)*ChunkSize)]
		item := map[string]types.AttributeValue{
			AttrPK:   &types.AttributeValueMemberS{Value: p},
			AttrSK:   &types.AttributeValueMemberS{Value: logSK(e.Seq, i)},
			AttrData: &types.AttributeValueMemberB{Value: chunk},
		}
		put := &types.Put{TableName: &s.table, Item: item}
		if i == 0 {
			item[AttrParts] = num(uint64(parts))
			item[AttrLen] = num(uint64(len(e.Changes)))
			item[AttrEntryHash] = &types.AttributeValueMemberB{Value: hash}
			if e.By != nil || !e.At.IsZero() {
				// In the item the push writes anyway: attribution costs
				// no request, only its bytes.
				item[AttrAttribution] = &types.AttributeValueMemberB{Value: store.EncodeEntryAttribution(e.By, e.At)}
			}
			// The meta condition already guards the seq; this one keeps a
			// log item from ever being overwritten, whatever the meta says.
			put.ConditionExpression = aws.String("attribute_not_exists(#pk)")
			put.ExpressionAttributeNames = map[string]string{"#pk": AttrPK}
		}
		items = append(items, types.TransactWriteItem{Put: put})
	}

	now := s.opts.Now()
	heads := make([]types.AttributeValue, len(meta.Heads))
	for i, h := range meta.Heads {
		heads[i] = &types.AttributeValueMemberS{Value: h}
	}
	names := map[string]string{
		"#col": AttrCollection, "#id": AttrID, "#seq": AttrSeq, "#heads": AttrHeads,
		"#size": AttrSize, "#upd": AttrUpdatedAt, "#fpk": AttrFeedPK, "#fsk": AttrFeedSK, "#v": AttrLayout,
	}
	values := map[string]types.AttributeValue{
		":col":   &types.AttributeValueMemberS{Value: key.Collection},
		":id":    &types.AttributeValueMemberS{Value: key.ID},
		":seq":   num(e.Seq),
		":heads": &types.AttributeValueMemberL{Value: heads},
		":size":  num(uint64(max(meta.Size, 0))),
		":upd":   num(uint64(max(now.UnixMicro(), 0))),
		":fsk":   &types.AttributeValueMemberS{Value: feedSK(now, key.ID)},
		":fpk":   &types.AttributeValueMemberS{Value: s.feedPK(key)},
		":v":     num(LayoutVersion),
	}
	var cond string
	if e.Seq == 1 {
		cond = "attribute_not_exists(#pk)"
		names["#pk"] = AttrPK
	} else {
		cond = "#seq = :prev"
		values[":prev"] = num(e.Seq - 1)
	}
	update := "SET #col = :col, #id = :id, #seq = :seq, #heads = :heads, #size = :size, #upd = :upd, #fpk = :fpk, #fsk = :fsk, #v = :v"
	names["#del"], names["#dpk"], names["#prg"] = AttrDeletedAt, AttrDeletedPK, AttrPurged
	if meta.Deleted {
		// When it first became deleted: a later append keeps the time.
		// The record joins the deleted index for the purge sweep.
		update += ", #del = if_not_exists(#del, :upd), #dpk = :dpk REMOVE #prg"
		if meta.NewHistory {
			// The tombstone's deletion time is not the new history's.
			update = strings.Replace(update, "if_not_exists(#del, :upd)", ":upd", 1)
		}
		values[":dpk"] = &types.AttributeValueMemberS{Value: DeletedPK}
	} else {
		update += " REMOVE #del, #dpk, #prg"
	}
	items = append(items, types.TransactWriteItem{Update: &types.Update{
		TableName:                 &s.table,
		Key:                       itemKey(p, SKMeta),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       &cond,
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}})
	return &dynamodb.TransactWriteItemsInput{
		TransactItems:          items,
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	}
}

// itemKey is the primary key of one item.
func itemKey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		AttrPK: &types.AttributeValueMemberS{Value: pk},
		AttrSK: &types.AttributeValueMemberS{Value: sk},
	}
}

func num(n uint64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatUint(n, 10)}
}

// backoff is the jittered delay before retry number attempt (0-based):
// up to 10 ms, 20 ms, 40 ms, … capped at 320 ms.
func backoff(attempt int) time.Duration {
	ceiling := 10 * time.Millisecond << min(attempt, 5)
	return time.Duration(rand.Int64N(int64(ceiling))) + time.Millisecond
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
