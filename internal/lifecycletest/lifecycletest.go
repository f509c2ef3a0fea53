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
	w := textgen.NewWriters(1, "text")[0]
	first := append(w.Create().Raw, w.Type("milk").Raw...)
	res, err := c.Sync(ctx, []client.Doc{{Collection: collection, ID: id, Changes: first}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("push: %v %v", err, errOf(res))
	}
	before := res[0].Heads
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
	res, err = c.Sync(ctx, []client.Doc{{Collection: collection, ID: id, Changes: offline}})
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
