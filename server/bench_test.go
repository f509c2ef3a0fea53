package server

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/engine"
)

// BenchmarkSync_HTTPPush1 pushes one new change per request through the
// whole stack (HTTP, engine, workers, bbolt with fsync), from parallel
// clients on separate records.
func BenchmarkSync_HTTPPush1(b *testing.B) {
	rs := newRealServer(b, Options{}, engine.Options{})
	c := client.New(rs.url)
	ctx := context.Background()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		id := fmt.Sprintf("b%d", next.Add(1))
		r := client.NewReplica(c, "bench", id)
		i := 0
		for pb.Next() {
			i++
			if err := r.Doc().Path("n").Set(i); err != nil {
				b.Error(err)
				return
			}
			if _, err := r.Doc().Commit("n"); err != nil {
				b.Error(err)
				return
			}
			if err := r.Sync(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
