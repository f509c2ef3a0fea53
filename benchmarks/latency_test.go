package benchmarks

import (
	"sync"
	"testing"
	"time"
)

func TestLatenciesPercentile(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	tests := []struct {
		name    string
		samples []time.Duration
		p       float64
		want    time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample p50", []time.Duration{ms(7)}, 50, ms(7)},
		{"one sample p99", []time.Duration{ms(7)}, 99, ms(7)},
		{"p50 of 1..10 is the 5th", []time.Duration{ms(10), ms(9), ms(8), ms(7), ms(6), ms(5), ms(4), ms(3), ms(2), ms(1)}, 50, ms(5)},
		{"p99 of 1..10 is the max", []time.Duration{ms(3), ms(1), ms(10), ms(2), ms(4), ms(5), ms(6), ms(7), ms(8), ms(9)}, 99, ms(10)},
		{"p100 is the max", []time.Duration{ms(2), ms(3), ms(1)}, 100, ms(3)},
		{"tiny p is the min", []time.Duration{ms(2), ms(3), ms(1)}, 0.001, ms(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l Latencies
			for _, d := range tt.samples {
				l.Add(d)
			}
			if got, want := l.Percentile(tt.p), tt.want; got != want {
				t.Fatalf("Percentile(%v)=%v, want %v", tt.p, got, want)
			}
		})
	}
}

func TestLatenciesConcurrentAdd(t *testing.T) {
	var l Latencies
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				l.Add(time.Duration(g*100 + i))
			}
		})
	}
	wg.Wait()
	if got, want := l.Len(), 800; got != want {
		t.Fatalf("Len()=%d, want %d", got, want)
	}
	if got, want := l.Percentile(100), time.Duration(799); got != want {
		t.Fatalf("Percentile(100)=%v, want %v", got, want)
	}
	// Adding after a percentile query must re-sort.
	l.Add(1000)
	if got, want := l.Percentile(100), time.Duration(1000); got != want {
		t.Fatalf("Percentile(100) after Add=%v, want %v", got, want)
	}
}

func TestMillis(t *testing.T) {
	if got, want := Millis(1500*time.Microsecond), 1.5; got != want {
		t.Fatalf("Millis(1.5ms)=%v, want %v", got, want)
	}
}

func TestProcessRSS(t *testing.T) {
	rss, err := ProcessRSS()
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	// A Go test binary is several MB resident and far below 64 GB.
	if rss < 1<<20 || rss > 64<<30 {
		t.Fatalf("ProcessRSS()=%d bytes, not plausible", rss)
	}
}
