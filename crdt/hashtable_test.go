package crdt

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"
)

// TestHashTable: every hash put is found at its index, through growth;
// absent hashes are not, including ones that share a present hash's first
// bytes (where a client-chosen prefix would land without the keyed hash).
func TestHashTable(t *testing.T) {
	var hashes []Hash
	var tab hashTable
	if _, ok := tab.get(hashes, Hash{}); ok {
		t.Fatal("empty table found a hash")
	}
	for i := range 10_000 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(i))
		hashes = append(hashes, Hash(sha256.Sum256(b[:])))
		tab.put(hashes, int32(i))
	}
	for i, h := range hashes {
		if got, ok := tab.get(hashes, h); !ok || got != int32(i) {
			t.Fatalf("get(hash %d) = %d, %v", i, got, ok)
		}
	}
	for i := range 1000 {
		absent := hashes[i]
		absent[31] ^= 1
		if got, ok := tab.get(hashes, absent); ok {
			t.Fatalf("get(absent hash %d) found %d", i, got)
		}
	}
	if got, want := tab.bytes(), int64(16384*4); got != want {
		t.Fatalf("10,000 entries take %d bytes, want %d (16,384 slots, at most 3/4 full)", got, want)
	}
}
