package server

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics lives in its own registry, not the global one: two servers in one
// process (tests, or an embedding application) must not collide.
type metrics struct {
	registry       *prometheus.Registry
	handler        http.Handler
	requests       *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	sseConnections prometheus.Gauge
	sseEvents      prometheus.Counter
}

func newMetrics(eng backend, extra []prometheus.Collector) (*metrics, error) {
	reg := prometheus.NewRegistry()
	m := &metrics{
		registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dynamerge_http_requests_total",
			Help: "HTTP requests by route template, method and status code.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dynamerge_http_request_duration_seconds",
			Help:    "HTTP request latency by route template (SSE streams count their whole life).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		sseConnections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dynamerge_sse_connections",
			Help: "Open Server-Sent Events streams.",
		}),
		sseEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dynamerge_sse_events_total",
			Help: "Change events sent on SSE streams.",
		}),
	}
	for _, c := range append([]prometheus.Collector{
		m.requests, m.latency, m.sseConnections, m.sseEvents,
		&engineCollector{eng: eng},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}, extra...) {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	return m, nil
}

func (m *metrics) observe(route, method string, status int, elapsed time.Duration) {
	m.requests.WithLabelValues(route, metricMethod(method), strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(elapsed.Seconds())
}

func (s *Server) handleMetrics(c echo.Context) error {
	if want := s.opts.MetricsToken; want != "" {
		tok, err := bearerToken(c.Request())
		if err != nil {
			return err
		}
		if subtle.ConstantTimeCompare([]byte(tok), []byte(want)) != 1 {
			return fmt.Errorf("%w: wrong metrics token", ErrUnauthorized)
		}
	}
	s.metrics.handler.ServeHTTP(c.Response(), c.Request())
	return nil
}

// engineCollector reads engine.Stats once per scrape, so the engine keeps
// plain counters and knows nothing of Prometheus.
type engineCollector struct {
	eng backend
}

var (
	descChangesMerged  = prometheus.NewDesc("dynamerge_changes_merged_total", "Automerge changes merged into records.", nil, nil)
	descBytesMerged    = prometheus.NewDesc("dynamerge_bytes_merged_total", "Bytes of Automerge changes merged into records.", nil, nil)
	descCacheBytes     = prometheus.NewDesc("dynamerge_cache_bytes", "Go-side bytes of hot records in the engine cache.", nil, nil)
	descCacheRecords   = prometheus.NewDesc("dynamerge_cache_records", "Hot records in the engine cache.", nil, nil)
	descCachedDocs     = prometheus.NewDesc("dynamerge_cache_documents", "Hot records holding a materialized document.", nil, nil)
	descMaterialized   = prometheus.NewDesc("dynamerge_documents_materialized_total", "Documents built from a snapshot and log (JSON views, snapshots).", nil, nil)
	descPurges         = prometheus.NewDesc("dynamerge_records_purged_total", "Deleted records this process purged (--purge-deleted-after).", nil, nil)
	descStoreWrites    = prometheus.NewDesc("dynamerge_store_writes_total", "Writes to the store.", nil, nil)
	descStoreErrors    = prometheus.NewDesc("dynamerge_store_errors_total", "Failed store calls.", nil, nil)
	descStoreConflicts = prometheus.NewDesc("dynamerge_store_conflicts_total", "Appends that lost a race for a log sequence number.", nil, nil)
	descCompactions    = prometheus.NewDesc("dynamerge_compactions_total", "Snapshots written by compaction.", nil, nil)
	descWatchChanges   = prometheus.NewDesc("dynamerge_watch_changes_total", "Record changes seen on the store's change stream (DynamoDB Streams), this process's own included.", nil, nil)
	descWatchPublished = prometheus.NewDesc("dynamerge_watch_published_total", "Changes of other processes seen on the store's change stream and sent to event subscribers.", nil, nil)
	descWatchGaps      = prometheus.NewDesc("dynamerge_watch_gaps_total", "Times the watch on the store's change stream lost its place or restarted (events may have been missed; clients catch up on their next sync).", nil, nil)
	descWatchRefreshed = prometheus.NewDesc("dynamerge_watch_refreshed_total", "Cached records refreshed because another process changed them.", nil, nil)
)

func (ec *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descChangesMerged, descBytesMerged, descCacheBytes, descCacheRecords,
		descCachedDocs, descMaterialized, descPurges, descStoreWrites, descStoreErrors, descStoreConflicts, descCompactions,
		descWatchChanges, descWatchPublished, descWatchGaps, descWatchRefreshed} {
		ch <- d
	}
}

func (ec *engineCollector) Collect(ch chan<- prometheus.Metric) {
	st := ec.eng.Stats()
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter(descChangesMerged, st.ChangesMerged)
	counter(descBytesMerged, st.BytesMerged)
	gauge(descCacheBytes, float64(st.CacheBytes))
	gauge(descCacheRecords, float64(st.CachedRecords))
	gauge(descCachedDocs, float64(st.CachedDocs))
	counter(descMaterialized, st.Materialized)
	counter(descPurges, st.Purges)
	counter(descStoreWrites, st.StoreWrites)
	counter(descStoreErrors, st.StoreErrors)
	counter(descStoreConflicts, st.StoreConflicts)
	counter(descCompactions, st.Compactions)
	if st.Watch.Watching {
		counter(descWatchChanges, st.Watch.Changes)
		counter(descWatchPublished, st.Watch.Published)
		counter(descWatchGaps, st.Watch.Gaps)
		counter(descWatchRefreshed, st.Watch.Refreshed)
	}
}

// metricMethod bounds the method label: clients choose the method, and each
// made-up one would otherwise be a new time series forever.
func metricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}
