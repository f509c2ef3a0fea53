package benchmarks

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clients is the concurrency of the load benchmarks: 64 clients on the
// machine's 2 cores, far more requests in flight than cores, as a server
// sees them.
const clients = 64

// drive runs the measured part of a load benchmark: one goroutine per
// client, and one operation handed to whichever client is free per b.Loop
// iteration, so -benchtime bounds the run by time or count ("2000x") and
// ns/op is wall time per operation across all clients. op(client, n) does
// operation n on that client's goroutine; the first error stops the run and
// fails the benchmark. It returns the operations done and the wall time
// from the first to the end of the last.
func drive(b *testing.B, op func(client, n int) error) (ops int, elapsed time.Duration) {
	b.Helper()
	work := make(chan int)
	var (
		wg     sync.WaitGroup
		failed atomic.Bool
		done   atomic.Int64
	)
	for c := range clients {
		wg.Go(func() {
			for n := range work {
				if failed.Load() {
					continue // drain: the run is lost anyway
				}
				if err := op(c, n); err != nil {
					if failed.CompareAndSwap(false, true) {
						b.Errorf("client %d, op %d: %v", c, n, err)
					}
					continue
				}
				done.Add(1)
			}
		})
	}
	start := time.Now()
	n := 0
	for b.Loop() {
		work <- n
		n++
	}
	close(work)
	wg.Wait()
	elapsed = time.Since(start)
	if failed.Load() {
		b.FailNow()
	}
	return int(done.Load()), elapsed
}

// newRand returns the run's random source, seeded from -seed or at random;
// the seed is logged so that a run can be replayed.
func newRand(b *testing.B) *rand.Rand {
	b.Helper()
	seed := *flagSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	b.Logf("seed %d (replay with -args -seed=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// reportLoad reports the figures every load benchmark shares.
func reportLoad(b *testing.B, ops int, elapsed time.Duration, lat *Latencies) {
	b.Helper()
	b.ReportMetric(float64(ops)/elapsed.Seconds(), "changes/s")
	b.ReportMetric(Millis(lat.Percentile(50)), "p50-ms")
	b.ReportMetric(Millis(lat.Percentile(99)), "p99-ms")
}
