package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/store"
)

func equalHeads(a, b []string) bool { return slices.Equal(a, b) }

// checkOrder checks that the records of items, in order of last change, are
// want.
func checkOrder(tb testing.TB, items []store.FeedItem, want []string) {
	tb.Helper()
	if got := lastOrder(items); !slices.Equal(got, want) {
		tb.Fatalf("feed order (by last change) = %v, want %v", got, want)
	}
}

func testFeedEmpty(t *testing.T, s store.Store) {
	page, err := s.Feed(t.Context(), testCollection, "", 10)
	if err != nil {
		t.Fatalf("Feed(empty) = %v", err)
	}
	if len(page.Items) != 0 || page.More {
		t.Fatalf("Feed(empty) = %+v, want no items and More false", page)
	}
	// The empty page's cursor picks up what is written later.
	k := key("first")
	mustAppend(t, s, k, 1)
	items, _ := readFeed(t, s, testCollection, page.Cursor, 10)
	checkOrder(t, items, []string{k.ID})
}

func testFeedPaging(t *testing.T, s store.Store) {
	var want []string
	for i := range 10 {
		k := key(fmt.Sprintf("p%02d", i))
		mustAppend(t, s, k, 1)
		want = append(want, k.ID)
	}
	for _, limit := range []int{1, 3, 10, 11, 0} {
		t.Run(fmt.Sprintf("limit%d", limit), func(t *testing.T) {
			// readFeed checks that no page exceeds the limit.
			items, _ := readFeed(t, s, testCollection, "", limit)
			checkOrder(t, items, want)
		})
	}
	t.Run("pages", func(t *testing.T) {
		first, err := s.Feed(t.Context(), testCollection, "", 4)
		if err != nil {
			t.Fatalf("Feed = %v", err)
		}
		if len(first.Items) != 4 || !first.More || first.Cursor == "" {
			t.Fatalf("first page of 10 by 4 = %d items, More %v, cursor %q; want 4, true, a cursor", len(first.Items), first.More, first.Cursor)
		}
		// The cursor resumes after the page: the rest is the 6 others,
		// and any record repeated from page one is at most an overlap.
		rest, _ := readFeed(t, s, testCollection, first.Cursor, 4)
		seen := ids(rest)
		for _, id := range want[4:] {
			if _, ok := seen[id]; !ok {
				t.Fatalf("resuming from %q: %s missing from %v", first.Cursor, id, lastOrder(rest))
			}
		}
		// Reading a page again with the same cursor gives it again.
		again, err := s.Feed(t.Context(), testCollection, "", 4)
		if err != nil || !slices.Equal(lastOrder(again.Items), lastOrder(first.Items)) {
			t.Fatalf("Feed from the start again = %v, %v; want %v", lastOrder(again.Items), err, lastOrder(first.Items))
		}
	})
	t.Run("default limit", func(t *testing.T) {
		page, err := s.Feed(t.Context(), testCollection, "", 0)
		if err != nil || len(page.Items) != len(want) || page.More {
			t.Fatalf("Feed(limit 0) = %d items, More %v, %v; want all %d (DefaultFeedLimit is %d)", len(page.Items), page.More, err, len(want), store.DefaultFeedLimit)
		}
	})
}

func testFeedChangedAgain(t *testing.T, s store.Store) {
	a, b, c := key("a"), key("b"), key("c")
	mustAppend(t, s, a, 1)
	mustAppend(t, s, b, 1)
	mustAppend(t, s, c, 1)
	items, cursor := readFeed(t, s, testCollection, "", 2)
	checkOrder(t, items, []string{"a", "b", "c"})

	mustAppend(t, s, a, 2)
	later, cursor := readFeed(t, s, testCollection, cursor, 2)
	it, ok := ids(later)["a"]
	if !ok || !equalHeads(it.Heads, metaFor(a, 2).Heads) {
		t.Fatalf("feed after a changed again = %+v, want a with its new heads", later)
	}
	// From the start, a is now last: the feed is ordered by last change.
	items, _ = readFeed(t, s, testCollection, "", 2)
	checkOrder(t, items, []string{"b", "c", "a"})

	// The feed is one entry per record, not per change: a record changed
	// 20 times is still listed once in a page from the start.
	for seq := uint64(3); seq <= 20; seq++ {
		mustAppend(t, s, a, seq)
	}
	page, err := s.Feed(t.Context(), testCollection, "", 100)
	if err != nil {
		t.Fatalf("Feed = %v", err)
	}
	if got := lastOrder(page.Items); len(page.Items) != 3 || !slices.Equal(got, []string{"b", "c", "a"}) {
		t.Fatalf("Feed from the start after 20 changes of a = %d items %v, want b, c, a once each", len(page.Items), got)
	}

	// And again: every change shows once more.
	mustAppend(t, s, b, 2)
	later, _ = readFeed(t, s, testCollection, cursor, 2)
	if _, ok := ids(later)["b"]; !ok {
		t.Fatalf("feed after b changed = %v, want b", lastOrder(later))
	}
}

