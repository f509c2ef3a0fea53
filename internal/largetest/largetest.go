// Package largetest holds the large-record scenarios that every store must
// pass end to end (a million-character paste, a long typing session by two
// concurrent writers), so the bbolt tests in e2e and the DynamoDB Local
// tests in store/dynamo/integration run the same code against a server.
//
// Each scenario ends with a fresh client: it pulls the record with no
// heads, Automerge JS 3.5 loads what it got, and its view must equal the
// server's JSON view at the server's heads.
package largetest

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/internal/amjs"
	"github.com/dynamerge/dynamerge/internal/textgen"
)

// PasteText returns n code points of prose with some multi-byte ones, as a
// pasted article has.
func PasteText(n int) string {
	const words = "The quick brown fox jumps over the lazy dog; naïve café, 東京, ☃. "
	rs := []rune(strings.Repeat(words, n/len([]rune(words))+1))
	return string(rs[:n])
}

// Paste pushes a text record made of one change that pastes n characters
// into collection/id, then checks the server's view and a fresh client's.
func Paste(t testing.TB, c *client.Client, js *amjs.Oracle, collection, id string, n int) {
	t.Helper()
	ctx := context.Background()
	w := textgen.NewWriters(1, "text")[0]
	text := PasteText(n)
	create, paste := w.Create(), w.Type(text)

	start := time.Now()
	res := sync1(t, c, client.Doc{Collection: collection, ID: id, Changes: append(slices.Clip(create.Raw), paste.Raw...)})
	t.Logf("push of a %d-character paste (%d bytes): %v", n, len(paste.Raw), time.Since(start))
	if want := []string{paste.Hash.String()}; !slices.Equal(res.Heads, want) {
		t.Fatalf("heads after the paste = %v, want %v", res.Heads, want)
	}

	rec, err := c.Get(ctx, collection, id)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	var view struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(rec.Doc, &view); err != nil {
		t.Fatalf("JSON view: %v", err)
	}
	if view.Text != text {
		t.Fatalf("JSON view's text: %d bytes, want the %d pasted", len(view.Text), len(text))
	}
	FreshClient(t, c, js, collection, id, rec)
}

// TypingOptions shapes Typing.
type TypingOptions struct {
	Changes int // keystrokes in all, split between the writers
	Writers int // concurrent writers, 2 if zero
	Batch   int // keystrokes a writer makes offline between syncs, 200 if zero
}

// Typing has concurrent writers type into one text record, each at its own
// cursor, syncing every Batch keystrokes and deleting a few characters now
// and then, then checks that both converge on what a fresh client sees.
func Typing(t testing.TB, c *client.Client, js *amjs.Oracle, collection, id string, opts TypingOptions) {
	t.Helper()
	if opts.Writers == 0 {
		opts.Writers = 2
	}
	if opts.Batch == 0 {
		opts.Batch = 200
	}
	ws := textgen.NewWriters(opts.Writers, "text")
	create := ws[0].Create()
	sync1(t, c, client.Doc{Collection: collection, ID: id, Changes: create.Raw})
	for _, w := range ws[1:] {
		w.Merge(ws[0])
	}

	start := time.Now()
	var wg sync.WaitGroup
	heads := make([][]string, len(ws))
	errs := make([]error, len(ws))
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			heads[i], errs[i] = typeAndSync(c, w, collection, id, opts.Changes/len(ws), opts.Batch, i)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	t.Logf("%d writers typed %d changes in batches of %d: %v", len(ws), opts.Changes, opts.Batch, time.Since(start))

	// A last pull by each writer: all must now see the same heads.
	final := sync1(t, c, client.Doc{Collection: collection, ID: id})
	for i, w := range ws {
		res := sync1(t, c, client.Doc{Collection: collection, ID: id, Have: heads[i]})
		if !slices.Equal(sorted(res.Heads), sorted(final.Heads)) {
			t.Fatalf("writer %d ends at heads %v, the server at %v", i, res.Heads, final.Heads)
		}
		have, err := crdt.ParseDelta(final.Changes)
		if err != nil {
			t.Fatalf("parse the record: %v", err)
		}
		got := map[crdt.Hash]bool{}
		for _, ch := range have {
			got[ch.Hash] = true
		}
		for _, h := range w.Hashes() {
			if !got[h] {
				t.Fatalf("writer %d's change %v is not in the record", i, h)
			}
		}
	}
	rec, err := c.Get(context.Background(), collection, id)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	FreshClient(t, c, js, collection, id, rec)
}

// typeAndSync is one writer's session: type n keystrokes, syncing every
// batch; it returns the heads it saw last.
func typeAndSync(c *client.Client, w *textgen.Writer, collection, id string, n, batch, who int) ([]string, error) {
	var pending []byte
	var have []string
	for i := 0; i < n; i++ {
		var ch crdt.Change
		if i%97 == 96 {
			ch = w.Delete(3)
		} else {
			ch = w.Type(string(rune('a' + (i+who)%26)))
		}
		pending = append(pending, ch.Raw...)
		if (i+1)%batch != 0 && i != n-1 {
			continue
		}
		res, err := c.Sync(context.Background(), []client.Doc{{Collection: collection, ID: id, Have: have, Changes: pending}})
		if err != nil {
			return nil, err
		}
		if res[0].Err != nil {
			return nil, res[0].Err
		}
		pending = pending[:0]
		got, err := crdt.ParseDelta(res[0].Changes)
		if err != nil {
			return nil, fmt.Errorf("parse the server's changes: %w", err)
		}
		hs, err := crdt.ParseHashes(res[0].Heads)
		if err != nil {
			return nil, err
		}
		w.Observe(hs, got)
		have = res[0].Heads
	}
	return have, nil
}

// FreshClient pulls collection/id with no heads, as a new device does,
// loads the answer in Automerge JS and checks that its view at the
// server's heads is rec, the server's JSON view. It returns the answer's
// size.
func FreshClient(t testing.TB, c *client.Client, js *amjs.Oracle, collection, id string, rec *client.Record) int {
	t.Helper()
	start := time.Now()
	res := sync1(t, c, client.Doc{Collection: collection, ID: id})
	t.Logf("fresh client's pull: %d bytes in %v (a document chunk first: %v)", len(res.Changes), time.Since(start), crdt.IsDocument(res.Changes))
	if !slices.Equal(sorted(res.Heads), sorted(rec.Heads)) {
		t.Fatalf("fresh pull heads %v, JSON view heads %v", res.Heads, rec.Heads)
	}
	view, err := js.ViewAt(res.Changes, res.Heads)
	if err != nil {
		t.Fatalf("Automerge JS loads the fresh pull: %v", err)
	}
	var a, b any
	if err := json.Unmarshal(view, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(rec.Doc, &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("Automerge JS view of the fresh pull (%d bytes) differs from the server's JSON view (%d bytes)", len(view), len(rec.Doc))
	}
	return len(res.Changes)
}

func sync1(t testing.TB, c *client.Client, d client.Doc) client.DocResult {
	t.Helper()
	res, err := c.Sync(context.Background(), []client.Doc{d})
	if err != nil {
		t.Fatalf("sync %s/%s: %v", d.Collection, d.ID, err)
	}
	if res[0].Err != nil {
		t.Fatalf("sync %s/%s: %v", d.Collection, d.ID, res[0].Err)
	}
	return res[0]
}

func sorted(ss []string) []string {
	ss = slices.Clone(ss)
	slices.Sort(ss)
	return ss
}
