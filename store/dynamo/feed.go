package dynamo

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dynamerge/dynamerge/store"
)

// Feed lists the collection's records by last change from the feed index,
// reading every feed key of the collection (feedshards.go) in parallel.
//
// A cursor holds a position in the index (a feed sort key; the next page
// starts strictly after it) and a floor: the time the reader started
// following the feed, minus Options.FeedOverlap. Pages that end with More
// carry both on. The page that reaches the end moves the position back to
// the floor when it is earlier, so that the next call lists again every
// record changed since the reader started, minus the overlap: a record
// whose change became visible in the index late (index propagation) or
// whose writer's clock is behind is still listed, at least once, as long as
// the delay is within the overlap. Duplicates are allowed by the contract.
func (s *Store) Feed(ctx context.Context, collection, cursor string, limit int) (store.FeedPage, error) {
	op := fmt.Sprintf("feed %s after %q", collection, cursor)
	if !store.ValidCollection(collection) {
		return store.FeedPage{}, fmt.Errorf("dynamo: %s: %w: collection %q", op, store.ErrInvalidKey, collection)
	}
	c, err := parseCursor(cursor)
	if err != nil {
		return store.FeedPage{}, fmt.Errorf("dynamo: %s: %w", op, err)
	}
	if err := s.begin(ctx); err != nil {
		return store.FeedPage{}, fmt.Errorf("dynamo: %s: %w", op, err)
	}
	if limit <= 0 {
		limit = store.DefaultFeedLimit
	}
	if c.floor == 0 {
		c.floor = max(s.opts.Now().Add(-s.opts.FeedOverlap).UnixMicro(), 1)
	}

	items, err := s.feedMerged(ctx, collection, c.pos, limit)
	if err != nil {
		return store.FeedPage{}, fmt.Errorf("dynamo: %s: %w", op, err)
	}

	page := store.FeedPage{More: len(items) > limit}
	if page.More {
		items = items[:limit]
	}
	last := c.pos
	index := make(map[string]int, len(items))
	for _, it := range items {
		fi, fsk, err := decodeFeedItem(it)
		if err != nil {
			return store.FeedPage{}, fmt.Errorf("dynamo: %s: %w", op, err)
		}
		last = fsk
		// The index is updated asynchronously: for a moment it may hold a
		// record at both its old and its new place. A page lists it once,
		// at its latest.
		if i, ok := index[fi.ID]; ok {
			page.Items = append(page.Items[:i], page.Items[i+1:]...)
			for id, j := range index {
				if j > i {
					index[id] = j - 1
				}
			}
		}
		index[fi.ID] = len(page.Items)
		page.Items = append(page.Items, fi)
	}
	if page.More {
		page.Cursor = formatCursor(feedCursor{pos: last, floor: c.floor})
	} else {
		// The end: come back to the floor next time (a new floor is taken
		// then).
		if floor := feedTime(c.floor); last == "" || floor < last {
			last = floor
		}
		page.Cursor = formatCursor(feedCursor{pos: last})
	}
	return page, nil
}

func decodeFeedItem(it map[string]types.AttributeValue) (store.FeedItem, string, error) {
	fsk, _ := it[AttrFeedSK].(*types.AttributeValueMemberS)
	id, _ := it[AttrID].(*types.AttributeValueMemberS)
	if fsk == nil || id == nil {
		return store.FeedItem{}, "", fmt.Errorf("%w: feed index item without %s or %s", errCorrupt, AttrFeedSK, AttrID)
	}
	heads, err := decodeHeads(it)
	if err != nil {
		return store.FeedItem{}, "", err
	}
	upd, err := getNum(it, AttrUpdatedAt)
	if err != nil {
		return store.FeedItem{}, "", err
	}
	_, deleted := it[AttrDeletedAt]
	_, purged := it[AttrPurged]
	return store.FeedItem{ID: id.Value, Heads: heads, UpdatedAt: time.UnixMicro(int64(upd)), Deleted: deleted, Purged: purged}, fsk.Value, nil
}

// feedCursor is a decoded feed cursor.
type feedCursor struct {
	pos   string // feed sort key to continue after; "" for the beginning
	floor int64  // Unix µs; 0 when the next call starts a new reading
}

// cursorVersion starts every cursor, so that a later format can be told
// apart.
const cursorVersion = "f1"

// formatCursor encodes c as "f1.<pos>.<floor>" in unpadded base64url: opaque
// to clients and safe in a URL.
func formatCursor(c feedCursor) string {
	raw := cursorVersion + "." + c.pos + "." + strconv.FormatInt(c.floor, 10)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// parseCursor accepts "" and what formatCursor writes, nothing else.
func parseCursor(s string) (feedCursor, error) {
	if s == "" {
		return feedCursor{}, nil
	}
	bad := fmt.Errorf("%w: %q", store.ErrInvalidCursor, s)
	raw, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return feedCursor{}, bad
	}
	parts := strings.Split(string(raw), ".")
	if len(parts) != 3 || parts[0] != cursorVersion {
		return feedCursor{}, bad
	}
	c := feedCursor{pos: parts[1]}
	if c.floor, err = strconv.ParseInt(parts[2], 10, 64); err != nil || c.floor < 0 {
		return feedCursor{}, bad
	}
	if c.pos != "" && !validPos(c.pos) {
		return feedCursor{}, bad
	}
	return c, nil
}

// validPos reports whether pos is a feed time ("<16 digits>") or a feed
// sort key ("<16 digits>#<id>").
func validPos(pos string) bool {
	if len(pos) < feedTimePad {
		return false
	}
	for _, ch := range pos[:feedTimePad] {
		if ch < '0' || ch > '9' {
			return false
		}
	}
	rest := pos[feedTimePad:]
	if rest == "" {
		return true
	}
	id, ok := strings.CutPrefix(rest, "#")
	return ok && (store.Key{Collection: "c", ID: id}).Validate() == nil
}
