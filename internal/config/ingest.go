package config

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"rates/internal/domain"
)

// Ingest configures the batch ingestion entry points: POST /batches, `rates worker` and
// `rates ingest`. It is loaded apart from Config so that the API and the worker only ask for
// what they use.
type Ingest struct {
	// QueueURL (INGEST_QUEUE_URL) is the SQS queue the worker long-polls for S3 event
	// notifications. Required by `rates worker`, unused elsewhere.
	QueueURL string
	// ReportsPrefix (INGEST_REPORTS_PREFIX, default "reports/") is where the worker writes the
	// JSON report of a rejected batch, as <prefix><object key>.json in the batch's bucket.
	ReportsPrefix string
	// MaxBatchBytes (INGEST_MAX_BATCH_BYTES, default 536870912 = 512 MiB) bounds a POST
	// /batches body as sent (compressed, if gzip); larger requests get 413.
	MaxBatchBytes int64
	// MaxUnpackedBytes (INGEST_MAX_UNPACKED_BYTES, default 2147483648 = 2 GiB, 1 KiB to 1 TiB)
	// bounds a batch's content once decompressed, from every entry point: past it the batch is
	// rejected (413 from POST /batches), and a gzip bomb is not unpacked further.
	MaxUnpackedBytes int64
	// MaxLineBytes (INGEST_MAX_LINE_BYTES, default 4096, 64 to 1048576) bounds one CSV line
	// (or the lines of one quoted field): past it the batch is rejected (422), naming the line.
	// It is what bounds a batch's memory, whatever the file holds.
	MaxLineBytes int
	// EarliestDay (INGEST_EARLIEST_DAY, default 2000-01-01) and MaxDaysAhead
	// (INGEST_MAX_DAYS_AHEAD, default 365, 0 to 36500) are the window of plausible price days:
	// a price dated before EarliestDay, or more than MaxDaysAhead days after today (UTC), is a
	// bad row.
	EarliestDay  time.Time
	MaxDaysAhead int
	// APIToken (INGEST_API_TOKEN) is the bearer token POST /batches requires. Empty disables
	// the endpoint: it answers 404 as if it did not exist.
	APIToken string
	// VisibilityTimeout (INGEST_VISIBILITY_TIMEOUT, default 5m, whole seconds up to 12h) is how
	// long a received message stays hidden; the worker extends it while a batch loads, so it
	// bounds how soon a crashed worker's message is retried, not the batch's size.
	VisibilityTimeout time.Duration
	// WaitTime (INGEST_WAIT_TIME, default 20s, 0 to 20 seconds; a bare number means seconds) is
	// the long-poll wait of each receive: an idle worker makes one request per WaitTime.
	WaitTime time.Duration
	// RetryDelay (INGEST_RETRY_DELAY, default 10s, whole seconds from 1s to 1h) is how long a
	// message that failed, or whose part another worker holds, stays hidden after its first
	// receive; it doubles with each further receive, up to VisibilityTimeout.
	RetryDelay time.Duration
	// S3IdleTimeout (INGEST_S3_IDLE_TIMEOUT, default 2m, whole seconds from 1s to 1h) fails an
	// attempt whose S3 object does not start or stops arriving for this long, so a stalled
	// download is retried instead of holding its message while the heartbeat renews it.
	S3IdleTimeout time.Duration
	// MaxErrorsReported (INGEST_MAX_ERRORS_REPORTED, default 20, 1 to 10000) bounds the
	// problems listed in a rejected batch's report; the count of bad rows is always complete.
	MaxErrorsReported int
	// MaxConcurrentUploads (INGEST_MAX_CONCURRENT_UPLOADS, default 4, 1 to 1000) bounds the
	// POST /batches uploads in progress per API instance; one more gets 429 with Retry-After.
	MaxConcurrentUploads int
	// MaxBatchDuration (INGEST_MAX_BATCH_DURATION, default 30m, whole seconds from 1s to 12h)
	// is the deadline of one load or revert, from its first statement to its commit; the
	// transaction's statement_timeout is what is left of it and its lock_timeout a quarter.
	// Past it the load rolls back and the worker leaves the message for a retry.
	MaxBatchDuration time.Duration
	// S3UsePathStyle (INGEST_S3_PATH_STYLE, default false) addresses buckets as
	// endpoint/bucket/key, which S3 stand-ins selected with AWS_ENDPOINT_URL_S3 need.
	S3UsePathStyle bool
}

// The defaults of the ingestion settings, their one home: internal/ingest takes them too when
// an option is left zero. A batch's limits: 2 GiB unpacked (about 60 million price rows, four
// times the default compressed upload) and 4 KiB a line (a price row takes about 35 bytes, a
// port or region row at most 200 characters of name).
const (
	DefaultMaxBatchBytes        = 512 << 20
	DefaultMaxUnpackedBytes     = 2 << 30
	DefaultMaxLineBytes         = 4 << 10
	DefaultMaxErrorsReported    = 20
	DefaultMaxConcurrentUploads = 4
	DefaultMaxBatchDuration     = 30 * time.Minute
	DefaultRetryDelay           = 10 * time.Second
	DefaultS3IdleTimeout        = 2 * time.Minute
)

