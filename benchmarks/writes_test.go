package benchmarks

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/engine"
)

// REST write latency (PROTOCOL.md, Plain-JSON writes), one client, bbolt:
// each operation is one request that the server turns into one Automerge
// change (diffing the record's document against the body) and stores with
// fsync. Reported: p50-ms and p99-ms per request.

// BenchmarkRESTWrite_Small: PUT of a small todo, its title edited and its
// count changed each time.
func BenchmarkRESTWrite_Small(b *testing.B) {
	s := newStack(b, engine.Options{})
	ctx := context.Background()
	put := func(i int) error {
		body := fmt.Sprintf(`{"title": "Buy milk %d", "done": %t, "n": %d, "tags": ["home"]}`, i, i%2 == 0, i)
		_, err := s.client.Put(ctx, "bench", "small", json.RawMessage(body), client.WriteOptions{})
		return err
	}
	measureWrites(b, put)
}

// BenchmarkRESTWrite_Text1M_Patch: a merge patch of one small key of a
// record that also holds a 1,000,000-character text.
func BenchmarkRESTWrite_Text1M_Patch(b *testing.B) {
	s := newStack(b, engine.Options{})
	ctx := context.Background()
	text := bigText(1_000_000)
	if _, err := s.client.Put(ctx, "bench", "big", map[string]any{"body": text, "n": 0}, client.WriteOptions{}); err != nil {
		b.Fatal(err)
	}
	measureWrites(b, func(i int) error {
		_, err := s.client.MergePatch(ctx, "bench", "big", json.RawMessage(fmt.Sprintf(`{"n": %d}`, i+1)), client.WriteOptions{})
		return err
	})
}

// BenchmarkRESTWrite_Text1M_Put: a PUT of the whole record whose
// 1,000,000-character text has a word inserted in its middle: a 1 MB body,
// which the server turns into a splice of the word.
func BenchmarkRESTWrite_Text1M_Put(b *testing.B) {
	s := newStack(b, engine.Options{})
	ctx := context.Background()
	text := bigText(1_000_000)
	if _, err := s.client.Put(ctx, "bench", "big", map[string]any{"body": text}, client.WriteOptions{}); err != nil {
		b.Fatal(err)
	}
	measureWrites(b, func(i int) error {
		mid := len(text) / 2
		text = text[:mid] + "word " + text[mid:]
		_, err := s.client.Put(ctx, "bench", "big", map[string]any{"body": text}, client.WriteOptions{})
		return err
	})
}

func measureWrites(b *testing.B, write func(i int) error) {
	var lat Latencies
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		if err := write(i); err != nil {
			b.Fatalf("write %d: %v", i, err)
		}
		lat.Add(time.Since(start))
	}
	b.ReportMetric(Millis(lat.Percentile(50)), "p50-ms")
	b.ReportMetric(Millis(lat.Percentile(99)), "p99-ms")
}

// bigText returns n ASCII characters of prose.
func bigText(n int) string {
	const s = "The quick brown fox jumps over the lazy dog. "
	return strings.Repeat(s, n/len(s)+1)[:n]
}
