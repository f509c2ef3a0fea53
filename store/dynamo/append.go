package dynamo

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dynamerge/dynamerge/store"
)

// Append writes entry e of the record. An entry that fits one item (the
// usual case: up to ChunkSize bytes) is written in two single-item writes,
// not a transaction (a transaction bills each item twice, see
// schema/dynamodb.md "Write units"):
//
//  1. a consistent read of the meta item checks that the record is at
//     e.Seq-1 (gap-free seqs), completing first an append whose second
//     write did not happen (rollForward);
//  2. the log item is put on condition that it does not exist: the claim
//     of the seq (exactly one of any number of writers passes it) and the
//     commit point, since from then on every read returns the entry (reads
//     go past the meta's seq) and nothing discards it (Purge checks that no
//     entry follows the seq it purges);
//  3. the meta item is updated (seq, heads, feed position, deletion) on
//     condition that its seq is still e.Seq-1. The log item carries what
//     this update writes, so that a reader or the next writer completes it
//     identically when the writer crashed before it.
//
// Larger entries keep the transaction of their parts and the meta update
// (appendTransact). Failures whose outcome is unknown are settled by
// reading the log item back (resolve).
func (s *Store) Append(ctx context.Context, key store.Key, e store.Entry, meta store.AppendMeta) error {
	op := fmt.Sprintf("append %s seq %d", key, e.Seq)
	if err := s.beginKey(ctx, key, op); err != nil {
		return err
	}
	if e.Seq == 0 {
		return fmt.Errorf("dynamo: %s: %w: log seqs start at 1", op, store.ErrConflict)
	}
	if len(e.Changes) > MaxEntrySize {
		return fmt.Errorf("dynamo: %s: %w: entry of %d bytes, at most %d fit one transaction", op, store.ErrTooLarge, len(e.Changes), MaxEntrySize)
	}
	hash := sha256.Sum256(e.Changes)
	s.refreshFeedShards()
	// Seq 1 needs no read either: its put fails if the record has a first
	// entry, and one made after a compaction or purge deleted log#1 fails
	// at the meta update (the record exists) and is never read.
	if known := s.known.get(key); e.Seq > 1 && known != e.Seq-1 {
		if err := s.checkNext(ctx, key, e.Seq); err != nil {
			return fmt.Errorf("dynamo: %s: %w", op, err)
		}
	}
	// Otherwise entry e.Seq-1 is known to exist (this store read or wrote
	// it; entries are never removed but under a snapshot or purge), so
	// seqs stay gap-free without reading the meta item first; finishAppend
	// completes that entry if its meta update is pending.
	if len(e.Changes) > ChunkSize {
		return s.appendTransact(ctx, key, e, meta, hash[:], op)
	}

	em := entryMeta{heads: meta.Heads, size: max(meta.Size, 0), at: s.opts.Now(), deleted: meta.Deleted, newHistory: meta.NewHistory}
	var token [16]byte
	_, _ = crand.Read(token[:]) // crypto/rand.Read never fails
	err := s.putLog(ctx, key, e, em, hash[:], token[:])
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		s.units.refused.Add(1)
	}
	switch {
	case errors.As(err, &ccf) && !sameEntry(ccf.Item, hash[:], token[:]):
		return fmt.Errorf("dynamo: %s: %w", op, store.ErrConflict)
	case errors.As(err, &ccf):
		// Our own item: the SDK retried a put that had landed (a put has
		// no idempotency token, unlike a transaction).
	case err != nil:
		// Anything else may hide a put that landed (a timeout, a lost
		// response, an SDK retry failing after an earlier attempt
		// succeeded): find out before answering.
		if err := s.resolve(ctx, key, e.Seq, hash[:], token[:], op, err); err != nil {
			return err
		}
	}
	s.units.appends.Add(1)
	s.known.saw(key, e.Seq)
	if err := s.finishAppend(ctx, key, e.Seq, em); err != nil {
		return fmt.Errorf("dynamo: %s: %w", op, err)
	}
	s.announce(key, e.Seq, meta)
	return nil
}

