package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"
)

// TestBinarySyncRoundTrip: requests and answers come back as written, and
// every truncation of them, a wrong magic, trailing bytes and lengths past
// the end are refused with ErrBinaryBody.
func TestBinarySyncRoundTrip(t *testing.T) {
	h := func(b byte) (x [32]byte) { x[0], x[31] = b, b; return }
	docs := []RawSyncDoc{
		{Collection: "todos", ID: "a", Have: [][32]byte{h(1), h(2)}, Changes: []byte{0x85, 0x6f, 0x4a, 0x83, 1, 2, 3}},
		{Collection: "notes", ID: "b", Have: [][32]byte{}, Changes: []byte{}},
	}
	req := AppendSyncRequest(nil, docs)
	got, err := ParseSyncRequest(req)
	if err != nil || !reflect.DeepEqual(got, docs) {
		t.Fatalf("ParseSyncRequest = %+v, %v; want %+v", got, err, docs)
	}
	rs := []RawSyncResult{
		{Collection: "todos", ID: "a", Heads: [][32]byte{h(3)}, Changes: []byte{9, 9}},
		{Collection: "notes", ID: "b", Heads: [][32]byte{}, Changes: []byte{}, Error: &ErrorDetail{Code: CodeMissingDeps, Message: "resend"}},
	}
	ans := AppendSyncResponse(nil, rs)
	gotRs, err := ParseSyncResponse(ans)
	if err != nil || !reflect.DeepEqual(gotRs, rs) {
		t.Fatalf("ParseSyncResponse = %+v, %v; want %+v", gotRs, err, rs)
	}

	bad := map[string][]byte{
		"wrong magic":    append([]byte("DMS2"), req[4:]...),
		"trailing bytes": append(append([]byte{}, req...), 0),
		"count too high": append([]byte(binaryMagic), 0xff, 0xff, 0xff, 0xff, 0x0f),
		// One doc "c"/"i" announcing 100 hashes, and nothing after.
		"hash count past the end": append([]byte(binaryMagic), 1, 1, 'c', 1, 'i', 100),
	}
	for i := range len(req) {
		bad[fmt.Sprintf("request cut at %d", i)] = req[:i]
	}
	for name, b := range bad {
		if _, err := ParseSyncRequest(b); !errors.Is(err, ErrBinaryBody) {
			t.Errorf("%s: ParseSyncRequest = %v, want ErrBinaryBody", name, err)
		}
	}
	for i := range len(ans) {
		if _, err := ParseSyncResponse(ans[:i]); !errors.Is(err, ErrBinaryBody) {
			t.Errorf("answer cut at %d: %v, want ErrBinaryBody", i, err)
		}
	}
}

// FuzzParseSyncRequest: any body parses or is refused with ErrBinaryBody,
// never panics, and what parses writes back to the same bytes.
func FuzzParseSyncRequest(f *testing.F) {
	f.Add(AppendSyncRequest(nil, []RawSyncDoc{{Collection: "todos", ID: "a", Have: [][32]byte{{1}}, Changes: []byte{1, 2}}}))
	f.Add([]byte(binaryMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		docs, err := ParseSyncRequest(b)
		if err != nil {
			if !errors.Is(err, ErrBinaryBody) {
				t.Fatalf("error %v is not ErrBinaryBody", err)
			}
			return
		}
		if again := AppendSyncRequest(nil, docs); !bytes.Equal(again, b) {
			t.Fatalf("%x parsed and written back as %x", b, again)
		}
	})
}