func testFeedOtherCollections(t *testing.T, s store.Store) {
	collections := []string{"alpha", "alph", "alpha2", "alpha-x", "beta"}
	for _, c := range collections {
		for i := range 3 {
			mustAppend(t, s, store.Key{Collection: c, ID: fmt.Sprintf("%s-%d", c, i)}, 1)
		}
		// The same id in every collection, with that collection's heads.
		mustAppend(t, s, store.Key{Collection: c, ID: "shared"}, 1)
	}
	for _, c := range collections {
		items, _ := readFeed(t, s, c, "", 2)
		want := []string{c + "-0", c + "-1", c + "-2", "shared"}
		checkOrder(t, items, want)
		shared := store.Key{Collection: c, ID: "shared"}
		if got := ids(items)["shared"].Heads; !equalHeads(got, metaFor(shared, 1).Heads) {
			t.Fatalf("feed %s: shared has heads %v, want those of %s", c, got, shared)
		}
	}
	if items, _ := readFeed(t, s, "gamma", "", 2); len(items) != 0 {
		t.Fatalf("feed of an unused collection = %v", lastOrder(items))
	}
}

// testFeedFollow is the protocol's promise: a client that starts with no
// cursor and follows it until More is false has seen every record that
// existed when it started, while others keep writing; and the last cursor
// then shows every record changed since.
func testFeedFollow(t *testing.T, s store.Store) {
	const n = 30
	seqOf := map[string]uint64{}
	write := func(id string) {
		k := key(id)
		seqOf[id]++
		mustAppend(t, s, k, seqOf[id])
	}
	var existing []string
	for i := range n {
		id := fmt.Sprintf("f%02d", i)
		write(id)
		existing = append(existing, id)
	}

	seen := map[string]bool{}
	cursor := ""
	for page := 0; ; page++ {
		if page > 1000 {
			t.Fatal("feed never ended")
		}
		p, err := s.Feed(t.Context(), testCollection, cursor, 4)
		if err != nil {
			t.Fatalf("Feed(%q) = %v", cursor, err)
		}
		for _, it := range p.Items {
			seen[it.ID] = true
		}
		cursor = p.Cursor
		if !p.More {
			break
		}
		if page < 8 {
			// Meanwhile: a seen record changes (and moves to the end), an
			// unseen one changes, and a new one appears.
			write(existing[page])
			write(existing[n-1-page])
			write(fmt.Sprintf("new%02d", page))
		}
	}
	for _, id := range existing {
		if !seen[id] {
			t.Errorf("following the feed never showed %s", id)
		}
	}

	write("f05")
	write("late")
	later, _ := readFeed(t, s, testCollection, cursor, 4)
	got := ids(later)
	for _, id := range []string{"f05", "late"} {
		if it, ok := got[id]; !ok || !equalHeads(it.Heads, metaFor(key(id), seqOf[id]).Heads) {
			t.Errorf("feed after the last cursor = %v, want %s with its latest heads", lastOrder(later), id)
		}
	}
}

func testFeedHeads(t *testing.T, s store.Store) {
	k := key("heads")
	before := time.Now()
	mustAppend(t, s, k, 1)
	two := store.AppendMeta{Heads: []string{head(k, 2, 0), head(k, 2, 1)}, Size: 300}
	slices.Sort(two.Heads)
	if err := s.Append(t.Context(), k, store.Entry{Seq: 2, Changes: payload(k, 2, 100)}, two); err != nil {
		t.Fatalf("Append(2) = %v", err)
	}
	after := time.Now()
	items, _ := readFeed(t, s, testCollection, "", 10)
	if len(items) == 0 {
		t.Fatal("feed is empty")
	}
	it := items[len(items)-1]
	if it.ID != k.ID || !equalHeads(it.Heads, two.Heads) {
		t.Fatalf("feed item = %+v, want %s with heads %v", it, k.ID, two.Heads)
	}
	// Clocks of a remote backend may differ a little from ours.
	const skew = time.Minute
	if it.UpdatedAt.Before(before.Add(-skew)) || it.UpdatedAt.After(after.Add(skew)) {
		t.Fatalf("UpdatedAt = %v, want between %v and %v", it.UpdatedAt, before, after)
	}
}

func testFeedInvalidCursor(t *testing.T, s store.Store) {
	mustAppend(t, s, key("x"), 1)
	for _, c := range []string{"!!not a cursor!!", "\xff\xfe", "%%%"} {
		_, err := s.Feed(t.Context(), testCollection, c, 10)
		wantErr(t, fmt.Sprintf("Feed(cursor %q)", c), err, store.ErrInvalidCursor)
	}
}
