package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// CloudWatch embedded metric format (EMF): every interval the process writes one JSON line per
// selected series on its log output; the awslogs driver ships it to the task's log group, and
// CloudWatch Logs turns the lines into metrics. The registry stays the one source: the lines
// carry the registry's own names, counters as the increase since the previous line, gauges as
// their value, histograms as their bucket counts (Values/Counts), from which CloudWatch computes
// percentiles (p99 of /rates) itself.

// ServiceDimension is the dimension every published series carries: the ECS service's name, so
// that the API and the worker (which share metric names) stay apart.
const ServiceDimension = "Service"

// EMFMetric selects one metric of the registry for CloudWatch.
type EMFMetric struct {
	// Name is the registry's name, also the CloudWatch metric name.
	Name string
	// Unit is the CloudWatch unit: Count, Seconds or Bytes.
	Unit string
	// Dimensions maps the Prometheus labels kept to their CloudWatch dimension names. Labels
	// not listed are summed away, so that the number of CloudWatch metrics (each one costs)
	// stays small whatever the label values.
	Dimensions map[string]string
	// Rollup also publishes the series under the Service dimension alone (counters and
	// histograms only: CloudWatch adds the data points up, which is what a total means).
	Rollup bool
}

// DimensionSets returns the CloudWatch dimension sets the selection publishes the metric under.
func (s EMFMetric) DimensionSets() [][]string {
	kept := make([]string, 0, len(s.Dimensions))
	for _, d := range s.Dimensions {
		kept = append(kept, d)
	}
	sort.Strings(kept)
	if len(kept) == 0 {
		return [][]string{{ServiceDimension}}
	}
	sets := [][]string{append([]string{ServiceDimension}, kept...)}
	if s.Rollup {
		sets = append(sets, []string{ServiceDimension})
	}
	return sets
}

// StatusClassDimension holds the status label reduced to its class (2xx, 4xx, 5xx): the 5XX
// ratio needs the class, not each code.
const StatusClassDimension = "StatusClass"

// EMFSelection is what reaches CloudWatch: the signals the alarms and the dashboard of
// terraform/modules/monitoring use. Seeding and the Go runtime stay on /metrics.
func EMFSelection() []EMFMetric {
	return []EMFMetric{
		{Name: "rates_http_requests_total", Unit: "Count", Dimensions: map[string]string{"status": StatusClassDimension}, Rollup: true},
		{Name: "rates_http_request_duration_seconds", Unit: "Seconds", Dimensions: map[string]string{"route": "Route"}, Rollup: true},
		{Name: "rates_http_requests_in_flight", Unit: "Count"},
		{Name: "rates_answer_cache_lookups_total", Unit: "Count", Dimensions: map[string]string{"result": "Result"}, Rollup: true},
		{Name: "rates_db_pool_connections", Unit: "Count", Dimensions: map[string]string{"state": "State"}},
		{Name: "rates_db_pool_max_connections", Unit: "Count"},
		{Name: "rates_db_pool_acquires_total", Unit: "Count"},
		{Name: "rates_db_pool_empty_acquires_total", Unit: "Count"},
		{Name: "rates_db_pool_acquire_wait_seconds_total", Unit: "Seconds"},
		{Name: "rates_db_pool_canceled_acquires_total", Unit: "Count"},
		{Name: "rates_ingest_batches_total", Unit: "Count", Dimensions: map[string]string{"result": "Result"}, Rollup: true},
		{Name: "rates_ingest_rows_total", Unit: "Count"},
		{Name: "rates_ingest_bytes_total", Unit: "Bytes"},
		{Name: "rates_ingest_batch_duration_seconds", Unit: "Seconds", Dimensions: map[string]string{"result": "Result"}, Rollup: true},
		{Name: "rates_ingest_lag_seconds", Unit: "Seconds"},
		{Name: "rates_ingest_staged_batch_age_seconds", Unit: "Seconds"},
		{Name: "rates_ingest_parts_total", Unit: "Count", Dimensions: map[string]string{"result": "Result"}, Rollup: true},
		{Name: "rates_ingest_publishes_total", Unit: "Count", Dimensions: map[string]string{"result": "Result"}, Rollup: true},
		{Name: "rates_ingest_publish_duration_seconds", Unit: "Seconds"},
		{Name: "rates_ingest_publish_price_daily_held_seconds", Unit: "Seconds"},
	}
}

