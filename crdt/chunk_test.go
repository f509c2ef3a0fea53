package crdt

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"errors"
	"os"
	"testing"

	"github.com/dynamerge/dynamerge/internal/mutate"
)

func goldenChanges(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile("testdata/" + name + "/changes.bin")
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// firstChunk returns the first chunk of a golden case.
func firstChunk(tb testing.TB, name string) []byte {
	tb.Helper()
	cs, err := mutate.Chunks(goldenChanges(tb, name))
	if err != nil {
		tb.Fatal(err)
	}
	return cs[0]
}

func TestSplitRefuses(t *testing.T) {
	good := firstChunk(t, "scalars")
	withType := func(typ byte) []byte {
		b := bytes.Clone(good)
		b[8] = typ
		return mutate.FixChecksum(b)
	}
	badChecksum := bytes.Clone(good)
	badChecksum[5] ^= 1
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"bad magic", mutate.Flip(good, 0, 0x01)},
		{"bad checksum", badChecksum},
		{"document chunk", withType(chunkDocument)},
		{"unknown chunk type", withType(7)},
		{"truncated", good[:len(good)-1]},
		{"truncated fixed checksum", mutate.Truncate(good, len(good)-1)},
		{"trailing byte", append(bytes.Clone(good), 0)},
		{"trailing garbage chunk", append(bytes.Clone(good), chunkMagic...)},
		{"header only", good[:9]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Split(tt.in)
			if !errors.Is(err, ErrInvalidChange) {
				t.Fatalf("Split()=%v, want ErrInvalidChange", err)
			}
		})
	}
}

func TestSplitAcceptsConcatenation(t *testing.T) {
	b := goldenChanges(t, "longtext")
	cs, err := Split(b)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(cs), 65; got != want {
		t.Fatalf("len(Split())=%d, want %d", got, want)
	}
	for i, c := range cs {
		if got, want := c.Seq, uint64(i+1); got != want {
			t.Errorf("change %d: Seq=%d, want %d", i, got, want)
		}
		if i > 0 && (len(c.Deps) != 1 || c.Deps[0] != cs[i-1].Hash) {
			t.Errorf("change %d: Deps=%v, want [%s]", i, c.Deps, cs[i-1].Hash)
		}
	}
}

// deflateBomb returns a compressed change chunk whose body inflates to n
// zero bytes; its checksum is right for those bytes.
func deflateBomb(tb testing.TB, n int) []byte {
	tb.Helper()
	var z bytes.Buffer
	zw, _ := flate.NewWriter(&z, flate.BestCompression)
	zw.Write(make([]byte, n))
	zw.Close()
	plain := append(appendUleb([]byte{chunkChange}, uint64(n)), make([]byte, n)...)
	sum := mutate.Hash(append(append(bytes.Clone(chunkMagic), 0, 0, 0, 0), plain...))
	out := append(bytes.Clone(chunkMagic), sum[:4]...)
	out = append(out, chunkCompressedChange)
	out = appendUleb(out, uint64(z.Len()))
	return append(out, z.Bytes()...)
}

func TestSplitLimit(t *testing.T) {
	compressed := goldenChanges(t, "compressed")
	cs, err := Split(compressed)
	if err != nil {
		t.Fatal(err)
	}
	if cs[0].Raw[8] != chunkCompressedChange {
		t.Fatalf("golden compressed case starts with chunk type %d", cs[0].Raw[8])
	}
	inflated := len(uncompressed(t, cs[0]))
	tests := []struct {
		name    string
		in      []byte
		limit   int
		tooBig  bool
		invalid bool
	}{
		{"compressed within limit", compressed, inflated, false, false},
		{"compressed over limit once inflated", compressed, len(cs[0].Raw) + 1, true, true},
		{"plain over limit", firstChunk(t, "scalars"), 100, true, true},
		{"deflate bomb", deflateBomb(t, 4<<20), 1 << 20, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseChanges(tt.in, Limits{MaxChunkBytes: tt.limit})
			if got := errors.Is(err, ErrChunkTooLarge); got != tt.tooBig {
				t.Errorf("errors.Is(%v, ErrChunkTooLarge)=%v, want %v", err, got, tt.tooBig)
			}
			if got := errors.Is(err, ErrInvalidChange); got != tt.invalid {
				t.Errorf("errors.Is(%v, ErrInvalidChange)=%v, want %v", err, got, tt.invalid)
			}
		})
	}
}