// LoadIngest reads the ingestion settings, returning every invalid setting in one error.
func LoadIngest(lookup Lookup) (Ingest, error) {
	r := reader{lookup: lookup}
	ing := Ingest{
		QueueURL:          r.str("INGEST_QUEUE_URL", ""),
		ReportsPrefix:     r.str("INGEST_REPORTS_PREFIX", "reports/"),
		MaxBatchBytes:     int64(r.intRange("INGEST_MAX_BATCH_BYTES", DefaultMaxBatchBytes, 1, 1<<40)),
		APIToken:          r.str("INGEST_API_TOKEN", ""),
		VisibilityTimeout: r.seconds("INGEST_VISIBILITY_TIMEOUT", 5*time.Minute, time.Second, 12*time.Hour),
		WaitTime:          r.seconds("INGEST_WAIT_TIME", 20*time.Second, 0, 20*time.Second),
		RetryDelay:        r.seconds("INGEST_RETRY_DELAY", DefaultRetryDelay, time.Second, time.Hour),
		S3IdleTimeout:     r.seconds("INGEST_S3_IDLE_TIMEOUT", DefaultS3IdleTimeout, time.Second, time.Hour),
		MaxErrorsReported: r.intRange("INGEST_MAX_ERRORS_REPORTED", DefaultMaxErrorsReported, 1, 10_000),
		S3UsePathStyle:    r.boolean("INGEST_S3_PATH_STYLE", false),

		MaxConcurrentUploads: r.intRange("INGEST_MAX_CONCURRENT_UPLOADS", DefaultMaxConcurrentUploads, 1, 1000),
		MaxBatchDuration:     r.seconds("INGEST_MAX_BATCH_DURATION", DefaultMaxBatchDuration, time.Second, 12*time.Hour),

		MaxUnpackedBytes: int64(r.intRange("INGEST_MAX_UNPACKED_BYTES", DefaultMaxUnpackedBytes, 1<<10, 1<<40)),
		MaxLineBytes:     r.intRange("INGEST_MAX_LINE_BYTES", DefaultMaxLineBytes, 64, 1<<20),
		EarliestDay:      r.day("INGEST_EARLIEST_DAY", domain.DefaultDayWindow.Earliest),
		MaxDaysAhead:     r.intRange("INGEST_MAX_DAYS_AHEAD", domain.DefaultDayWindow.DaysAhead, 0, 36500),
	}
	if u := ing.QueueURL; u != "" {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			r.fail("INGEST_QUEUE_URL", fmt.Sprintf("%q is not a queue URL such as https://sqs.eu-west-1.amazonaws.com/123456789012/rates-ingest", u))
		}
	}
	if p := ing.ReportsPrefix; p == "" || strings.HasPrefix(p, "/") || !strings.HasSuffix(p, "/") {
		r.fail("INGEST_REPORTS_PREFIX", fmt.Sprintf("%q is not a key prefix such as reports/ (no leading slash, ending in a slash)", p))
	}
	if t := ing.APIToken; t != "" && len(t) < 16 {
		// The one thing standing between the internet and a write endpoint.
		r.fail("INGEST_API_TOKEN", "must be at least 16 characters when set")
	}
	if strings.ContainsAny(ing.APIToken, " \t\r\n") {
		r.fail("INGEST_API_TOKEN", "must not contain white space")
	}
	return ing, errors.Join(r.errs...)
}

// DayWindow is the window of plausible price days the settings give.
func (ing Ingest) DayWindow() domain.DayWindow {
	return domain.DayWindow{Earliest: ing.EarliestDay, DaysAhead: ing.MaxDaysAhead}
}

// day reads a calendar day written YYYY-MM-DD.
func (r *reader) day(name string, def time.Time) time.Time {
	v, ok := r.lookup(name)
	if !ok || strings.TrimSpace(v) == "" {
		return def
	}
	d, err := domain.ParseDay(strings.TrimSpace(v))
	if err != nil {
		r.fail(name, fmt.Sprintf("%q is not a day such as 2000-01-01", v))
		return def
	}
	return d
}

// seconds reads a duration in whole seconds from lo to hi; a bare number means seconds.
func (r *reader) seconds(name string, def, lo, hi time.Duration) time.Duration {
	v, ok := r.lookup(name)
	if !ok || strings.TrimSpace(v) == "" {
		return def
	}
	s := strings.TrimSpace(v)
	d, err := time.ParseDuration(s)
	if n, nerr := strconv.Atoi(s); nerr == nil {
		d, err = time.Duration(n)*time.Second, nil
	}
	if err != nil || d < lo || d > hi || d%time.Second != 0 {
		r.fail(name, fmt.Sprintf("%q is not a whole number of seconds from %s to %s, such as 20 or 5m", v, lo, hi))
		return def
	}
	return d
}

func (r *reader) boolean(name string, def bool) bool {
	v, ok := r.lookup(name)
	if !ok || strings.TrimSpace(v) == "" {
		return def
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		r.fail(name, fmt.Sprintf("%q is not true or false", v))
		return def
	}
	return b
}
