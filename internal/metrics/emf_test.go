package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEMFSelectionExistsInTheRegistry(t *testing.T) {
	names := New("test").Names()
	for _, s := range EMFSelection() {
		labels, ok := names[s.Name]
		if !ok {
			t.Errorf("EMF selects %s, which the registry does not have", s.Name)
			continue
		}
		for label := range s.Dimensions {
			if !slices.Contains(labels, label) {
				t.Errorf("EMF keeps label %q of %s, which has labels %v", label, s.Name, labels)
			}
		}
	}
}

func TestNamesListsVectorsWithoutValues(t *testing.T) {
	names := New("test").Names()
	for name, labels := range map[string][]string{
		"rates_http_requests_total":           {"route", "method", "status"},
		"rates_ingest_batch_duration_seconds": {"result"},
		"rates_db_pool_connections":           {"state"},
		"rates_build_info":                    {"version"},
	} {
		if got := names[name]; !slices.Equal(got, labels) {
			t.Errorf("Names()[%s] = %v, want %v", name, got, labels)
		}
	}
}

// emfDocs flushes and decodes every line, checking the EMF structure of each.
func emfDocs(t *testing.T, e *EMF, out *bytes.Buffer) map[string][]map[string]any {
	t.Helper()
	out.Reset()
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	docs := map[string][]map[string]any{}
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if line == "" {
			continue
		}
		var doc map[string]any
		if err := json.Unmarshal([]byte(line), &doc); err != nil {
			t.Fatalf("line is not JSON: %v: %s", err, line)
		}
		aws := doc["_aws"].(map[string]any)
		if _, ok := aws["Timestamp"].(float64); !ok {
			t.Fatalf("no Timestamp: %s", line)
		}
		for _, d := range aws["CloudWatchMetrics"].([]any) {
			directive := d.(map[string]any)
			if directive["Namespace"] != "rates-test" {
				t.Errorf("namespace %v", directive["Namespace"])
			}
			for _, set := range directive["Dimensions"].([]any) {
				for _, dim := range set.([]any) {
					if _, ok := doc[dim.(string)].(string); !ok {
						t.Errorf("dimension %v has no value in %s", dim, line)
					}
				}
			}
			for _, m := range directive["Metrics"].([]any) {
				name := m.(map[string]any)["Name"].(string)
				if _, ok := doc[name]; !ok {
					t.Errorf("metric %s has no value in %s", name, line)
				}
				docs[name] = append(docs[name], doc)
			}
		}
	}
	return docs
}

func find(docs []map[string]any, dim, value string) map[string]any {
	for _, d := range docs {
		if d[dim] == value {
			return d
		}
	}
	return nil
}

func TestEMFPublishesIncreasesAndDistributions(t *testing.T) {
	m := New("test")
	var out bytes.Buffer
	e := m.NewEMF(&out, "rates-test", "rates-test-api")
	e.now = func() time.Time { return time.UnixMilli(1_700_000_000_000) }

	for range 99 {
		m.RequestDone("/rates", "GET", 200, 4*time.Millisecond)
	}
	m.RequestDone("/rates", "GET", 503, 300*time.Millisecond)
	m.RequestDone("/", "GET", 500, time.Millisecond)
	m.CacheLookup("hit")
	m.CacheLookup("miss")
	m.ObserveBatch(false, false, true, 0, 10, 2*time.Second)
	m.StagedBatchAge(42 * time.Second)

	docs := emfDocs(t, e, &out)
	if d := docs["rates_ingest_staged_batch_age_seconds"]; len(d) != 1 || d[0]["rates_ingest_staged_batch_age_seconds"] != 42.0 ||
		d[0][ServiceDimension] != "rates-test-api" {
		t.Errorf("the age of the oldest staging batch, for its alarm: %v", d)
	}
	req := docs["rates_http_requests_total"]
	if d := find(req, StatusClassDimension, "5xx"); d == nil || d["rates_http_requests_total"] != 2.0 || d[ServiceDimension] != "rates-test-api" {
		t.Errorf("5xx requests: %v", d)
	}
	if d := find(req, StatusClassDimension, "2xx"); d == nil || d["rates_http_requests_total"] != 99.0 {
		t.Errorf("2xx requests: %v", d)
	}
	dur := find(docs["rates_http_request_duration_seconds"], "Route", "/rates")
	if dur == nil {
		t.Fatalf("no duration of /rates: %v", docs["rates_http_request_duration_seconds"])
	}
	dist := dur["rates_http_request_duration_seconds"].(map[string]any)
	if got, want := dist["Values"], []any{0.005, 0.5}; !slices.Equal(got.([]any), want) {
		t.Errorf("Values = %v, want %v (bucket upper bounds)", got, want)
	}
	if got, want := dist["Counts"], []any{99.0, 1.0}; !slices.Equal(got.([]any), want) {
		t.Errorf("Counts = %v, want %v", got, want)
	}
	if dist["Count"] != 100.0 || dist["Min"] != 0.005 || dist["Max"] != 0.5 {
		t.Errorf("statistics: %v", dist)
	}
	if d := find(docs["rates_ingest_batches_total"], "Result", "rejected"); d == nil || d["rates_ingest_batches_total"] != 1.0 {
		t.Errorf("rejected batches: %v", docs["rates_ingest_batches_total"])
	}
	if _, ok := docs["rates_build_info"]; ok {
		t.Error("rates_build_info is not selected, but was published")
	}
	if _, ok := docs["go_goroutines"]; ok {
		t.Error("Go runtime metrics stay on /metrics")
	}

	// The second flush carries only what happened since the first.
	m.RequestDone("/rates", "GET", 200, 30*time.Millisecond)
	docs = emfDocs(t, e, &out)
	if d := find(docs["rates_http_requests_total"], StatusClassDimension, "5xx"); d == nil || d["rates_http_requests_total"] != 0.0 {
		t.Errorf("5xx requests in the second interval: %v", d)
	}
	if d := find(docs["rates_http_requests_total"], StatusClassDimension, "2xx"); d == nil || d["rates_http_requests_total"] != 1.0 {
		t.Errorf("2xx requests in the second interval: %v", d)
	}
	dur = find(docs["rates_http_request_duration_seconds"], "Route", "/rates")
	if dur == nil {
		t.Fatal("no duration of /rates in the second interval")
	}
	if dist := dur["rates_http_request_duration_seconds"].(map[string]any); !slices.Equal(dist["Values"].([]any), []any{0.05}) || dist["Count"] != 1.0 {
		t.Errorf("second interval distribution: %v", dist)
	}
	if d := find(docs["rates_http_request_duration_seconds"], "Route", "/"); d != nil {
		t.Errorf("a route without new requests publishes no empty distribution: %v", d)
	}
}

