// Package config reads the service's settings from the environment. Every problem names the
// variable it comes from, and all problems are reported at once.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Config is the whole service configuration, one struct per concern.
type Config struct {
	HTTP     HTTP
	DB       DB
	Seed     Seed
	Migrate  Migrate
	Log      Log
	Metrics  Metrics
	API      API
	Shutdown Shutdown
}

// Shutdown configures the graceful stop on SIGTERM.
type Shutdown struct {
	// DrainDelay keeps serving with /readyz at 503 so load balancers stop sending traffic
	// before the listener closes.
	DrainDelay time.Duration
	// Timeout bounds the wait for in-flight requests once the listener is closed.
	Timeout time.Duration
}

// HTTP configures the listener and the server's timeouts.
type HTTP struct {
	Addr              string
	MetricsAddr       string // separate listener for /metrics; empty: served on Addr
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
}

// DB configures the PostgreSQL connection pool.
type DB struct {
	URL  string // DATABASE_URL; when set, Host..SSLMode are unused
	Host string
	// ReadHost (DB_READ_HOST) is a read replica of Host: /rates reads (data generation and
	// answers) go there, through a pool of their own; everything else stays on Host.
	ReadHost             string
	Port                 int
	Name                 string
	User                 string
	Password             string
	SSLMode              string
	SSLRootCert          string // DB_SSLROOTCERT: CA bundle that verify-ca/verify-full check the server against
	PasswordSSMParameter string // name of an SSM SecureString holding the password
	MaxConns             int32
	WaitTimeout          time.Duration // how long start-up waits for the database
	QueryTimeout         time.Duration // per-request bound on database work
}

// Migrate configures what the long-running commands do about the schema at start.
type Migrate struct {
	// OnStart (MIGRATE_ON_START, default false) applies pending migrations before serving, for
	// make run, compose and tests. Off, as in AWS where the deploy's migration task applies
	// them, a process only checks that the schema is recent enough for it and stops otherwise.
	OnStart bool
}

// Seed configures the dump imported at start-up.
type Seed struct {
	File string // empty: no seeding
}

// Log configures the process logger.
type Log struct {
	Level    slog.Level
	Format   string // json or text
	Requests RequestLog
}

// RequestLog chooses which requests get an access log line (LOG_REQUESTS); the load balancer's
// access logs keep the full record (the log volume of each setting is in docs/benchmarks.md).
// Errors (status 400 and above) and slow requests are always logged.
type RequestLog struct {
	// SampleEvery logs one in SampleEvery of the other requests: 1 logs every request
	// (LOG_REQUESTS=all), 0 none of them (errors), N one in N (sample:N).
	SampleEvery int
	// Slow is the duration from which a request counts as slow (LOG_SLOW_REQUESTS).
	Slow time.Duration
}

// Metrics configures the publication of metrics to CloudWatch in embedded metric format, on the
// log output; /metrics is served either way.
type Metrics struct {
	EMFNamespace string        // METRICS_EMF_NAMESPACE; empty publishes nothing
	EMFService   string        // METRICS_EMF_SERVICE: value of the Service dimension
	EMFInterval  time.Duration // METRICS_EMF_INTERVAL
}

// API configures request handling.
type API struct {
	MaxRangeDays  int
	MaxQueryBytes int
	CacheBytes    int // memory for cached /rates answers; 0 turns the cache off
}

// Lookup reads one variable; os.LookupEnv fits.
type Lookup func(name string) (string, bool)

var sslModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

