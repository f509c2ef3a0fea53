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
	// Fan-out mode (fanout.go); zero without it.
	descFanoutPeers = prometheus.NewDesc("dynamerge_fanout_peers",
		"Other processes this one sends its changes to (fan-out mode).", nil, nil)
	descFanoutChanges = prometheus.NewDesc("dynamerge_fanout_changes_total",
		"Changes sent to other processes, given up on (the receiver then sees a gap), received from them, and read from the stream under a lease.",
		[]string{"what"}, nil)
	descFanoutStreamReads = prometheus.NewDesc("dynamerge_fanout_stream_reads_total",
		"GetRecords calls made under this process's stream lease.", nil, nil)
	descFanoutLeases = prometheus.NewDesc("dynamerge_fanout_leases_total",
		"Stream leases this process took, and lost or gave up.", []string{"what"}, nil)
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
	ch <- descFanoutPeers
	ch <- descFanoutChanges
	ch <- descFanoutStreamReads
	ch <- descFanoutLeases
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
		{descWriteUnits, "fanout", cp.FanoutWrites},
		{descReadUnits, "fanout", cp.FanoutReads},
	} {
		ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, m.v, m.op)
	}
	ch <- prometheus.MustNewConstMetric(descAppends, prometheus.CounterValue, float64(cp.Appends))
	f := c.s.FanoutStats()
	ch <- prometheus.MustNewConstMetric(descFanoutPeers, prometheus.GaugeValue, float64(f.Peers))
	for what, v := range map[string]uint64{"sent": f.Sent, "dropped": f.Dropped, "received": f.Received, "stream": f.StreamChanges} {
		ch <- prometheus.MustNewConstMetric(descFanoutChanges, prometheus.CounterValue, float64(v), what)
	}
	ch <- prometheus.MustNewConstMetric(descFanoutStreamReads, prometheus.CounterValue, float64(f.StreamReads))
	ch <- prometheus.MustNewConstMetric(descFanoutLeases, prometheus.CounterValue, float64(f.Leases), "taken")
	ch <- prometheus.MustNewConstMetric(descFanoutLeases, prometheus.CounterValue, float64(f.LeasesLost), "lost")
}
