package config

import (
	"strings"
	"testing"
	"time"
)

func TestLoadIngestDefaults(t *testing.T) {
	ing, err := LoadIngest(ingestEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Ingest{
		ReportsPrefix:     "reports/",
		MaxBatchBytes:     512 << 20,
		VisibilityTimeout: 5 * time.Minute,
		WaitTime:          20 * time.Second,
		RetryDelay:        10 * time.Second,
		S3IdleTimeout:     2 * time.Minute,
		MaxErrorsReported: 20,

		MaxConcurrentUploads: 4,
		MaxBatchDuration:     30 * time.Minute,

		MaxUnpackedBytes: 2 << 30,
		MaxLineBytes:     4096,
		EarliestDay:      time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		MaxDaysAhead:     365,
	}
	if ing != want {
		t.Errorf("LoadIngest() = %+v, want %+v", ing, want)
	}
}

func TestLoadIngestValues(t *testing.T) {
	ing, err := LoadIngest(ingestEnv(map[string]string{
		"INGEST_QUEUE_URL":           "https://sqs.eu-west-1.amazonaws.com/123456789012/rates-ingest",
		"INGEST_REPORTS_PREFIX":      "out/reports/",
		"INGEST_MAX_BATCH_BYTES":     "1048576",
		"INGEST_API_TOKEN":           "0123456789abcdef0123",
		"INGEST_VISIBILITY_TIMEOUT":  "15m",
		"INGEST_WAIT_TIME":           "5",
		"INGEST_RETRY_DELAY":         "3s",
		"INGEST_S3_IDLE_TIMEOUT":     "45",
		"INGEST_MAX_ERRORS_REPORTED": "100",
		"INGEST_S3_PATH_STYLE":       "true",

		"INGEST_MAX_CONCURRENT_UPLOADS": "8",
		"INGEST_MAX_BATCH_DURATION":     "90s",

		"INGEST_MAX_UNPACKED_BYTES": "1073741824",
		"INGEST_MAX_LINE_BYTES":     "1024",
		"INGEST_EARLIEST_DAY":       "2010-06-01",
		"INGEST_MAX_DAYS_AHEAD":     "30",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := Ingest{
		QueueURL:          "https://sqs.eu-west-1.amazonaws.com/123456789012/rates-ingest",
		ReportsPrefix:     "out/reports/",
		MaxBatchBytes:     1 << 20,
		APIToken:          "0123456789abcdef0123",
		VisibilityTimeout: 15 * time.Minute,
		WaitTime:          5 * time.Second,
		RetryDelay:        3 * time.Second,
		S3IdleTimeout:     45 * time.Second,
		MaxErrorsReported: 100,
		S3UsePathStyle:    true,

		MaxConcurrentUploads: 8,
		MaxBatchDuration:     90 * time.Second,

		MaxUnpackedBytes: 1 << 30,
		MaxLineBytes:     1024,
		EarliestDay:      time.Date(2010, 6, 1, 0, 0, 0, 0, time.UTC),
		MaxDaysAhead:     30,
	}
	if ing != want {
		t.Errorf("LoadIngest() = %+v, want %+v", ing, want)
	}
}

func TestLoadIngestWaitTimeForms(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"0", 0},
		{"20", 20 * time.Second},
		{"10s", 10 * time.Second},
		{"0s", 0},
	} {
		ing, err := LoadIngest(ingestEnv(map[string]string{"INGEST_WAIT_TIME": tc.in}))
		if err != nil || ing.WaitTime != tc.want {
			t.Errorf("INGEST_WAIT_TIME=%q: got %s, %v; want %s", tc.in, ing.WaitTime, err, tc.want)
		}
	}
}

func TestLoadIngestErrors(t *testing.T) {
	for _, tc := range []struct {
		name, value string
	}{
		{"INGEST_QUEUE_URL", "rates-ingest"},
		{"INGEST_QUEUE_URL", "ftp://example.com/q"},
		{"INGEST_REPORTS_PREFIX", "reports"},
		{"INGEST_REPORTS_PREFIX", "/reports/"},
		{"INGEST_MAX_BATCH_BYTES", "0"},
		{"INGEST_MAX_BATCH_BYTES", "512MiB"},
		{"INGEST_API_TOKEN", "short"},
		{"INGEST_API_TOKEN", "0123456789abcdef 0123"},
		{"INGEST_VISIBILITY_TIMEOUT", "0s"},
		{"INGEST_VISIBILITY_TIMEOUT", "1500ms"},
		{"INGEST_VISIBILITY_TIMEOUT", "13h"},
		{"INGEST_WAIT_TIME", "21"},
		{"INGEST_RETRY_DELAY", "0s"},
		{"INGEST_RETRY_DELAY", "2h"},
		{"INGEST_S3_IDLE_TIMEOUT", "500ms"},
		{"INGEST_S3_IDLE_TIMEOUT", "61m"},
		{"INGEST_WAIT_TIME", "-1"},
		{"INGEST_WAIT_TIME", "soon"},
		{"INGEST_MAX_ERRORS_REPORTED", "0"},
		{"INGEST_S3_PATH_STYLE", "maybe"},
		{"INGEST_MAX_UNPACKED_BYTES", "1000"},
		{"INGEST_MAX_LINE_BYTES", "0"},
		{"INGEST_MAX_LINE_BYTES", "2000000"},
		{"INGEST_EARLIEST_DAY", "2000-02-30"},
		{"INGEST_EARLIEST_DAY", "01/01/2000"},
		{"INGEST_MAX_DAYS_AHEAD", "-1"},
	} {
		_, err := LoadIngest(ingestEnv(map[string]string{tc.name: tc.value}))
		if err == nil || !strings.Contains(err.Error(), tc.name+":") {
			t.Errorf("%s=%q: err = %v, want an error naming the variable", tc.name, tc.value, err)
		}
	}
}

func TestLoadIngestReportsEveryProblem(t *testing.T) {
	_, err := LoadIngest(ingestEnv(map[string]string{"INGEST_WAIT_TIME": "99", "INGEST_MAX_ERRORS_REPORTED": "x"}))
	if err == nil || !strings.Contains(err.Error(), "INGEST_WAIT_TIME") || !strings.Contains(err.Error(), "INGEST_MAX_ERRORS_REPORTED") {
		t.Fatalf("err = %v, want both variables named", err)
	}
}

func ingestEnv(m map[string]string) Lookup {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}