// checkNext is Append's first step: the record must be at seq-1. A meta
// item one behind may only mean that the entry after it is stored and its
// meta update pending; that one is completed first.
func (s *Store) checkNext(ctx context.Context, key store.Key, seq uint64) error {
	m, err := s.getMeta(ctx, key)
	if err != nil {
		return err
	}
	if m.last() < seq-1 {
		if m, err = s.rollForward(ctx, key, m); err != nil {
			return err
		}
	}
	last := m.last()
	s.known.saw(key, last)
	if last != seq-1 {
		return fmt.Errorf("%w: record is at seq %d", store.ErrConflict, last)
	}
	return nil
}

// finishAppend is Append's last step, after its log item landed: the meta
// update. Its condition fails when someone completed the append first
// (rollForward: success), when the entry before is stored with its own meta
// update pending (Append skipped its read of the meta item: complete that
// one, then ours), or when a purge made the seq its tombstone's between
// steps 1 and 2 (the purge checked that no entry followed it, so ours was
// put after it and no read returns it: ErrConflict, and the engine finds
// the record purged). Throttled or unanswered updates are retried; if they
// keep failing the entry stays stored, every read returns it and the next
// reader or writer completes it, and the caller gets store.ErrUnavailable
// (its retry finds the changes stored).
func (s *Store) finishAppend(ctx context.Context, key store.Key, seq uint64, em entryMeta) error {
	for attempt := 0; ; attempt++ {
		// The feed position is this update's time, not the put's: retries
		// may land it long after (FeedOverlap), as completeEntry does.
		if now := s.opts.Now(); now.After(em.at) {
			em.at = now
		}
		err := s.advanceMeta(ctx, key, seq, em)
		if err == nil {
			return nil
		}
		if errors.Is(err, errMetaMoved) {
			m, gerr := s.getMeta(ctx, key)
			switch {
			case gerr != nil:
				err = gerr
			case m.floor() >= seq:
				return fmt.Errorf("%w: a purge took seq %d first", store.ErrConflict, seq)
			case m.last() >= seq:
				return nil // completed by a reader or the next writer
			case m.last() < seq-1:
				// The entry before ours is pending: complete it, then
				// retry ours at once.
				m2, rerr := s.rollForward(ctx, key, m)
				if rerr == nil && m2.last() > m.last() {
					continue
				}
				if rerr == nil {
					// Not reachable: the entry before ours was known
					// to exist, and stored entries are not discarded.
					return fmt.Errorf("%w: entry %d is missing below ours", store.ErrUnavailable, m.last()+1)
				}
				err = rerr
			}
		}
		if attempt >= s.opts.ConflictRetries {
			return fmt.Errorf("%w: entry stored, its meta update failed (readers complete it): %w", store.ErrUnavailable, classify(err))
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return err
		}
	}
}

// knownSeqs remembers, per record, a seq this store saw stored (appended,
// or read). Entries are never removed but below a snapshot or purge, so
// "entry n existed" stays true and lets Append of n+1 skip its read of the
// meta item (one request and one read unit per append). Bounded: it
// forgets everything past knownMax records, which only costs that read.
type knownSeqs struct {
	mu  sync.Mutex
	seq map[store.Key]uint64
	// Work on a record's pending entry, once at a time per store: readers
	// completing one (completeStale), and checks of young ones scheduled
	// for later (completeLater).
	completing, scheduled keyClaims
}

// keyClaims says, per record, whether some work on it is under way.
type keyClaims struct {
	mu sync.Mutex
	on map[store.Key]bool
}

// claim marks key's work under way, and says false if it already was.
func (c *keyClaims) claim(key store.Key) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.on[key] {
		return false
	}
	if c.on == nil {
		c.on = make(map[store.Key]bool)
	}
	c.on[key] = true
	return true
}

