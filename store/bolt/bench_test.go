package bolt_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dynamerge/dynamerge/store"
)

// benchAppends runs b.N Appends of 200-byte entries from `workers`
// goroutines, each on its own record (different records share commits), and
// reports appends/s and the mean number of Appends per commit.
func benchAppends(b *testing.B, workers int) {
	s := mustOpen(b, "", nil)
	ctx := b.Context()
	changes := make([]byte, 200)
	meta := store.AppendMeta{Heads: []string{"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}, Size: 200}
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			k := store.Key{Collection: "bench", ID: fmt.Sprint("r", w)}
			for seq := uint64(1); next.Add(1) <= int64(b.N); seq++ {
				if err := s.Append(ctx, k, store.Entry{Seq: seq, Changes: changes}, meta); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	if st := s.Stats(); st.Commits > 0 {
		b.ReportMetric(float64(st.Appends)/float64(st.Commits), "appends/commit")
	}
}

func BenchmarkAppend_Serial(b *testing.B)     { benchAppends(b, 1) }
func BenchmarkAppend_Parallel8(b *testing.B)  { benchAppends(b, 8) }
func BenchmarkAppend_Parallel64(b *testing.B) { benchAppends(b, 64) }
