package dynamo

import "github.com/prometheus/client_golang/prometheus"

var (
	descWriteUnits = prometheus.NewDesc("dynamerge_dynamodb_write_units_total",
		"DynamoDB write capacity units this process consumed (what on-demand tables bill), by operation: append, snapshot, cleanup.",
		[]string{"op"}, nil)
	descReadUnits = prometheus.NewDesc("dynamerge_dynamodb_read_units_total",
		"DynamoDB read capacity units this process consumed, by operation: load (records and log tails), feed, cleanup.",
		[]string{"op"}, nil)
	descAppends = prometheus.NewDesc("dynamerge_dynamodb_appends_total",
		"Log entries this process appended (one transaction each; group commit puts several pushes in one).",
		nil, nil)
)

// Collector exposes the store's consumed capacity (Capacity) as Prometheus
// counters, for the server's GET /metrics. It reads the counters at scrape
// time, so the store keeps plain atomics and costs nothing between scrapes.
func (s *Store) Collector() prometheus.Collector { return capacityCollector{s} }

type capacityCollector struct{ s *Store }

func (capacityCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descWriteUnits
	ch <- descReadUnits
	ch <- descAppends
}

func (c capacityCollector) Collect(ch chan<- prometheus.Metric) {
	cp := c.s.Capacity()
	for _, m := range []struct {
		d  *prometheus.Desc
		op string
		v  float64
	}{
		{descWriteUnits, "append", cp.AppendWrites},
		{descWriteUnits, "snapshot", cp.SnapshotWrites},
		{descWriteUnits, "cleanup", cp.CleanupWrites},
		{descReadUnits, "load", cp.Reads},
		{descReadUnits, "feed", cp.FeedReads},
		{descReadUnits, "cleanup", cp.CleanupReads},
	} {
		ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, m.v, m.op)
	}
	ch <- prometheus.MustNewConstMetric(descAppends, prometheus.CounterValue, float64(cp.Appends))
}