// Load reads the configuration, returning every invalid or missing setting in one error.
func Load(lookup Lookup) (Config, error) {
	r := reader{lookup: lookup}
	cfg := Config{
		HTTP: HTTP{
			Addr:              r.addr("HTTP_ADDR", ":3000"),
			MetricsAddr:       r.optionalAddr("METRICS_ADDR"),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    32 << 10,
		},
		DB: DB{
			URL:                  r.str("DATABASE_URL", ""),
			Host:                 r.str("DB_HOST", ""),
			ReadHost:             r.str("DB_READ_HOST", ""),
			Port:                 r.intRange("DB_PORT", 5432, 1, 65535),
			Name:                 r.str("DB_NAME", "rates"),
			User:                 r.str("DB_USER", "rates"),
			Password:             r.str("DB_PASSWORD", ""),
			SSLMode:              r.oneOf("DB_SSLMODE", "prefer", sslModes),
			SSLRootCert:          r.str("DB_SSLROOTCERT", ""),
			PasswordSSMParameter: r.str("DB_PASSWORD_SSM_PARAMETER", ""),
			MaxConns:             int32(r.intRange("DB_MAX_CONNS", 16, 1, 1000)), //nolint:gosec // G115: bounded to 1..1000
			WaitTimeout:          r.duration("DB_WAIT_TIMEOUT", 60*time.Second),
			QueryTimeout:         r.duration("DB_QUERY_TIMEOUT", 3*time.Second),
		},
		Seed:    Seed{File: r.str("SEED_FILE", "")},
		Migrate: Migrate{OnStart: r.boolean("MIGRATE_ON_START", false)},
		Log: Log{
			Level:  r.level("LOG_LEVEL", slog.LevelInfo),
			Format: r.oneOf("LOG_FORMAT", "json", []string{"json", "text"}),
			Requests: RequestLog{
				SampleEvery: r.requestLog("LOG_REQUESTS", "sample:100"),
				Slow:        r.duration("LOG_SLOW_REQUESTS", 500*time.Millisecond),
			},
		},
		Metrics: Metrics{
			EMFNamespace: r.str("METRICS_EMF_NAMESPACE", ""),
			EMFService:   r.str("METRICS_EMF_SERVICE", ""),
			EMFInterval:  r.duration("METRICS_EMF_INTERVAL", time.Minute),
		},
		API: API{
			MaxRangeDays:  r.intRange("MAX_RANGE_DAYS", 3660, 1, 3_660_000),
			MaxQueryBytes: 4096,
			CacheBytes:    r.intRange("CACHE_MAX_BYTES", 64<<20, 0, 1<<40),
		},
		Shutdown: Shutdown{
			DrainDelay: r.durationOrZero("SHUTDOWN_DRAIN_DELAY", 0),
			Timeout:    r.duration("SHUTDOWN_TIMEOUT", 20*time.Second),
		},
	}
	r.checkDB(cfg.DB)
	r.checkMetrics(cfg.Metrics)
	return cfg, errors.Join(r.errs...)
}

func validNamespace(ns string) bool {
	if len(ns) > 255 || strings.HasPrefix(ns, "AWS/") {
		return false
	}
	for _, c := range ns {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-_/#:", c)) {
			return false
		}
	}
	return true
}

func validSSMName(name string) bool {
	if strings.HasPrefix(name, "arn:") {
		return strings.Contains(name, ":parameter/")
	}
	if len(name) > 2048 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_.-/", c)) {
			return false
		}
	}
	return true
}

// PoolConfig builds the pgx pool settings. Call it after the password has been resolved.
func (d DB) PoolConfig() (*pgxpool.Config, error) {
	connString := d.URL
	if connString == "" {
		u := url.URL{
			Scheme:   "postgres",
			User:     url.UserPassword(d.User, d.Password),
			Host:     net.JoinHostPort(d.Host, strconv.Itoa(d.Port)),
			Path:     "/" + d.Name,
			RawQuery: url.Values{"sslmode": {d.SSLMode}}.Encode(),
		}
		if d.SSLRootCert != "" {
			u.RawQuery = url.Values{"sslmode": {d.SSLMode}, "sslrootcert": {d.SSLRootCert}}.Encode()
		}
		if d.Password == "" {
			u.User = url.User(d.User)
		}
		connString = u.String()
	}
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, errors.New("database settings do not form a valid connection string")
	}
	if d.URL != "" && d.Password != "" {
		cfg.ConnConfig.Password = d.Password
	}
	cfg.MaxConns = d.MaxConns
	cfg.MinConns = min(2, d.MaxConns)
	cfg.MaxConnIdleTime = 5 * time.Minute
	cfg.HealthCheckPeriod = 15 * time.Second
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	cfg.ConnConfig.RuntimeParams["application_name"] = "rates"
	return cfg, nil
}

// Reader returns the settings of the read replica (ReadHost, everything else shared) and true,
// or false when no replica is configured.
func (d DB) Reader() (DB, bool) {
	if d.ReadHost == "" {
		return DB{}, false
	}
	r := d
	r.Host, r.ReadHost = d.ReadHost, ""
	return r, true
}

// LogValue keeps the password (and a password inside DATABASE_URL) out of logs.
func (d DB) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.Bool("password_set", d.Password != ""),
		slog.String("password_ssm_parameter", d.PasswordSSMParameter),
		slog.Int("max_conns", int(d.MaxConns)),
	}
	if d.URL != "" {
		if u, err := url.Parse(d.URL); err == nil && u.Host != "" {
			attrs = append(attrs, slog.String("url", u.Redacted()))
		} else {
			attrs = append(attrs, slog.String("url", "(set, not a URL)"))
		}
	} else {
		if d.ReadHost != "" {
			attrs = append(attrs, slog.String("read_host", d.ReadHost))
		}
		attrs = append(attrs, slog.String("host", d.Host), slog.Int("port", d.Port),
			slog.String("name", d.Name), slog.String("user", d.User), slog.String("sslmode", d.SSLMode), slog.String("sslrootcert", d.SSLRootCert))
	}
	return slog.GroupValue(attrs...)
}

type reader struct {
	lookup Lookup
	errs   []error
}

