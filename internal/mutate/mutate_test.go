package mutate

import (
	"bytes"
	"errors"
	"testing"

	"github.com/automerge/automerge-go"
)

// changeChunk returns one change chunk made by automerge-go, and its hash.
func changeChunk(tb testing.TB) ([]byte, automerge.ChangeHash) {
	tb.Helper()
	doc := automerge.New()
	if err := doc.RootMap().Set("title", "hello"); err != nil {
		tb.Fatal(err)
	}
	h, err := doc.Commit("first")
	if err != nil {
		tb.Fatal(err)
	}
	ch, err := doc.Change(h)
	if err != nil {
		tb.Fatal(err)
	}
	return ch.Save(), h
}

func TestHashMatchesAutomerge(t *testing.T) {
	chunk, h := changeChunk(t)
	if got, want := Hash(chunk), [32]byte(h); got != want {
		t.Fatalf("Hash()=%x, want %x", got, want)
	}
	if got, want := Checksum(chunk), [4]byte(chunk[4:8]); got != want {
		t.Fatalf("Checksum()=%x, want %x (the chunk's own)", got, want)
	}
}

func TestFlip(t *testing.T) {
	chunk, _ := changeChunk(t)
	_, start, _, err := Header(chunk)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		pos  int
		xor  byte
	}{
		{"first body byte", start, 0x01},
		{"last byte", len(chunk) - 1, 0x80},
		{"middle", (start + len(chunk)) / 2, 0xff},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := append([]byte(nil), chunk...)
			got := Flip(chunk, tc.pos, tc.xor)
			if !bytes.Equal(chunk, orig) {
				t.Fatal("Flip modified its input")
			}
			if g, w := got[tc.pos], chunk[tc.pos]^tc.xor; g != w {
				t.Fatalf("byte %d=%#x, want %#x", tc.pos, g, w)
			}
			if g, w := [4]byte(got[4:8]), Checksum(got); g != w {
				t.Fatalf("checksum=%x, want %x", g, w)
			}
			if g := [4]byte(got[4:8]); g == [4]byte(chunk[4:8]) {
				t.Fatalf("checksum unchanged after a body flip")
			}
			for i := range got {
				if i != tc.pos && (i < 4 || i >= 8) && got[i] != chunk[i] {
					t.Fatalf("byte %d changed too", i)
				}
			}
		})
	}
}

func TestFlipChecksumByteIsUndone(t *testing.T) {
	chunk, _ := changeChunk(t)
	if got := Flip(chunk, 5, 0xff); !bytes.Equal(got, chunk) {
		t.Fatalf("Flip of a checksum byte = % x, want the original", got)
	}
}

func TestChunks(t *testing.T) {
	a, _ := changeChunk(t)
	b, _ := changeChunk(t)
	both := append(append([]byte(nil), a...), b...)
	for _, tc := range []struct {
		name    string
		in      []byte
		want    int
		wantErr bool
	}{
		{"empty", nil, 0, false},
		{"one", a, 1, false},
		{"two", both, 2, false},
		{"trailing byte", append(append([]byte(nil), a...), 0), 0, true},
		{"truncated", a[:len(a)-1], 0, true},
		{"bad magic", append([]byte{0}, a[1:]...), 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Chunks(tc.in)
			if tc.wantErr {
				if !errors.Is(err, ErrFraming) {
					t.Fatalf("Chunks() error=%v, want ErrFraming", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g, w := len(got), tc.want; g != w {
				t.Fatalf("len(Chunks())=%d, want %d", g, w)
			}
			if tc.want == 2 && (!bytes.Equal(got[0], a) || !bytes.Equal(got[1], b)) {
				t.Fatal("Chunks() did not split at the chunk boundary")
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	chunk, _ := changeChunk(t)
	got := Truncate(chunk, len(chunk)-3)
	if g, w := len(got), len(chunk)-3; g != w {
		t.Fatalf("len=%d, want %d", g, w)
	}
	if g, w := [4]byte(got[4:8]), Checksum(got); g != w {
		t.Fatalf("checksum=%x, want %x", g, w)
	}
}
