// Package metrics defines the service's Prometheus metrics on a registry of its own (never the
// global one).
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds every collector of the process.
type Metrics struct {
	Registry *prometheus.Registry
	reg      *registry

	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	inFlight      prometheus.Gauge
	cacheLookups  *prometheus.CounterVec
	seedRuns      *prometheus.CounterVec
	seedRows      *prometheus.CounterVec
	seedDuration  prometheus.Histogram
	ingestBatches *prometheus.CounterVec
	ingestRows    prometheus.Counter
	ingestBytes   prometheus.Counter
	ingestSeconds *prometheus.HistogramVec
	ingestLag     prometheus.Histogram
	stagedAge     prometheus.Gauge
	parts         *prometheus.CounterVec
	publishes     *prometheus.CounterVec
	publishTime   prometheus.Histogram
	publishHeld   prometheus.Histogram
}

// New registers the collectors, including Go runtime, process and build information.
func New(version string) *Metrics {
	reg := &registry{Registry: prometheus.NewRegistry()}
	m := &Metrics{
		Registry: reg.Registry,
		reg:      reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rates_http_requests_total", Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rates_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by route pattern and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rates_http_requests_in_flight", Help: "HTTP requests being served now.",
		}),
		cacheLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rates_answer_cache_lookups_total", Help: "Lookups in the /rates answer cache, by result (hit: cached answer, days: built from cached days, miss: read from the database).",
		}, []string{"result"}),
		seedRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rates_seed_runs_total", Help: "Seeding runs by result (applied, skipped, failed).",
		}, []string{"result"}),
		seedRows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rates_seed_rows_total", Help: "Rows imported by the seeder, by table.",
		}, []string{"table"}),
		seedDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "rates_seed_duration_seconds", Help: "Duration of applied seeding runs.",
			Buckets: prometheus.ExponentialBuckets(0.1, 2, 12),
		}),
		ingestBatches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rates_ingest_batches_total", Help: "Price batches by result (loaded, duplicate, rejected, failed).",
		}, []string{"result"}),
		ingestRows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rates_ingest_rows_total", Help: "Price rows committed by loaded batches.",
		}),
		ingestBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rates_ingest_bytes_total", Help: "Bytes read from loaded batches.",
		}),
		ingestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rates_ingest_batch_duration_seconds", Help: "Time to process one batch, by result.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14),
		}, []string{"result"}),
		ingestLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "rates_ingest_lag_seconds",
			Help: "Time from a batch's arrival (S3 event time, or upload start for POST /batches) to its commit.",
			// From a second to a day: a queue that backs up shows here before anywhere else.
			Buckets: []float64{1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400},
		}),
		stagedAge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rates_ingest_staged_batch_age_seconds",
			Help: "Age of the oldest multi-part batch still staging (since its registration), 0 when none; set by each worker's sweep.",
		}),
		parts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rates_ingest_parts_total",
			Help: "Parts of multi-part batches settled, by result (staged; checked: sound, beside a bad part; bad).",
		}, []string{"result"}),
		publishes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rates_ingest_publishes_total", Help: "Publishes of multi-part batches, by result (loaded, duplicate, failed).",
		}, []string{"result"}),
		publishTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "rates_ingest_publish_duration_seconds", Help: "Duration of the publish transaction of a multi-part batch, commit included.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}),
		publishHeld: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "rates_ingest_publish_price_daily_held_seconds",
			Help:    "Time a publish held price_daily's rows, from its first write to price_daily to the end of its commit.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}),
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "rates_build_info", Help: "Build information; the value is always 1.",
	}, []string{"version"})
	buildInfo.WithLabelValues(version).Set(1)
	reg.MustRegister(m.requests, m.duration, m.inFlight, m.cacheLookups, m.seedRuns, m.seedRows, m.seedDuration,
		m.ingestBatches, m.ingestRows, m.ingestBytes, m.ingestSeconds, m.ingestLag,
		m.stagedAge, m.parts, m.publishes, m.publishTime, m.publishHeld, buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// registry remembers what New registers, so that Names can list every metric the process may
// emit, including vectors that have not seen a label value yet (Gather omits those).
type registry struct {
	*prometheus.Registry
	collectors []prometheus.Collector
}

func (r *registry) MustRegister(cs ...prometheus.Collector) {
	r.Registry.MustRegister(cs...)
	r.collectors = append(r.collectors, cs...)
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// WatchPool exports the connection pool's statistics, read at each scrape.
func (m *Metrics) WatchPool(pool *pgxpool.Pool) {
	m.Registry.MustRegister(poolCollector{pool: pool})
}

// RequestStarted counts a request in flight; call the returned func when it is answered.
func (m *Metrics) RequestStarted() (done func()) {
	if m == nil {
		return func() {}
	}
	m.inFlight.Inc()
	return m.inFlight.Dec
}

// RequestDone records an answered request. route is the router's pattern (not the raw path),
// and a method outside HTTP's standard ones is counted as OTHER, so the label set stays small
// whatever clients send: net/http accepts any token as a method, and each new label value would
// be a series kept for the life of the process.
func (m *Metrics) RequestDone(route, method string, status int, d time.Duration) {
	if m == nil {
		return
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
	default:
		method = "OTHER"
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route, method).Observe(d.Seconds())
}

// CacheLookup counts a /rates answer by where it came from: "hit" (the answer was cached),
// "days" (built from cached days, no query) or "miss" (the days were read from the database).
func (m *Metrics) CacheLookup(result string) {
	if m == nil {
		return
	}
	m.cacheLookups.WithLabelValues(result).Inc()
}

// SeedDone records a seeding run.
func (m *Metrics) SeedDone(skipped bool, rows map[string]int64, d time.Duration, err error) {
	if m == nil {
		return
	}
	switch {
	case err != nil:
		m.seedRuns.WithLabelValues("failed").Inc()
	case skipped:
		m.seedRuns.WithLabelValues("skipped").Inc()
	default:
		m.seedRuns.WithLabelValues("applied").Inc()
		m.seedDuration.Observe(d.Seconds())
		for table, n := range rows {
			m.seedRows.WithLabelValues(table).Add(float64(n))
		}
	}
}

// batchDone records one ingested batch: result is loaded, duplicate, rejected or failed.
func (m *Metrics) batchDone(result string, rows, bytes int64, d time.Duration) {
	if m == nil {
		return
	}
	m.ingestBatches.WithLabelValues(result).Inc()
	m.ingestSeconds.WithLabelValues(result).Observe(d.Seconds())
	if result == "loaded" {
		m.ingestRows.Add(float64(rows))
		m.ingestBytes.Add(float64(bytes))
	}
}

// IngestLag records the time from a batch's arrival to its commit.
func (m *Metrics) IngestLag(d time.Duration) {
	if m == nil {
		return
	}
	m.ingestLag.Observe(max(d, 0).Seconds())
}

// StagedBatchAge records the age of the oldest multi-part batch still staging (0 for none).
func (m *Metrics) StagedBatchAge(d time.Duration) {
	if m == nil {
		return
	}
	m.stagedAge.Set(max(d, 0).Seconds())
}

// PartSettled counts a part of a multi-part batch by what became of it: staged, checked or bad.
func (m *Metrics) PartSettled(result string) {
	if m == nil {
		return
	}
	m.parts.WithLabelValues(result).Inc()
}

// Published records the publish of a multi-part batch: result is loaded, duplicate or failed;
// d is the publish transaction's duration and held the time it held price_daily's rows.
func (m *Metrics) Published(result string, d, held time.Duration) {
	if m == nil {
		return
	}
	m.publishes.WithLabelValues(result).Inc()
	if result != "failed" {
		m.publishTime.Observe(d.Seconds())
		m.publishHeld.Observe(held.Seconds())
	}
}

// poolCollector reads pgxpool statistics at scrape time.
type poolCollector struct{ pool *pgxpool.Pool }

var (
	poolTotal     = prometheus.NewDesc("rates_db_pool_connections", "Connections in the pool, by state.", []string{"state"}, nil)
	poolMax       = prometheus.NewDesc("rates_db_pool_max_connections", "Maximum size of the pool.", nil, nil)
	poolAcquires  = prometheus.NewDesc("rates_db_pool_acquires_total", "Connections acquired from the pool.", nil, nil)
	poolWaits     = prometheus.NewDesc("rates_db_pool_empty_acquires_total", "Acquires that had to wait for a connection.", nil, nil)
	poolWaitTime  = prometheus.NewDesc("rates_db_pool_acquire_wait_seconds_total", "Time spent waiting for connections.", nil, nil)
	poolCancelled = prometheus.NewDesc("rates_db_pool_canceled_acquires_total", "Acquires given up because their context ended.", nil, nil)
)

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolTotal, poolMax, poolAcquires, poolWaits, poolWaitTime, poolCancelled} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	ch <- prometheus.MustNewConstMetric(poolTotal, prometheus.GaugeValue, float64(s.AcquiredConns()), "acquired")
	ch <- prometheus.MustNewConstMetric(poolTotal, prometheus.GaugeValue, float64(s.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(poolTotal, prometheus.GaugeValue, float64(s.ConstructingConns()), "constructing")
	ch <- prometheus.MustNewConstMetric(poolMax, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(poolAcquires, prometheus.CounterValue, float64(s.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolWaits, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolWaitTime, prometheus.CounterValue, s.AcquireDuration().Seconds())
	ch <- prometheus.MustNewConstMetric(poolCancelled, prometheus.CounterValue, float64(s.CanceledAcquireCount()))
}

// ObserveBatch is an ingest.LoaderOptions.Observe function's body without the ingest types, so
// this package stays free of them: the caller maps its result to these values.
func (m *Metrics) ObserveBatch(failed, replayed, rejected bool, rows, bytes int64, d time.Duration) {
	switch {
	case failed:
		m.batchDone("failed", rows, bytes, d)
	case replayed:
		m.batchDone("duplicate", rows, bytes, d)
	case rejected:
		m.batchDone("rejected", rows, bytes, d)
	default:
		m.batchDone("loaded", rows, bytes, d)
	}
}