// Names lists every metric the process may expose, with its label names: also the vectors
// that have not seen a label value yet, which Gather leaves out.
func (m *Metrics) Names() map[string][]string {
	ch := make(chan *prometheus.Desc, 16)
	go func() {
		for _, c := range m.reg.collectors {
			c.Describe(ch)
		}
		poolCollector{}.Describe(ch) // registered later, by WatchPool
		close(ch)
	}()
	names := map[string][]string{}
	for d := range ch {
		if name, labels, ok := parseDesc(d.String()); ok {
			names[name] = labels
		}
	}
	return names
}

var descRE = regexp.MustCompile(`^Desc\{fqName: "([^"]+)", .*variableLabels: \{([^}]*)\}\}$`)

// parseDesc reads the name and label names from a Desc's String form: client_golang has no
// accessor for them.
func parseDesc(s string) (name string, labels []string, ok bool) {
	m := descRE.FindStringSubmatch(s)
	if m == nil {
		return "", nil, false
	}
	for _, l := range strings.Split(m[2], ",") {
		if l = strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"); l != "" {
			labels = append(labels, l)
		}
	}
	return m[1], labels, true
}

// EMF writes the selected metrics in embedded metric format.
type EMF struct {
	w         io.Writer
	gatherer  prometheus.Gatherer
	namespace string
	service   string
	selection map[string]EMFMetric
	now       func() time.Time

	counters   map[string]float64        // last value per series
	histograms map[string]histogramState // last cumulative state per series
}

type histogramState struct {
	buckets []uint64 // cumulative counts per finite upper bound
	count   uint64
	sum     float64
}

// NewEMF writes m's selected metrics to w (one JSON document per line and series) under the
// CloudWatch namespace, with service as the Service dimension.
func (m *Metrics) NewEMF(w io.Writer, namespace, service string) *EMF {
	sel := map[string]EMFMetric{}
	for _, s := range EMFSelection() {
		sel[s.Name] = s
	}
	return &EMF{
		w: w, gatherer: m.Registry, namespace: namespace, service: service, selection: sel, now: time.Now,
		counters: map[string]float64{}, histograms: map[string]histogramState{},
	}
}

// Run flushes every interval until ctx ends, then once more, so that a stopping task publishes
// what it counted last. It returns the last write error, if any.
func (e *EMF) Run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	var last error
	for {
		select {
		case <-ctx.Done():
			if err := e.Flush(); err != nil {
				last = err
			}
			return last
		case <-t.C:
			if err := e.Flush(); err != nil {
				last = err
			}
		}
	}
}

// point is one published series: a metric under one set of dimension values.
type point struct {
	sel    EMFMetric
	dims   map[string]string
	value  float64
	hist   bool
	bounds []float64
	counts []uint64 // per bucket, the last one above the highest finite bound
	sum    float64
	count  uint64
}