func (r *reader) fail(name, msg string) { r.errs = append(r.errs, fmt.Errorf("%s: %s", name, msg)) }

// checkDB adds the problems of database settings that are valid one by one but not together.
func (r *reader) checkDB(db DB) {
	switch {
	case db.URL == "" && db.Host == "":
		r.fail("DATABASE_URL", "set DATABASE_URL, or DB_HOST with DB_PORT, DB_NAME, DB_USER and a password")
	case db.URL != "" && db.Host != "":
		r.fail("DATABASE_URL", "set either DATABASE_URL or DB_HOST, not both")
	case db.URL != "":
		if _, err := pgxpool.ParseConfig(db.URL); err != nil {
			r.fail("DATABASE_URL", "not a valid connection string") // the parse error may quote the password
		}
	}
	if db.ReadHost != "" && db.Host == "" {
		r.fail("DB_READ_HOST", "needs DB_HOST (the replica shares its port, name, user, password and sslmode)")
	}
	if db.Password != "" && db.PasswordSSMParameter != "" {
		r.fail("DB_PASSWORD_SSM_PARAMETER", "set either DB_PASSWORD or DB_PASSWORD_SSM_PARAMETER, not both")
	}
	if p := db.PasswordSSMParameter; p != "" && !validSSMName(p) {
		r.fail("DB_PASSWORD_SSM_PARAMETER", fmt.Sprintf("%q is not an SSM parameter name or ARN", p))
	}
}

// checkMetrics adds the problems of the metric settings that are valid one by one but not
// together.
func (r *reader) checkMetrics(m Metrics) {
	if ns := m.EMFNamespace; ns != "" {
		if !validNamespace(ns) {
			r.fail("METRICS_EMF_NAMESPACE", fmt.Sprintf("%q is not a CloudWatch namespace (1-255 letters, digits and . - _ / # :, not starting with AWS/)", ns))
		}
		if m.EMFService == "" {
			r.fail("METRICS_EMF_SERVICE", "required with METRICS_EMF_NAMESPACE (the Service dimension, for example the ECS service name)")
		}
	}
}

func (r *reader) str(name, def string) string {
	if v, ok := r.lookup(name); ok {
		return strings.TrimSpace(v)
	}
	return def
}

func (r *reader) addr(name, def string) string {
	v := r.str(name, def)
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		r.fail(name, fmt.Sprintf("%q is not a listen address such as :3000 or 127.0.0.1:3000", v))
	}
	return v
}

func (r *reader) optionalAddr(name string) string {
	if v := r.str(name, ""); v != "" {
		return r.addr(name, v)
	}
	return ""
}

func (r *reader) intRange(name string, def, lo, hi int) int {
	v, ok := r.lookup(name)
	if !ok || strings.TrimSpace(v) == "" {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		r.fail(name, fmt.Sprintf("%q is not a whole number from %d to %d", v, lo, hi))
		return def
	}
	return n
}

func (r *reader) duration(name string, def time.Duration) time.Duration {
	v, ok := r.lookup(name)
	if !ok || strings.TrimSpace(v) == "" {
		return def
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d <= 0 {
		r.fail(name, fmt.Sprintf("%q is not a positive duration such as 20s or 1m", v))
		return def
	}
	return d
}

func (r *reader) durationOrZero(name string, def time.Duration) time.Duration {
	v, ok := r.lookup(name)
	if !ok || strings.TrimSpace(v) == "" {
		return def
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d < 0 {
		r.fail(name, fmt.Sprintf("%q is not a duration such as 0s or 5s", v))
		return def
	}
	return d
}

func (r *reader) oneOf(name, def string, allowed []string) string {
	v := strings.ToLower(r.str(name, def))
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	r.fail(name, fmt.Sprintf("%q is not one of %s", v, strings.Join(allowed, ", ")))
	return def
}

// requestLog reads all, errors or sample:N into a sampling period (1, 0 or N).
func (r *reader) requestLog(name, def string) int {
	v := strings.ToLower(r.str(name, def))
	switch {
	case v == "all":
		return 1
	case v == "errors":
		return 0
	case strings.HasPrefix(v, "sample:"):
		if n, err := strconv.Atoi(strings.TrimPrefix(v, "sample:")); err == nil && n >= 1 && n <= 1_000_000 {
			return n
		}
	}
	r.fail(name, fmt.Sprintf("%q is not all, errors or sample:N (N from 1 to 1000000)", v))
	return 0
}

func (r *reader) level(name string, def slog.Level) slog.Level {
	v, ok := r.lookup(name)
	if !ok || strings.TrimSpace(v) == "" {
		return def
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.TrimSpace(v))); err != nil {
		r.fail(name, fmt.Sprintf("%q is not one of debug, info, warn, error", v))
		return def
	}
	return l
}
