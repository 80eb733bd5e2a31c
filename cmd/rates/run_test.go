package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"rates/db"
	"rates/internal/seed"
	"rates/internal/testing/pgserver"
	"rates/internal/testing/ssmfake"
)

var srv *pgserver.Server

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" { // a chaos test started this binary as the program
		main()
		os.Exit(0)
	}
	os.Exit(pgserver.Main(m, &srv))
}

// syncBuffer collects logs written from the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func lookupOf(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

const defaultDump = "../../db/seed/rates.sql"

type running struct {
	addr   string
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns; err holds its result
	err    error
}

// stop cancels run and waits for it, returning its error.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		return r.err
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop within 10s")
		return nil
	}
}

// startServe runs `rates serve` with env; MIGRATE_ON_START is true unless env sets it, as
// these tests start from empty databases.
func startServe(t *testing.T, env map[string]string) *running {
	t.Helper()
	if _, ok := env["MIGRATE_ON_START"]; !ok {
		env["MIGRATE_ON_START"] = "true"
	}
	r := &running{addr: env["HTTP_ADDR"], logs: &syncBuffer{}, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		r.err = run(ctx, []string{"serve"}, lookupOf(env), io.Discard, r.logs)
		close(r.done)
	}()
	t.Cleanup(func() { _ = r.stop(t) })
	return r
}

func (r *running) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-r.done:
			t.Fatalf("serve exited early: %v\n%s", r.err, r.logs)
		default:
		}
		resp, err := http.Get("http://" + r.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("not ready after 30s\n%s", r.logs)
}