// Observations above the highest bucket bound count as their mean (as far as the sum tells),
// never below that bound, so a threshold above the histogram's range can still be crossed.
func TestEMFPublishesObservationsAboveTheHighestBound(t *testing.T) {
	for _, tc := range []struct {
		name      string
		durations []time.Duration
		values    []any
		counts    []any
	}{
		{"alone: exact", []time.Duration{1000 * time.Second}, []any{1000.0}, []any{1.0}},
		{"two above: their mean", []time.Duration{500 * time.Second, 700 * time.Second}, []any{600.0}, []any{2.0}},
		// 0.1 s counts as its bucket's bound, 0.1; the other one as the rest of the sum.
		{"with a small one: the rest of the sum", []time.Duration{100 * time.Millisecond, 409700 * time.Millisecond}, []any{0.1, 409.7}, []any{1.0, 1.0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := New("test")
			var out bytes.Buffer
			e := m.NewEMF(&out, "rates-test", "rates-test-worker")
			for _, d := range tc.durations {
				// Result "loaded": neither failed, replayed nor rejected.
				m.ObserveBatch(false, false, false, 1, 1, d)
			}
			d := find(emfDocs(t, e, &out)["rates_ingest_batch_duration_seconds"], "Result", "loaded")
			if d == nil {
				t.Fatal("no loaded-batch duration")
			}
			dist := d["rates_ingest_batch_duration_seconds"].(map[string]any)
			if !slices.Equal(dist["Values"].([]any), tc.values) || !slices.Equal(dist["Counts"].([]any), tc.counts) {
				t.Errorf("Values %v Counts %v, want %v %v", dist["Values"], dist["Counts"], tc.values, tc.counts)
			}
		})
	}
}

func TestEMFDimensionSets(t *testing.T) {
	for _, tc := range []struct {
		sel  EMFMetric
		want [][]string
	}{
		{EMFMetric{Name: "a"}, [][]string{{"Service"}}},
		{EMFMetric{Name: "b", Dimensions: map[string]string{"result": "Result"}}, [][]string{{"Service", "Result"}}},
		{EMFMetric{Name: "c", Dimensions: map[string]string{"status": "StatusClass"}, Rollup: true}, [][]string{{"Service", "StatusClass"}, {"Service"}}},
	} {
		got := tc.sel.DimensionSets()
		if !slices.EqualFunc(got, tc.want, slices.Equal) {
			t.Errorf("%s: %v, want %v", tc.sel.Name, got, tc.want)
		}
	}
}

func TestEMFRunFlushesOnStop(t *testing.T) {
	m := New("test")
	var out bytes.Buffer
	e := m.NewEMF(&out, "rates-test", "svc")
	m.RequestDone("/", "GET", 200, time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.Run(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"rates_http_requests_total":1`) {
		t.Errorf("no final flush: %s", out.String())
	}
}
