package crdt

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
)

func mustSplit(tb testing.TB, b []byte) []Change {
	tb.Helper()
	cs, err := Split(b)
	if err != nil {
		tb.Fatal(err)
	}
	return cs
}

func TestGoSavedDocLoadsInJS(t *testing.T) {
	needNode(t)
	for _, g := range loadGolden(t) {
		t.Run(g.name, func(t *testing.T) {
			d := NewDoc()
			if err := d.Apply(mustSplit(t, g.changes)); err != nil {
				t.Fatal(err)
			}
			heads, view := jsLoadDoc(t, d.Save())
			if got, want := heads, HashStrings(g.heads); !reflect.DeepEqual(got, want) {
				t.Fatalf("JS heads=%v, want %v", got, want)
			}
			if !sameJSON(t, view, g.view) {
				t.Fatalf("JS view=%s, want %s", view, g.view)
			}
		})
	}
}

func TestApply(t *testing.T) {
	text := mustSplit(t, goldenChanges(t, "longtext"))
	merge := mustSplit(t, goldenChanges(t, "merge"))
	tests := []struct {
		name    string
		first   []Change // applied before, must succeed
		apply   []Change
		wantErr error
	}{
		{"all", nil, text, nil},
		{"retry is idempotent", text, text, nil},
		{"out of order in one batch", nil, []Change{merge[2], merge[1], merge[0]}, nil},
		{"missing deps", nil, text[1:], ErrMissingDeps},
		{"missing deps later", text[:3], text[4:], ErrMissingDeps},
		{"empty", nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDoc()
			if err := d.Apply(tt.first); err != nil {
				t.Fatalf("Apply(first): %v", err)
			}
			err := d.Apply(tt.apply)
			if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
				t.Fatalf("Apply()=%v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestApplyChecksHistory(t *testing.T) {
	// A change of a loaded document checked against the history index
	// built from the document's changes.
	text := mustSplit(t, goldenChanges(t, "longtext"))
	d := NewDoc()
	if err := d.Apply(text[:10]); err != nil {
		t.Fatal(err)
	}
	ld, err := LoadDoc(d.Save())
	if err != nil {
		t.Fatal(err)
	}
	if err := ld.Apply(text[10:]); err != nil {
		t.Fatalf("Apply after LoadDoc: %v", err)
	}
	if got, want := ld.Heads(), []Hash{text[len(text)-1].Hash}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Heads()=%v, want %v", got, want)
	}
}

func TestJSONTimeTravel(t *testing.T) {
	cs := mustSplit(t, goldenChanges(t, "text"))
	d := NewDoc()
	if err := d.Apply(cs); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		heads []Hash
		want  string
	}{
		{[]Hash{cs[0].Hash}, `{"title":"Hello world"}`},
		{[]Hash{cs[1].Hash}, `{"title":"¡Hello, Automerge"}`},
		{nil, `{"title":"¡Bye 👋, Automerge"}`},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			got, err := d.JSON(tt.heads)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("JSON(%v)=%s, want %s", tt.heads, got, tt.want)
			}
		})
	}
	if _, err := d.JSON([]Hash{{1}}); !errors.Is(err, ErrMissingDeps) {
		t.Fatalf("JSON(unknown head)=%v, want ErrMissingDeps", err)
	}
}

// BenchmarkApply_History64 measures Apply of one small change (a text
// deletion) to a document of 64 changes (Split and LoadDoc excluded).
func BenchmarkApply_History64(b *testing.B) {
	text := mustSplit(b, goldenChanges(b, "longtext"))
	d := NewDoc()
	if err := d.Apply(text[:len(text)-1]); err != nil {
		b.Fatal(err)
	}
	last := text[len(text)-1:]
	snap := d.Save()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dd, err := LoadDoc(snap)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := dd.history(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := dd.Apply(last); err != nil {
			b.Fatal(err)
		}
	}
}
