package benchmarks

import (
	"path/filepath"
	"testing"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/internal/testutil"
	"github.com/dynamerge/dynamerge/server"
	"github.com/dynamerge/dynamerge/store/bolt"
)

// stack is the whole server side in this process, as an operator runs it
// (testutil.Stack): a bolt store in a temporary directory, counted, under
// the real engine and server on 127.0.0.1. Clients reach it over real HTTP
// on loopback.
type stack struct {
	*testutil.Stack
	bolt   *bolt.Store
	counts *CountingStore // wraps bolt; the engine writes through it
	client *client.Client // follows restarts
}

// newStack starts a stack on a fresh bolt file with opts and stops it at
// cleanup.
func newStack(tb testing.TB, opts engine.Options) *stack {
	tb.Helper()
	st, err := bolt.Open(filepath.Join(tb.TempDir(), "bench.db"), nil)
	if err != nil {
		tb.Fatalf("bolt.Open: %v", err)
	}
	if *flagCacheBytes > 0 {
		opts.CacheBytes = *flagCacheBytes
	}
	s := &stack{bolt: st, counts: NewCountingStore(st)}
	s.Stack = testutil.Start(tb, s.counts, opts, server.Options{})
	s.client = s.Client
	tb.Cleanup(func() {
		s.Stop()
		if err := st.Close(); err != nil {
			tb.Errorf("bolt close: %v", err)
		}
	})
	return s
}

// newClient returns another client of the stack.
func (s *stack) newClient() *client.Client { return s.NewClient() }

// restart replaces engine and server with fresh ones on the same store: no
// record is hot any more.
func (s *stack) restart() { s.Restart() }

// reportRSS reports the resident memory of this process (server and
// clients: they share it), in MB.
func (s *stack) reportRSS(b *testing.B) {
	b.Helper()
	rss, err := ProcessRSS()
	if err != nil {
		b.Logf("rss: %v", err)
		return
	}
	b.ReportMetric(float64(rss)/(1<<20), "rss-MB")
}

// reportStore reports store calls per change moved by the measured part of a
// benchmark: appends (log writes), fsyncs (bolt transactions that carried
// appends) and reads.
func (s *stack) reportStore(b *testing.B, changes int, before StoreCounts, boltBefore bolt.Stats) {
	b.Helper()
	if changes == 0 {
		return
	}
	d := s.counts.Counts().Sub(before)
	bs := s.bolt.Stats()
	n := float64(changes)
	b.ReportMetric(float64(d.Appends)/n, "store-writes/change")
	b.ReportMetric(float64(bs.Commits-boltBefore.Commits)/n, "fsyncs/change")
	b.ReportMetric(float64(d.Loads+d.ReadLogs)/n, "store-reads/change")
	if d.AppendErrors > 0 {
		b.Logf("%d of %d appends failed (conflicts are retried by the engine)", d.AppendErrors, d.Appends)
	}
}
