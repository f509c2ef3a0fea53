package crdt

import "hash/maphash"

// hashTable maps change hashes to change indexes in 4 bytes a slot, where a
// Go map would hold each 32-byte key a second time beside the index's own
// array of hashes (about 56 bytes a change, the largest part of an index of
// typing changes). It is an open-addressing table of indexes into that
// array, probed linearly and kept at most three-quarters full. Entries are
// never removed.
//
// Slots are chosen by a keyed hash of the change hash, the key random per
// table: change hashes are chosen by clients, who could otherwise push
// changes ground to share their first bytes and make every lookup of a
// record probe far.
type hashTable struct {
	seed  maphash.Seed
	slots []int32 // change index + 1; 0 is empty
	n     int
}

// get returns the index of h, whose hash is hashes[index].
func (t *hashTable) get(hashes []Hash, h Hash) (int32, bool) {
	if t.n == 0 {
		return 0, false
	}
	mask := uint64(len(t.slots) - 1)
	for p := t.start(h) & mask; ; p = (p + 1) & mask {
		s := t.slots[p]
		if s == 0 {
			return 0, false
		}
		if hashes[s-1] == h {
			return s - 1, true
		}
	}
}

// put adds index i, whose hash hashes[i] the table does not hold yet.
func (t *hashTable) put(hashes []Hash, i int32) {
	t.reserve(hashes, t.n+1)
	t.place(hashes[i], i+1)
	t.n++
}

// reserve makes room for n entries in all, so that adding many changes
// rehashes at most once.
func (t *hashTable) reserve(hashes []Hash, n int) {
	size := 8
	for size*3 < n*4 {
		size *= 2
	}
	if size <= len(t.slots) {
		return
	}
	if t.slots == nil {
		t.seed = maphash.MakeSeed()
	}
	old := t.slots
	t.slots = make([]int32, size)
	for _, s := range old {
		if s != 0 {
			t.place(hashes[s-1], s)
		}
	}
}

func (t *hashTable) place(h Hash, s int32) {
	mask := uint64(len(t.slots) - 1)
	p := t.start(h) & mask
	for t.slots[p] != 0 {
		p = (p + 1) & mask
	}
	t.slots[p] = s
}

func (t *hashTable) start(h Hash) uint64 { return maphash.Bytes(t.seed, h[:]) }

// bytes is the table's heap size.
func (t *hashTable) bytes() int64 { return int64(cap(t.slots)) * 4 }
