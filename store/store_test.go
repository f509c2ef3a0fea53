package store_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/dynamerge/dynamerge/store"
)

func TestKeyValidate(t *testing.T) {
	tests := []struct {
		name string
		key  store.Key
		ok   bool
	}{
		{"simple", store.Key{Collection: "todos", ID: "a"}, true},
		{"uuid id", store.Key{Collection: "notes", ID: "0b9f3c1e-8a2d-4f6b-9c7e-1d2a3b4c5d6e"}, true},
		{"digit-first collection", store.Key{Collection: "9lives", ID: "x"}, true},
		{"collection with _ and -", store.Key{Collection: "a_b-c", ID: "x"}, true},
		{"id with all classes", store.Key{Collection: "c", ID: "Az09_-"}, true},
		{"collection 64 chars", store.Key{Collection: strings.Repeat("a", 64), ID: "x"}, true},
		{"id 128 chars", store.Key{Collection: "c", ID: strings.Repeat("Z", 128)}, true},

		{"empty collection", store.Key{Collection: "", ID: "x"}, false},
		{"empty id", store.Key{Collection: "c", ID: ""}, false},
		{"collection 65 chars", store.Key{Collection: strings.Repeat("a", 65), ID: "x"}, false},
		{"id 129 chars", store.Key{Collection: "c", ID: strings.Repeat("Z", 129)}, false},
		{"uppercase collection", store.Key{Collection: "Todos", ID: "x"}, false},
		{"collection starts with _", store.Key{Collection: "_todos", ID: "x"}, false},
		{"collection starts with -", store.Key{Collection: "-todos", ID: "x"}, false},
		{"slash in collection", store.Key{Collection: "a/b", ID: "x"}, false},
		{"slash in id", store.Key{Collection: "c", ID: "a/b"}, false},
		{"dot in id", store.Key{Collection: "c", ID: "a.b"}, false},
		{"space in id", store.Key{Collection: "c", ID: "a b"}, false},
		{"NUL in id", store.Key{Collection: "c", ID: "a\x00"}, false},
		{"non-ASCII id", store.Key{Collection: "c", ID: "é"}, false},
		{"non-ASCII collection", store.Key{Collection: "ü", ID: "x"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.key.Validate()
			if tt.ok {
				if err != nil {
					t.Fatalf("Validate(%v) = %v, want nil", tt.key, err)
				}
				return
			}
			if !errors.Is(err, store.ErrInvalidKey) {
				t.Fatalf("Validate(%v) = %v, want ErrInvalidKey", tt.key, err)
			}
		})
	}
}

func TestValidCollection(t *testing.T) {
	for name, want := range map[string]bool{"todos": true, "a": true, "": false, "A": false, "a/b": false, "-a": false} {
		if got := store.ValidCollection(name); got != want {
			t.Errorf("ValidCollection(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestKeyString(t *testing.T) {
	if got, want := (store.Key{Collection: "todos", ID: "x1"}).String(), "todos/x1"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}
