// Package lifecycletest is PROTOCOL.md's "Record lifecycle" as one scenario
// that runs against any server, so the bbolt tests (server) and the
// DynamoDB Local tests (store/dynamo/integration) check the same cases.
package lifecycletest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/internal/textgen"
)

// Delete runs the deletion cases on collection/id of the server c talks to
// (c may write the collection): DELETE and undelete, 404 deleted with the
// heads, ?include_deleted, time travel to before the delete, the feed and
// event flags, and an offline edit concurrent with the delete that is kept
// and shows after the undelete.
func Delete(t testing.TB, c *client.Client, collection, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, _, before := seed(ctx, t, c, collection, id)
	offline := w.Type(" and oats").Raw // made before the delete, pushed after

	events, err := c.Events(ctx, collection)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(ctx, collection, id+"-never"); !client.IsCode(err, client.CodeNotFound) {
		t.Fatalf("DELETE of a record never written = %v, want not_found", err)
	}
	heads, err := c.Delete(ctx, collection, id)
	if err != nil || len(heads) != 1 || slices.Equal(heads, before) {
		t.Fatalf("DELETE = %v %v, want new heads", heads, err)
	}
	if again, err := c.Delete(ctx, collection, id); err != nil || !slices.Equal(again, heads) {
		t.Fatalf("DELETE again = %v %v, want no change", again, err)
	}
	for ev := range events {
		if ev.ID == id && slices.Equal(ev.Heads, heads) {
			if !ev.Deleted {
				t.Fatalf("the delete's event %+v does not say deleted", ev)
			}
			break
		}
	}

	_, err = c.Get(ctx, collection, id)
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Code != client.CodeDeleted || apiErr.Status != 404 || !slices.Equal(apiErr.Heads, heads) {
		t.Fatalf("GET of a deleted record = %v, want 404 deleted with heads %v", err, heads)
	}
	rec, err := c.GetWith(ctx, collection, id, client.GetOptions{IncludeDeleted: true})
	if err != nil || !rec.Deleted || string(rec.Doc) != `{"text":"milk"}` {
		t.Fatalf("GET ?include_deleted=true = %+v %v", rec, err)
	}
	if rec, err := c.Get(ctx, collection, id, before...); err != nil || rec.Deleted {
		t.Fatalf("GET at the heads before the delete = %+v %v", rec, err)
	}
	if !feedSays(ctx, t, c, collection, id, true) {
		t.Fatal("the feed does not say the record is deleted")
	}

	// The offline edit lands on the deleted record: kept, shown after the
	// undelete.
	res, err := c.Sync(ctx, []client.Doc{{Collection: collection, ID: id, Changes: offline}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("the offline edit: %v %v", err, errOf(res))
	}
	if _, err := c.Get(ctx, collection, id); !client.IsCode(err, client.CodeDeleted) {
		t.Fatalf("after a concurrent edit: %v, want still deleted", err)
	}
	rec, err = c.Undelete(ctx, collection, id)
	if err != nil || rec.Deleted || string(rec.Doc) != `{"text":"milk and oats"}` || rec.ETag == "" {
		t.Fatalf("undelete = %+v %v, want the offline edit", rec, err)
	}
	if feedSays(ctx, t, c, collection, id, true) {
		t.Fatal("the feed still says deleted after the undelete")
	}
}

// seed writes collection/id: a text "milk" by a writer that can go on
// editing offline. It returns the writer, the changes pushed and the
// record's heads.
func seed(ctx context.Context, t testing.TB, c *client.Client, collection, id string) (*textgen.Writer, []byte, []string) {
	t.Helper()
	w := textgen.NewWriters(1, "text")[0]
	first := append(w.Create().Raw, w.Type("milk").Raw...)
	res, err := c.Sync(ctx, []client.Doc{{Collection: collection, ID: id, Changes: first}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("push: %v %v", err, errOf(res))
	}
	return w, first, res[0].Heads
}

// feedSays reports whether the feed lists collection/id as deleted.
func feedSays(ctx context.Context, t testing.TB, c *client.Client, collection, id string, deleted bool) bool {
	t.Helper()
	cursor := ""
	for {
		page, err := c.Feed(ctx, collection, cursor, 0)
		if err != nil {
			t.Fatalf("feed: %v", err)
		}
		for _, d := range page.Docs {
			if d.ID == id {
				return d.Deleted == deleted
			}
		}
		if !page.More {
			t.Fatalf("the feed does not list %s", id)
		}
		cursor = page.Cursor
	}
}

func errOf(res []client.DocResult) error {
	if len(res) == 0 || res[0].Err == nil {
		return nil
	}
	return res[0].Err
}

// Purge runs the purge cases on collection/id: purge(now) must run the
// server's purge sweep as if it were now (engine.Purge). A record deleted
// and purged answers 410 gone to the JSON view and gone to a pull and to
// a stale device's push, nothing of which is stored; the feed says purged;
// a new history under the same id is a new record.
func Purge(t testing.TB, c *client.Client, collection, id string, purge func(now time.Time) int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, first, heads := seed(ctx, t, c, collection, id)
	stale := w.Type(" and oats").Raw // an offline edit made before the purge
	if _, err := c.Delete(ctx, collection, id); err != nil {
		t.Fatal(err)
	}
	if n := purge(time.Now()); n != 0 {
		t.Fatalf("a purge within the retention purged %d records", n)
	}
	if n := purge(time.Now().Add(1000 * time.Hour)); n != 1 {
		t.Fatalf("a purge after the retention purged %d records, want 1", n)
	}

	if _, err := c.Get(ctx, collection, id); !client.IsCode(err, client.CodeGone) {
		t.Fatalf("GET of a purged record = %v, want gone", err)
	} else if e := err.(*client.Error); e.Status != 410 {
		t.Fatalf("GET of a purged record: status %d, want 410", e.Status)
	}
	for what, doc := range map[string]client.Doc{
		"a pull":                    {Collection: collection, ID: id},
		"a pull from the old heads": {Collection: collection, ID: id, Have: heads},
		"a stale edit":              {Collection: collection, ID: id, Have: heads, Changes: stale},
		"the whole old history":     {Collection: collection, ID: id, Changes: append(append([]byte{}, first...), stale...)},
	} {
		res, err := c.Sync(ctx, []client.Doc{doc})
		if err != nil || res[0].Err == nil || res[0].Err.Code != client.CodeGone {
			t.Fatalf("%s of a purged record = %v %v, want the per-doc error gone", what, err, errOf(res))
		}
	}
	if _, err := c.Delete(ctx, collection, id); !client.IsCode(err, client.CodeGone) {
		t.Fatalf("DELETE of a purged record = %v, want gone", err)
	}
	page, err := c.Feed(ctx, collection, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(page.Docs, func(d client.FeedItem) bool { return d.ID == id })
	if i < 0 || !page.Docs[i].Purged {
		t.Fatalf("feed %+v: want %s purged", page.Docs, id)
	}

	// A new history under the same id.
	nw := textgen.NewWriters(2, "text")[1]
	fresh := append(nw.Create().Raw, nw.Type("bread").Raw...)
	res, err := c.Sync(ctx, []client.Doc{{Collection: collection, ID: id, Changes: fresh}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("a new history: %v %v", err, errOf(res))
	}
	rec, err := c.Get(ctx, collection, id)
	if err != nil || string(rec.Doc) != `{"text":"bread"}` {
		t.Fatalf("GET of the new history = %+v %v", rec, err)
	}
	res, err = c.Sync(ctx, []client.Doc{{Collection: collection, ID: id, Changes: first}})
	if err != nil || res[0].Err == nil || res[0].Err.Code != client.CodeGone {
		t.Fatalf("the purged history pushed into the new one = %v %v, want gone", err, errOf(res))
	}
}
