package dynamo

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dynamerge/dynamerge/store"
)

func TestLogSK(t *testing.T) {
	tests := []struct {
		seq  uint64
		part int
		sk   string
	}{
		{1, 0, "log#00000000000000000001"},
		{1, 1, "log#00000000000000000001#001"},
		{12345, 9, "log#00000000000000012345#009"},
		{^uint64(0), 0, "log#18446744073709551615"},
	}
	for _, tt := range tests {
		if got := logSK(tt.seq, tt.part); got != tt.sk {
			t.Errorf("logSK(%d, %d) = %q, want %q", tt.seq, tt.part, got, tt.sk)
		}
		seq, part, err := parseLogSK(tt.sk)
		if err != nil || seq != tt.seq || part != tt.part {
			t.Errorf("parseLogSK(%q) = %d, %d, %v", tt.sk, seq, part, err)
		}
	}
	// Sort order is numeric order, parts right after their entry, and the
	// log range ends before meta and snapshots.
	order := []string{logSK(9, 0), logSK(9, 1), logSK(9, 2), logSK(10, 0), skLogEnd, SKMeta, snapSK(1, "ab", 0)}
	for i := 1; i < len(order); i++ {
		if order[i-1] >= order[i] {
			t.Errorf("%q sorts after %q", order[i-1], order[i])
		}
	}
	for _, bad := range []string{"log#", "log#1", "log#0000000000000000000x", "log#00000000000000000001#1", "log#00000000000000000001#000", "meta"} {
		if _, _, err := parseLogSK(bad); !errors.Is(err, errCorrupt) {
			t.Errorf("parseLogSK(%q) = %v, want errCorrupt", bad, err)
		}
	}
}

func TestCursor(t *testing.T) {
	for _, c := range []feedCursor{
		{},
		{pos: "1764201600000000#rec-1", floor: 1764201570000000},
		{pos: "1764201600000000"},
	} {
		got, err := parseCursor(formatCursor(c))
		if err != nil || got != c {
			t.Errorf("parseCursor(formatCursor(%+v)) = %+v, %v", c, got, err)
		}
	}
	bad := []string{
		"!!not a cursor!!", "\xff\xfe", "%%%", "Zg", // "f"
		formatCursor(feedCursor{pos: "12#x"}),                 // short time
		formatCursor(feedCursor{pos: "000000000000000a#x"}),   // not digits
		formatCursor(feedCursor{pos: "0000000000000001#a/b"}), // not an id
		formatCursor(feedCursor{floor: -1}),
	}
	for _, s := range bad {
		if _, err := parseCursor(s); !errors.Is(err, store.ErrInvalidCursor) {
			t.Errorf("parseCursor(%q) = %v, want ErrInvalidCursor", s, err)
		}
	}
}

// logItems builds the items of entry seq split into parts of size n.
func logItems(seq uint64, data []byte, n int) []map[string]types.AttributeValue {
	parts := max(1, (len(data)+n-1)/n)
	h := sha256.Sum256(data)
	var items []map[string]types.AttributeValue
	for i := range parts {
		it := map[string]types.AttributeValue{
			AttrSK:   &types.AttributeValueMemberS{Value: logSK(seq, i)},
			AttrData: &types.AttributeValueMemberB{Value: data[i*n : min(len(data), (i+1)*n)]},
		}
		if i == 0 {
			it[AttrParts], it[AttrLen] = num(uint64(parts)), num(uint64(len(data)))
			it[AttrEntryHash] = &types.AttributeValueMemberB{Value: h[:]}
		}
		items = append(items, it)
	}
	return items
}

func TestAssembleLog(t *testing.T) {
	one, two, three := []byte("first entry"), bytes.Repeat([]byte("x"), 25), []byte("third")
	var items []map[string]types.AttributeValue
	items = append(items, logItems(1, one, 100)...)
	items = append(items, logItems(2, two, 10)...) // 3 parts
	items = append(items, logItems(3, three, 100)...)

	entries, err := assembleLog(items)
	if err != nil || len(entries) != 3 || !bytes.Equal(entries[1].Changes, two) || entries[2].Seq != 3 {
		t.Fatalf("assembleLog = %d entries, %v", len(entries), err)
	}
	// A query that saw only some parts of an entry being committed (reads
	// are read-committed): the log up to before it.
	partial := append(append([]map[string]types.AttributeValue{}, items[:2]...), items[3:]...) // part 1 of seq 2 missing
	if entries, err := assembleLog(partial); err != nil || len(entries) != 1 {
		t.Fatalf("assembleLog(part missing) = %d entries, %v; want the first only", len(entries), err)
	}
	if entries, err := assembleLog(items[:3]); err != nil || len(entries) != 1 {
		t.Fatalf("assembleLog(last parts missing) = %d entries, %v; want the first only", len(entries), err)
	}
	// A later part without its first (compaction deleting from the front).
	if entries, err := assembleLog(items[2:]); err != nil || len(entries) != 0 {
		t.Fatalf("assembleLog(orphan part) = %d entries, %v; want none", len(entries), err)
	}
	// Bytes that do not match their hash are corruption, never returned.
	bad := logItems(1, one, 100)
	bad[0][AttrData] = &types.AttributeValueMemberB{Value: []byte("first entrY")}
	if _, err := assembleLog(bad); !errors.Is(err, errCorrupt) {
		t.Fatalf("assembleLog(altered bytes) = %v, want errCorrupt", err)
	}
}