// release marks key's work done.
func (c *keyClaims) release(key store.Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.on, key)
}

const knownMax = 1 << 16

func (k *knownSeqs) get(key store.Key) uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.seq[key]
}

func (k *knownSeqs) saw(key store.Key, seq uint64) {
	if seq == 0 {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.seq == nil || len(k.seq) >= knownMax {
		k.seq = make(map[store.Key]uint64)
	}
	k.seq[key] = max(k.seq[key], seq)
}

// errMetaMoved is advanceMeta's answer when the meta item is no longer at
// the seq before the entry.
var errMetaMoved = errors.New("meta item is not at the previous seq")

// entryMeta is what an entry's append writes to the meta item: kept in the
// log item (AttrEntryHeads…) so that anyone can write it.
type entryMeta struct {
	heads               []string
	size                int64
	at                  time.Time
	deleted, newHistory bool
}

// putLog is step 2 of Append: the log item, with the meta update's values.
func (s *Store) putLog(ctx context.Context, key store.Key, e store.Entry, em entryMeta, hash, token []byte) error {
	item := logItem(key, e, hash, 0, 1)
	item[AttrEntryToken] = &types.AttributeValueMemberB{Value: token}
	item[AttrEntryHeads] = headList(em.heads)
	item[AttrEntrySize] = num(uint64(em.size))
	item[AttrEntryTime] = num(uint64(max(em.at.UnixMicro(), 0)))
	var flags uint64
	if em.deleted {
		flags |= entryDeleted
	}
	if em.newHistory {
		flags |= entryNewHistory
	}
	item[AttrEntryFlags] = num(flags)
	cctx, cancel := s.callContext(ctx)
	defer cancel()
	out, err := s.api.PutItem(cctx, &dynamodb.PutItemInput{
		TableName: &s.table,
		Item:      item,
		// The claim: exactly one writer puts log#<seq>, and an entry is
		// never overwritten.
		ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": AttrPK},
		// On a failed condition, the item that is there: Append tells its
		// own (an SDK retry of a put that landed) from another writer's.
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		ReturnConsumedCapacity:              types.ReturnConsumedCapacityTotal,
	})
	if err != nil {
		return err
	}
	s.units.addOne(opAppend, true, out.ConsumedCapacity)
	return nil
}

// sameEntry says whether item is the first log item of this Append's
// entry: its hash is hash, and its token is token (when both carry one;
// entries written by a transaction carry none, and their retries are told
// apart by the transaction's idempotency token).
func sameEntry(item map[string]types.AttributeValue, hash, token []byte) bool {
	got, _ := item[AttrEntryHash].(*types.AttributeValueMemberB)
	if got == nil || !bytes.Equal(got.Value, hash) {
		return false
	}
	tok, _ := item[AttrEntryToken].(*types.AttributeValueMemberB)
	return token == nil || tok == nil || bytes.Equal(tok.Value, token)
}

// decodeEntryMeta reads the meta update values of a log item; ok is false
// for items written by a transaction, which carry none.
func decodeEntryMeta(item map[string]types.AttributeValue) (em entryMeta, ok bool, err error) {
	if _, ok := item[AttrEntryTime]; !ok {
		return em, false, nil
	}
	at, err := getNum(item, AttrEntryTime)
	if err != nil {
		return em, false, err
	}
	size, err := getNum(item, AttrEntrySize)
	if err != nil {
		return em, false, err
	}
	flags, err := getNum(item, AttrEntryFlags)
	if err != nil {
		return em, false, err
	}
	hl, _ := item[AttrEntryHeads].(*types.AttributeValueMemberL)
	if hl == nil {
		return em, false, fmt.Errorf("%w: log item with %s but no %s", errCorrupt, AttrEntryTime, AttrEntryHeads)
	}
	for _, h := range hl.Value {
		hs, ok := h.(*types.AttributeValueMemberS)
		if !ok {
			return em, false, fmt.Errorf("%w: %s holds a %T", errCorrupt, AttrEntryHeads, h)
		}
		em.heads = append(em.heads, hs.Value)
	}
	em.size = int64(size)
	em.at = time.UnixMicro(int64(at))
	em.deleted = flags&entryDeleted != 0
	em.newHistory = flags&entryNewHistory != 0
	return em, true, nil
}

// advanceMeta moves the meta item from seq-1 to seq with em (step 3 of
// Append, and the completion of a pending append); errMetaMoved when the
// meta item is not at seq-1.
func (s *Store) advanceMeta(ctx context.Context, key store.Key, seq uint64, em entryMeta) error {
	u := s.metaUpdate(key, seq, em)
	cctx, cancel := s.callContext(ctx)
	defer cancel()
	out, err := s.api.UpdateItem(cctx, &dynamodb.UpdateItemInput{
		TableName:                 u.TableName,
		Key:                       u.Key,
		UpdateExpression:          u.UpdateExpression,
		ConditionExpression:       u.ConditionExpression,
		ExpressionAttributeNames:  u.ExpressionAttributeNames,
		ExpressionAttributeValues: u.ExpressionAttributeValues,
		ReturnConsumedCapacity:    types.ReturnConsumedCapacityTotal,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		s.units.refused.Add(1)
		return errMetaMoved
	}
	if err != nil {
		return err
	}
	s.units.addOne(opAppend, true, out.ConsumedCapacity)
	return nil
}

// rollForward completes the append of the entry after m's seq when its log
// item is stored and the meta update is not (its writer crashed between the
// two writes, is slow, or its update kept failing), and returns the meta
// item after. Appends keep at most one such entry per record (Append's
// first step completes it before claiming the next seq).
func (s *Store) rollForward(ctx context.Context, key store.Key, m *metaItem) (*metaItem, error) {
	next := m.last() + 1
	cctx, cancel := s.callContext(ctx)
	out, err := s.api.GetItem(cctx, &dynamodb.GetItemInput{
		TableName:            &s.table,
		Key:                  itemKey(pk(key), logSK(next, 0)),
		ConsistentRead:       aws.Bool(true),
		ProjectionExpression: aws.String("#mh, #ms, #mu, #mf"),
		ExpressionAttributeNames: map[string]string{
			"#mh": AttrEntryHeads, "#ms": AttrEntrySize, "#mu": AttrEntryTime, "#mf": AttrEntryFlags,
		},
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("read log %d: %w", next, classify(err))
	}
	s.units.addOne(opRead, false, out.ConsumedCapacity)
	if out.Item == nil {
		return m, nil
	}
	return s.completeEntry(ctx, key, next, out.Item)
}

// completeEntry moves the meta item to seq with the values its log item
// carries, and returns the meta item after.
func (s *Store) completeEntry(ctx context.Context, key store.Key, seq uint64, item map[string]types.AttributeValue) (*metaItem, error) {
	em, ok, err := decodeEntryMeta(item)
	if err != nil {
		return nil, err
	}
	if !ok {
		// Only single-item appends leave an entry ahead of the meta.
		return nil, fmt.Errorf("%w: entry %d is past the meta item but carries no meta values", errCorrupt, seq)
	}
	// The feed position is the completion's time, not the entry's: a feed
	// reader that went past the entry's time while its meta update was
	// pending (longer than the feed's overlap, if nobody wrote or read the
	// record) then lists the record again, so the feed has no gap.
	if now := s.opts.Now(); now.After(em.at) {
		em.at = now
	}
	switch err := s.advanceMeta(ctx, key, seq, em); {
	case err == nil:
		s.units.completed.Add(1)
	case !errors.Is(err, errMetaMoved):
		return nil, fmt.Errorf("complete entry %d: %w", seq, classify(err))
	}
	return s.getMeta(ctx, key)
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

// appendTransact writes an entry of more than one part: its log items and
// the meta update in one transaction (a part-written entry would need more
// repair rules than it is worth for entries over 350 KB, which cost their
// size in write units anyway).
func (s *Store) appendTransact(ctx context.Context, key store.Key, e store.Entry, meta store.AppendMeta, hash []byte, op string) error {
	for attempt := 0; ; attempt++ {
		// A fresh input each attempt: the SDK fills in a new idempotency
		// token (ClientRequestToken) for it, which its own retries of this
		// attempt reuse, so that a retried request that had landed is not
		// applied twice.
		in := s.appendInput(key, e, meta, hash)
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
			err = s.resolve(ctx, key, e.Seq, hash, nil, op, err)
			if err == nil {
				s.units.appends.Add(1)
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

// resolve settles an Append whose outcome is unknown: it reads the first log
// item of seq (consistently) and compares its entry hash with ours. Ours:
// the write landed, and Append succeeds. Another: someone else won the seq
// (ErrConflict). None: it did not land, or has not yet; the caller gets
// store.ErrUnavailable, and if it lands later the caller's next Append of
// that seq gets ErrConflict and finds the entry in the log, so nothing is
// lost or written twice. The read runs even when ctx is done (that is often
// why the outcome is unknown), under its own call deadline.
func (s *Store) resolve(ctx context.Context, key store.Key, seq uint64, hash, token []byte, op string, cause error) error {
	rctx, cancel := s.callContext(context.WithoutCancel(ctx))
	defer cancel()
	out, err := s.api.GetItem(rctx, &dynamodb.GetItemInput{
		TableName:                &s.table,
		Key:                      itemKey(pk(key), logSK(seq, 0)),
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     aws.String("#h, #t"),
		ExpressionAttributeNames: map[string]string{"#h": AttrEntryHash, "#t": AttrEntryToken},
		ReturnConsumedCapacity:   types.ReturnConsumedCapacityTotal,
	})
	if err != nil {
		return fmt.Errorf("dynamo: %s: %w (outcome unknown, checking it failed too: %v)", op, classify(cause), err)
	}
	s.units.addOne(opRead, false, out.ConsumedCapacity)
	if out.Item == nil {
		return fmt.Errorf("dynamo: %s: %w (not written)", op, classify(cause))
	}
	if sameEntry(out.Item, hash, token) {
		return nil
	}
	return fmt.Errorf("dynamo: %s: %w (after %v)", op, store.ErrConflict, cause)
}

// appendInput builds appendTransact's transaction: the entry's log items
// and the meta update.
func (s *Store) appendInput(key store.Key, e store.Entry, meta store.AppendMeta, hash []byte) *dynamodb.TransactWriteItemsInput {
	parts := max(1, (len(e.Changes)+ChunkSize-1)/ChunkSize)
	items := make([]types.TransactWriteItem, 0, parts+1)
	for i := range parts {
		put := &types.Put{TableName: &s.table, Item: logItem(key, e, hash, i, parts)}
		if i == 0 {
			// The meta condition already guards the seq; this one keeps a
			// log item from ever being overwritten, whatever the meta says.
			put.ConditionExpression = aws.String("attribute_not_exists(#pk)")
			put.ExpressionAttributeNames = map[string]string{"#pk": AttrPK}
		}
		items = append(items, types.TransactWriteItem{Put: put})
	}
	em := entryMeta{heads: meta.Heads, size: max(meta.Size, 0), at: s.opts.Now(), deleted: meta.Deleted, newHistory: meta.NewHistory}
	items = append(items, types.TransactWriteItem{Update: s.metaUpdate(key, e.Seq, em)})
	return &dynamodb.TransactWriteItemsInput{
		TransactItems:          items,
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	}
}

// logItem is log item `part` of the `parts` of entry e.
func logItem(key store.Key, e store.Entry, hash []byte, part, parts int) map[string]types.AttributeValue {
	chunk := e.Changes[part*ChunkSize : min(len(e.Changes), (part+1)*ChunkSize)]
	item := map[string]types.AttributeValue{
		AttrPK:   &types.AttributeValueMemberS{Value: pk(key)},
		AttrSK:   &types.AttributeValueMemberS{Value: logSK(e.Seq, part)},
		AttrData: &types.AttributeValueMemberB{Value: chunk},
	}
	if part == 0 {
		item[AttrParts] = num(uint64(parts))
		item[AttrLen] = num(uint64(len(e.Changes)))
		item[AttrEntryHash] = &types.AttributeValueMemberB{Value: hash}
		if e.By != nil || !e.At.IsZero() {
			// In the item the push writes anyway: attribution costs
			// no request, only its bytes.
			item[AttrAttribution] = &types.AttributeValueMemberB{Value: store.EncodeEntryAttribution(e.By, e.At)}
		}
	}
	return item
}

// headList is heads as a DynamoDB list of strings.
func headList(heads []string) *types.AttributeValueMemberL {
	l := make([]types.AttributeValue, len(heads))
	for i, h := range heads {
		l[i] = &types.AttributeValueMemberS{Value: h}
	}
	return &types.AttributeValueMemberL{Value: l}
}

// metaUpdate is the update of the meta item from seq-1 to seq with em
// (on condition that it is at seq-1, or absent for seq 1). It moves the
// record's feed entry to em's time.
func (s *Store) metaUpdate(key store.Key, seq uint64, em entryMeta) *types.Update {
	names := map[string]string{
		"#col": AttrCollection, "#id": AttrID, "#seq": AttrSeq, "#heads": AttrHeads,
		"#size": AttrSize, "#upd": AttrUpdatedAt, "#fpk": AttrFeedPK, "#fsk": AttrFeedSK, "#v": AttrLayout,
	}
	values := map[string]types.AttributeValue{
		":col":   &types.AttributeValueMemberS{Value: key.Collection},
		":id":    &types.AttributeValueMemberS{Value: key.ID},
		":seq":   num(seq),
		":heads": headList(em.heads),
		":size":  num(uint64(max(em.size, 0))),
		":upd":   num(uint64(max(em.at.UnixMicro(), 0))),
		":fsk":   &types.AttributeValueMemberS{Value: feedSK(em.at, key.ID)},
		":fpk":   &types.AttributeValueMemberS{Value: s.feedPK(key)},
		":v":     num(LayoutVersion),
	}
	var cond string
	if seq == 1 {
		cond = "attribute_not_exists(#pk)"
		names["#pk"] = AttrPK
	} else {
		cond = "#seq = :prev"
		values[":prev"] = num(seq - 1)
	}
	update := "SET #col = :col, #id = :id, #seq = :seq, #heads = :heads, #size = :size, #upd = :upd, #fpk = :fpk, #fsk = :fsk, #v = :v"
	names["#del"], names["#dpk"], names["#prg"] = AttrDeletedAt, AttrDeletedPK, AttrPurged
	if em.deleted {
		// When it first became deleted: a later append keeps the time.
		// The record joins the deleted index for the purge sweep.
		update += ", #del = if_not_exists(#del, :upd), #dpk = :dpk REMOVE #prg"
		if em.newHistory {
			// The tombstone's deletion time is not the new history's.
			update = strings.Replace(update, "if_not_exists(#del, :upd)", ":upd", 1)
		}
		values[":dpk"] = &types.AttributeValueMemberS{Value: DeletedPK}
	} else {
		update += " REMOVE #del, #dpk, #prg"
	}
	return &types.Update{
		TableName:                 &s.table,
		Key:                       itemKey(pk(key), SKMeta),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       &cond,
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
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