func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeMigratesSeedsServesAndStops(t *testing.T) {
	url := pgserver.NewDatabase(t, srv)
	r := startServe(t, map[string]string{
		"DATABASE_URL": url, "HTTP_ADDR": freeAddr(t), "SEED_FILE": defaultDump, "SHUTDOWN_TIMEOUT": "5s",
	})
	r.waitReady(t)
	status, body := get(t, "http://"+r.addr+"/rates?date_from=2026-01-01&date_to=2026-01-31&orig_code=CNSHA&dest_code=NLRTM")
	if status != 200 || strings.Count(body, `"day"`) != 31 || !strings.Contains(body, `"price":`) {
		t.Fatalf("rates on the default dump = %d %.300s", status, body)
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("serve returned %v after cancel, want nil", err)
	}
	logs := r.logs.String()
	for _, want := range []string{`"msg":"schema up to date"`, `"msg":"seed applied"`, `"msg":"listening"`, `"msg":"request"`, `"msg":"stopped"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s", want)
		}
	}
	if _, err := net.DialTimeout("tcp", r.addr, time.Second); err == nil {
		t.Fatal("listener still open after shutdown")
	}

	// A second start finds the schema and the dump in place.
	r2 := startServe(t, map[string]string{"DATABASE_URL": url, "HTTP_ADDR": freeAddr(t), "SEED_FILE": defaultDump})
	r2.waitReady(t)
	if !strings.Contains(r2.logs.String(), "seed already applied") {
		t.Fatalf("second start did not recognise the applied dump:\n%s", r2.logs)
	}
}

// The database demands a password (scram-sha-256) that only the SSM stand-in holds: serve must
// read it from SSM to connect at all, and never log it. A wrong password in SSM fails clearly.
func TestServeReadsPasswordFromSSMAndNeverLogsIt(t *testing.T) {
	const secret = "pa55-from-ssm-Zq9"
	locked, err := pgserver.Start(context.Background(), pgserver.Options{Password: secret})
	if err != nil {
		t.Fatal(err)
	}
	defer locked.Close()
	if _, err := locked.CreateDatabase(context.Background(), "rates"); err != nil {
		t.Fatal(err)
	}
	fake := ssmfake.New(map[string]string{"/rates/test/db/password": secret, "/rates/test/db/wrong": "not-" + secret})
	defer fake.Close()
	for k, v := range fake.Env() {
		t.Setenv(k, v)
	}
	env := func(parameter string) map[string]string {
		return map[string]string{
			"DB_HOST": "127.0.0.1", "DB_PORT": fmt.Sprint(locked.Port()), "DB_NAME": "rates", "DB_USER": "postgres",
			"DB_SSLMODE": "disable", "DB_PASSWORD_SSM_PARAMETER": parameter, "DB_WAIT_TIMEOUT": "1s",
			"HTTP_ADDR": freeAddr(t), "LOG_LEVEL": "debug", "SEED_FILE": defaultDump,
		}
	}

	var logs syncBuffer
	err = run(context.Background(), []string{"serve"}, lookupOf(env("/rates/test/db/wrong")), io.Discard, &logs)
	if err == nil || !strings.Contains(err.Error(), "password authentication failed") {
		t.Fatalf("serve with a wrong password in SSM: %v, want a password authentication failure", err)
	}

	r := startServe(t, env("/rates/test/db/password"))
	r.waitReady(t)
	if reqs := fake.Requests(); len(reqs) != 2 || !reqs[1].WithDecryption {
		t.Fatalf("SSM requests = %+v, want one GetParameter with decryption per start", reqs)
	}
	if status, body := get(t, "http://"+r.addr+"/rates?date_from=2026-01-01&date_to=2026-01-01&orig_code=CNSHA&dest_code=NLRTM"); status != 200 {
		t.Fatalf("rates with the password from SSM = %d %s", status, body)
	}
	all := r.logs.String() + logs.String()
	if strings.Contains(all, secret) {
		t.Fatalf("the password appears in the logs:\n%s", all)
	}
	if !strings.Contains(r.logs.String(), "database password read from SSM") {
		t.Fatalf("logs lack the SSM line:\n%s", r.logs)
	}
}

func TestServeFailsClearly(t *testing.T) {
	corrupt := filepath.Join(t.TempDir(), "corrupt.sql")
	if err := os.WriteFile(corrupt, []byte("COPY public.regions (slug, name, parent_slug) FROM stdin;\nr\tR\n\\.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"invalid setting", map[string]string{"DATABASE_URL": "postgres://x/y", "MAX_RANGE_DAYS": "many"}, "MAX_RANGE_DAYS"},
		{"database down", map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:1/none?sslmode=disable", "DB_WAIT_TIMEOUT": "1s"}, "not reachable after"},
		{"corrupt seed", map[string]string{"SEED_FILE": corrupt}, "line 2: COPY row for regions has 2 fields, expected 3"},
		{"missing seed", map[string]string{"SEED_FILE": "/nonexistent/dump.sql"}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := tt.env
			if _, ok := env["DATABASE_URL"]; !ok {
				env["DATABASE_URL"] = pgserver.NewDatabase(t, srv)
			}
			addr := freeAddr(t)
			env["HTTP_ADDR"] = addr
			env["MIGRATE_ON_START"] = "true"
			var logs syncBuffer
			start := time.Now()
			err := run(context.Background(), []string{"serve"}, lookupOf(env), io.Discard, &logs)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if time.Since(start) > 20*time.Second {
				t.Fatalf("took %s to fail", time.Since(start))
			}
			if !strings.Contains(logs.String(), `"level":"ERROR"`) {
				t.Fatalf("no error log line:\n%s", logs.String())
			}
			if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				t.Fatal("something listens although start-up failed")
			}
		})
	}
}

func TestSeedAndMigrateCommands(t *testing.T) {
	url := pgserver.NewDatabase(t, srv)
	env := map[string]string{"DATABASE_URL": url, "MIGRATE_ON_START": "true"}
	var out bytes.Buffer
	runOK := func(args ...string) string {
		t.Helper()
		out.Reset()
		var logs syncBuffer
		if err := run(context.Background(), args, lookupOf(env), &out, &logs); err != nil {
			t.Fatalf("rates %v: %v\n%s", args, err, logs.String())
		}
		return out.String()
	}
	if got := runOK("migrate", "version"); got != "schema version 0 (dirty: false)\n" {
		t.Fatalf("version before up = %q", got)
	}
	versions := migrationVersions(t)
	latest, previous := versions[len(versions)-1], 0 // down from the baseline: no version
	if len(versions) > 1 {
		previous = versions[len(versions)-2]
	}
	if got := runOK("migrate"); !strings.HasPrefix(got, fmt.Sprintf("schema version %d ", latest)) {
		t.Fatalf("migrate up = %q", got)
	}
	if got := runOK("seed", "--file", defaultDump); !strings.Contains(got, "imported in") || !strings.Contains(got, "prices 50000") {
		t.Fatalf("seed = %q", got)
	}
	if got := runOK("seed", "--file", defaultDump); !strings.Contains(got, "already applied") {
		t.Fatalf("second seed = %q", got)
	}
	// Another dump on a database that holds data is refused, and the command says how to replace it.
	raw, err := os.ReadFile(defaultDump)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other.sql")
	if err := os.WriteFile(other, append(raw, "-- another dump of the same rows\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"seed", "--file", other}, lookupOf(env), io.Discard, io.Discard); !errors.Is(err, seed.ErrDataDiffers) ||
		!strings.Contains(err.Error(), "seed "+other+": ") || !strings.Contains(err.Error(), "pass --replace") {
		t.Fatalf("seed of another dump: err = %v, want ErrDataDiffers naming the file and --replace", err)
	}
	if got := runOK("seed", "--file", other, "--replace"); !strings.Contains(got, "imported in") {
		t.Fatalf("seed --replace = %q", got)
	}
	if got := runOK("migrate", "down", "1"); !strings.HasPrefix(got, fmt.Sprintf("schema version %d ", previous)) {
		t.Fatalf("migrate down 1 = %q", got)
	}
	for _, args := range [][]string{{"migrate", "down"}, {"migrate", "sideways"}, {"seed"}, {"bogus"}, {}} {
		if err := run(context.Background(), args, lookupOf(env), io.Discard, io.Discard); err == nil {
			t.Errorf("rates %v succeeded, want a usage error", args)
		}
	}
}

// migrationVersions are the versions of the embedded migration files, in order.
func migrationVersions(t *testing.T) []int {
	t.Helper()
	files, err := fs.Glob(db.Migrations, "migrations/*.up.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("embedded migrations: %v %v", files, err)
	}
	var versions []int
	for _, f := range files {
		var v int
		if _, err := fmt.Sscanf(filepath.Base(f), "%d_", &v); err != nil {
			t.Fatalf("migration file %s: %v", f, err)
		}
		versions = append(versions, v)
	}
	slices.Sort(versions)
	return versions
}

// METRICS_ADDR moves /metrics to a listener of its own; the API port no longer serves it. The
// metrics listener keeps answering while the API drains, and closes after it.
func TestMetricsOnTheirOwnPort(t *testing.T) {
	metricsAddr := freeAddr(t)
	r := startServe(t, map[string]string{
		"DATABASE_URL": pgserver.NewDatabase(t, srv), "HTTP_ADDR": freeAddr(t), "METRICS_ADDR": metricsAddr,
		"SHUTDOWN_DRAIN_DELAY": "1500ms",
	})
	r.waitReady(t)
	if status, _ := get(t, "http://"+r.addr+"/metrics"); status != 404 {
		t.Fatalf("/metrics on the API port = %d, want 404 with METRICS_ADDR set", status)
	}
	status, body := get(t, "http://"+metricsAddr+"/metrics")
	if status != 200 || !strings.Contains(body, `rates_build_info{version="dev"} 1`) || !strings.Contains(body, "rates_db_pool_max_connections") {
		t.Fatalf("/metrics on METRICS_ADDR = %d %.200s", status, body)
	}
	r.cancel() // as SIGTERM does
	deadline := time.Now().Add(time.Second)
	for {
		// While the API drains (readiness 503), metrics still answer: a scrape sees the drain.
		ready, _ := get(t, "http://"+r.addr+"/readyz")
		if ready == 503 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz = %d a second after the stop, want 503 while draining", ready)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if status, _ := get(t, "http://"+metricsAddr+"/metrics"); status != 200 {
		t.Fatalf("/metrics while the API drains = %d, want 200", status)
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := net.DialTimeout("tcp", metricsAddr, time.Second); err == nil {
		t.Fatal("the metrics listener is still open after shutdown")
	}
}

// In AWS the metrics leave the task as embedded-metric-format lines on the log output, next to
// the log lines, each line whole; LOG_REQUESTS=errors leaves successful requests out of the log.
func TestServePublishesMetricsOnTheLogOutput(t *testing.T) {
	url := pgserver.NewDatabase(t, srv)
	r := startServe(t, map[string]string{
		"DATABASE_URL": url, "HTTP_ADDR": freeAddr(t), "SEED_FILE": "",
		"METRICS_EMF_NAMESPACE": "rates-test", "METRICS_EMF_SERVICE": "rates-test-api", "METRICS_EMF_INTERVAL": "50ms",
		"LOG_REQUESTS": "errors",
	})
	r.waitReady(t)
	if status, _ := get(t, "http://"+r.addr+"/"); status != 200 {
		t.Fatalf("GET / = %d", status)
	}
	if status, _ := get(t, "http://"+r.addr+"/nowhere"); status != 404 {
		t.Fatalf("GET /nowhere = %d", status)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	var emf, requests []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(r.logs.String()), "\n") {
		var doc map[string]any
		if err := json.Unmarshal([]byte(line), &doc); err != nil {
			t.Fatalf("a log output line is not whole JSON: %v: %q", err, line)
		}
		if _, ok := doc["_aws"]; ok {
			emf = append(emf, doc)
		}
		if doc["msg"] == "request" {
			requests = append(requests, doc)
		}
	}
	var served float64
	for _, doc := range emf {
		if doc["Service"] != "rates-test-api" {
			t.Errorf("EMF line without the service dimension: %v", doc)
		}
		if v, ok := doc["rates_http_requests_total"].(float64); ok {
			served += v
		}
	}
	// The final flush at shutdown counts every request, whatever the timing of the ticks.
	if served < 2 {
		t.Errorf("EMF lines count %v requests, want at least the 2 of the test (lines: %d)", served, len(emf))
	}
	for _, doc := range requests {
		if doc["status"].(float64) < 400 {
			t.Errorf("LOG_REQUESTS=errors logged a successful request: %v", doc)
		}
	}
	if len(requests) == 0 {
		t.Error("the 404 was not logged")
	}
}