func TestCompressedChangeHash(t *testing.T) {
	// A compressed chunk has the hash of its uncompressed form.
	plain := firstChunk(t, "scalars")
	want, err := Split(plain)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Split(compressChunk(plain))
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Hash != want[0].Hash {
		t.Fatalf("compressed Hash=%s, want %s", got[0].Hash, want[0].Hash)
	}
	if got[0].Ops != want[0].Ops || got[0].Message != want[0].Message {
		t.Fatalf("compressed change %+v, want %+v", got[0], want[0])
	}
}

func TestLEB128(t *testing.T) {
	tests := []struct {
		name   string
		in     []byte
		signed bool
		want   int64
		err    error
	}{
		{"uleb zero", []byte{0}, false, 0, nil},
		{"uleb 300", []byte{0xac, 0x02}, false, 300, nil},
		{"uleb overlong", []byte{0x80, 0x00}, false, 0, errOverlong},
		{"uleb truncated", []byte{0x80}, false, 0, errTruncated},
		{"uleb overflow", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, false, 0, errOverflow},
		{"sleb -1", []byte{0x7f}, true, -1, nil},
		{"sleb 64", []byte{0xc0, 0x00}, true, 64, nil},
		{"sleb -65", []byte{0xbf, 0x7f}, true, -65, nil},
		{"sleb overlong -1", []byte{0xff, 0x7f}, true, 0, errOverlong},
		{"sleb overlong 0", []byte{0x80, 0x00}, true, 0, errOverlong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &reader{b: tt.in}
			var got int64
			var err error
			if tt.signed {
				got, err = r.sleb()
			} else {
				var u uint64
				u, err = r.uleb()
				got = int64(u)
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("err=%v, want %v", err, tt.err)
			}
			if err == nil && got != tt.want {
				t.Fatalf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func FuzzSplit(f *testing.F) {
	for _, name := range []string{"scalars", "nested", "merge", "compressed", "text"} {
		f.Add(goldenChanges(f, name))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cs, err := ParseChanges(b, Limits{MaxChunkBytes: 1 << 20})
		if err != nil {
			if !errors.Is(err, ErrInvalidChange) {
				t.Fatalf("error %v does not wrap ErrInvalidChange", err)
			}
			return
		}
		if !bytes.Equal(Join(cs), b) {
			t.Fatalf("Join(Split(b)) != b")
		}
	})
}

// compressChunk turns an uncompressed change chunk into a compressed one
// (chunk type 2) with the same hash.
func compressChunk(chunk []byte) []byte {
	typ, start, n, err := mutate.Header(chunk)
	if err != nil || typ != chunkChange {
		return chunk
	}
	var z bytes.Buffer
	zw, _ := flate.NewWriter(&z, flate.BestCompression)
	zw.Write(chunk[start : start+n])
	zw.Close()
	sum := sha256.Sum256(chunk[8 : start+n])
	out := append([]byte(nil), chunkMagic...)
	out = append(out, sum[:4]...)
	out = append(out, chunkCompressedChange)
	out = appendUleb(out, uint64(z.Len()))
	return append(out, z.Bytes()...)
}

// uncompressed returns the uncompressed chunk of a change.
func uncompressed(tb testing.TB, c Change) []byte {
	tb.Helper()
	if c.Raw[8] == chunkChange {
		return c.Raw
	}
	_, start, n, err := mutate.Header(c.Raw)
	if err != nil {
		tb.Fatal(err)
	}
	body, err := inflate(c.Raw[start:start+n], DefaultMaxChunkBytes)
	if err != nil {
		tb.Fatal(err)
	}
	out, _ := frameChunk(chunkChange, body)
	return out
}