// Flush writes one document per selected series: counters as their increase since the last
// flush, gauges as they are, histograms as their new observations.
func (e *EMF) Flush() error {
	fams, err := e.gatherer.Gather()
	if err != nil {
		return fmt.Errorf("gather metrics for EMF: %w", err)
	}
	points := map[string]*point{}
	for _, f := range fams {
		sel, ok := e.selection[f.GetName()]
		if !ok {
			continue
		}
		for _, mt := range f.GetMetric() {
			key, dims := e.series(f.GetName(), sel, mt.GetLabel())
			pk := pointKey(f.GetName(), dims)
			p := points[pk]
			if p == nil {
				p = &point{sel: sel, dims: dims}
				points[pk] = p
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				v := mt.GetCounter().GetValue()
				d := v - e.counters[key]
				if d < 0 { // a reset: the whole value is new
					d = v
				}
				e.counters[key] = v
				p.value += d
			case dto.MetricType_GAUGE:
				p.value += mt.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				p.hist = true
				e.addHistogram(p, key, mt.GetHistogram())
			}
		}
	}
	keys := make([]string, 0, len(points))
	for k := range points {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ts := e.now().UnixMilli()
	var errs []error
	for _, k := range keys {
		p := points[k]
		if p.hist && p.count == 0 {
			continue // an empty distribution is not a data point
		}
		line, err := json.Marshal(e.document(ts, p))
		if err != nil {
			errs = append(errs, fmt.Errorf("encode EMF for %s: %w", p.sel.Name, err))
			continue
		}
		if _, err := e.w.Write(append(line, '\n')); err != nil {
			return fmt.Errorf("write EMF: %w", err)
		}
	}
	return errors.Join(errs...)
}

// series returns the key of one registry series and the dimension values it is published under.
func (e *EMF) series(name string, sel EMFMetric, labels []*dto.LabelPair) (string, map[string]string) {
	var key strings.Builder
	key.WriteString(name)
	dims := map[string]string{}
	for _, l := range labels {
		key.WriteString("\xff" + l.GetName() + "=" + l.GetValue())
		if d, ok := sel.Dimensions[l.GetName()]; ok {
			v := l.GetValue()
			if d == StatusClassDimension && len(v) == 3 {
				v = v[:1] + "xx"
			}
			dims[d] = v
		}
	}
	return key.String(), dims
}

func pointKey(name string, dims map[string]string) string {
	ks := make([]string, 0, len(dims))
	for k, v := range dims {
		ks = append(ks, k+"="+v)
	}
	sort.Strings(ks)
	return name + "\xff" + strings.Join(ks, "\xff")
}

func (e *EMF) addHistogram(p *point, key string, h *dto.Histogram) {
	buckets := h.GetBucket()
	cur := histogramState{count: h.GetSampleCount(), sum: h.GetSampleSum(), buckets: make([]uint64, 0, len(buckets))}
	bounds := make([]float64, 0, len(buckets))
	for _, b := range buckets {
		if math.IsInf(b.GetUpperBound(), +1) {
			continue
		}
		bounds = append(bounds, b.GetUpperBound())
		cur.buckets = append(cur.buckets, b.GetCumulativeCount())
	}
	if len(bounds) == 0 {
		return // no bucket to place the observations in
	}
	prev, ok := e.histograms[key]
	if !ok || prev.count > cur.count || len(prev.buckets) != len(cur.buckets) {
		prev = histogramState{buckets: make([]uint64, len(cur.buckets))}
	}
	e.histograms[key] = cur
	if p.counts == nil {
		p.bounds = bounds
		p.counts = make([]uint64, len(bounds)+1)
	}
	var below uint64 // new observations up to the previous bound
	for i := range bounds {
		upTo := cur.buckets[i] - prev.buckets[i]
		if i < len(p.counts)-1 {
			p.counts[i] += upTo - below
		}
		below = upTo
	}
	p.counts[len(p.counts)-1] += (cur.count - prev.count) - below
	p.count += cur.count - prev.count
	p.sum += cur.sum - prev.sum
}

func (e *EMF) document(ts int64, p *point) map[string]any {
	doc := map[string]any{
		"_aws": map[string]any{
			"Timestamp": ts,
			"CloudWatchMetrics": []any{map[string]any{
				"Namespace":  e.namespace,
				"Dimensions": p.sel.DimensionSets(),
				"Metrics":    []any{map[string]any{"Name": p.sel.Name, "Unit": p.sel.Unit}},
			}},
		},
		ServiceDimension: e.service,
	}
	for d, v := range p.dims {
		doc[d] = v
	}
	if !p.hist {
		doc[p.sel.Name] = p.value
		return doc
	}
	// Each bucket counts as its upper bound, so percentiles read as "at most", at the histogram's
	// resolution. The bucket above the highest bound has none: its observations count as their
	// mean as far as the sum tells it (exact when they are the interval's only ones), and at least
	// the highest bound, so that a threshold above that bound can still be crossed.
	top := p.bounds[len(p.bounds)-1]
	if n := p.counts[len(p.counts)-1]; n > 0 {
		rest := p.sum
		for i, c := range p.counts[:len(p.counts)-1] {
			rest -= float64(c) * p.bounds[i]
		}
		top = max(top, rest/float64(n))
	}
	values, counts := []float64{}, []uint64{}
	for i, c := range p.counts {
		if c == 0 {
			continue
		}
		v := top
		if i < len(p.bounds) {
			v = p.bounds[i]
		}
		if n := len(values); n > 0 && values[n-1] == v {
			counts[n-1] += c
			continue
		}
		values = append(values, v)
		counts = append(counts, c)
	}
	doc[p.sel.Name] = map[string]any{
		"Values": values, "Counts": counts,
		"Min": values[0], "Max": values[len(values)-1],
		"Sum": p.sum, "Count": p.count,
	}
	return doc
}
