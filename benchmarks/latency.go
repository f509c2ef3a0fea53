package benchmarks

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Latencies collects durations from many goroutines and answers percentiles.
// The zero value is ready to use. It keeps every sample: the benchmarks are
// bounded in count, and exact percentiles beat a sketch at these sizes.
type Latencies struct {
	mu     sync.Mutex
	d      []time.Duration
	sorted bool
}

// Add records one duration. Safe for concurrent use.
func (l *Latencies) Add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.sorted = false
	l.mu.Unlock()
}

// Len returns how many durations were recorded.
func (l *Latencies) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.d)
}

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of the
// recorded durations: the smallest sample that at least p percent of the
// samples do not exceed. It returns 0 when nothing was recorded.
func (l *Latencies) Percentile(p float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	if !l.sorted {
		slices.Sort(l.d)
		l.sorted = true
	}
	rank := int(math.Ceil(p / 100 * float64(len(l.d))))
	return l.d[min(max(rank, 1), len(l.d))-1]
}

// Millis converts d to fractional milliseconds, the unit of the p50-ms and
// p99-ms metrics.
func Millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
