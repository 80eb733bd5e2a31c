package main

// Proof under load and faults: the real binary (this test binary re-executed as `rates`) under
// load while it is stopped, while its database restarts, under hostile input, and killed in the
// middle of a seed.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"rates/internal/testing/gendump"
	"rates/internal/testing/pgserver"
)

// runMainEnv makes TestMain run main() instead of the tests, so a test can start the real
// program as a subprocess.
const runMainEnv = "RATES_TEST_RUN_MAIN"

// proc is the rates program running as a subprocess.
type proc struct {
	cmd    *exec.Cmd
	addr   string
	output *syncBuffer
	done   chan struct{}
	err    error
}

func startProc(t testing.TB, env map[string]string, args ...string) *proc {
	t.Helper()
	p := &proc{addr: env["HTTP_ADDR"], output: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], args...)
	p.cmd.Env = append(os.Environ(), runMainEnv+"=1")
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *proc) waitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("exited during start-up: %v\n%s", p.err, p.output)
		default:
		}
		if resp, err := http.Get("http://" + p.addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("not ready within 60s\n%s", p.output)
}

func (p *proc) wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("still running after %s\n%s", timeout, p.output)
		return nil
	}
}

const busyRoute = "/rates?date_from=2026-01-01&date_to=2026-01-31&orig_code=CNSHA&dest_code=NLRTM"

// outcome tallies what load clients saw.
type outcome struct {
	mu       sync.Mutex
	statuses map[int]int
	notSent  int      // the request never reached a server that accepted it (refused, closed idle conn)
	broken   []string // a response started but did not complete, or was not the JSON promised
	slowest  time.Duration
}

func (o *outcome) add(status int, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.statuses == nil {
		o.statuses = map[int]int{}
	}
	o.statuses[status]++
	o.slowest = max(o.slowest, d)
}

// load sends requests from workers until stop is closed. Each worker keeps its connection.
func load(addr, path string, workers int, stop <-chan struct{}, o *outcome) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer client.CloseIdleConnections()
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				resp, err := client.Get("http://" + addr + path)
				if err != nil {
					o.mu.Lock()
					o.notSent++
					o.mu.Unlock()
					time.Sleep(5 * time.Millisecond)
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || !json.Valid(body) {
					o.mu.Lock()
					o.broken = append(o.broken, fmt.Sprintf("status %d, body %.80q, err %v", resp.StatusCode, body, err))
					o.mu.Unlock()
					continue
				}
				o.add(resp.StatusCode, time.Since(start))
			}
		}()
	}
	return &wg
}

func serveEnv(t testing.TB, databaseURL string, extra map[string]string) map[string]string {
	env := map[string]string{
		"DATABASE_URL": databaseURL, "HTTP_ADDR": freeAddr(t), "SEED_FILE": defaultDump, "LOG_LEVEL": "warn",
		"MIGRATE_ON_START": "true",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// SIGTERM under load: /readyz turns 503 while requests still succeed, every response that
// starts completes, the process exits 0 within the shutdown timeout.
func TestGracefulStopUnderLoad(t *testing.T) {
	p := startProc(t, serveEnv(t, pgserver.NewDatabase(t, srv), map[string]string{
		"SHUTDOWN_DRAIN_DELAY": "700ms", "SHUTDOWN_TIMEOUT": "5s", "CACHE_MAX_BYTES": "0",
	}), "serve")
	p.waitReady(t)
	stop := make(chan struct{})
	var o outcome
	wg := load(p.addr, busyRoute, 16, stop, &o)
	time.Sleep(500 * time.Millisecond)

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sigterm := time.Now()
	// During the drain delay readiness fails while the API still answers.
	sawNotReady := false
	for time.Since(sigterm) < 500*time.Millisecond {
		resp, err := http.Get("http://" + p.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 503 {
				sawNotReady = true
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	err := p.wait(t, 10*time.Second)
	exitAfter := time.Since(sigterm)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("exit status after SIGTERM: %v, want 0\n%s", err, p.output)
	}
	if !sawNotReady {
		t.Error("/readyz never answered 503 after SIGTERM")
	}
	if exitAfter > 700*time.Millisecond+5*time.Second {
		t.Errorf("exited %s after SIGTERM, beyond drain delay + SHUTDOWN_TIMEOUT", exitAfter)
	}
	if len(o.broken) > 0 {
		t.Fatalf("%d responses broken mid-way, e.g. %s", len(o.broken), o.broken[0])
	}
	for status, n := range o.statuses {
		if status != 200 {
			t.Errorf("%d responses with status %d, want only 200 for accepted requests", n, status)
		}
	}
	if o.statuses[200] < 100 {
		t.Fatalf("only %d successful requests: the load did not run", o.statuses[200])
	}
	t.Logf("%d requests answered 200, %d not accepted after the listener closed; exit %s after SIGTERM",
		o.statuses[200], o.notSent, exitAfter.Round(time.Millisecond))
}

// The database restarts under load: 503 JSON while it is down, never a hang past the query
// timeout, and full recovery within 5 s of its return, without restarting the service.
func TestDatabaseRestartUnderLoad(t *testing.T) {
	pg, err := pgserver.Start(context.Background(), pgserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	url, err := pg.CreateDatabase(context.Background(), "restart")
	if err != nil {
		t.Fatal(err)
	}
	p := startProc(t, serveEnv(t, url, map[string]string{"DB_QUERY_TIMEOUT": "1s"}), "serve")
	p.waitReady(t)

	stop := make(chan struct{})
	var before outcome
	wg := load(p.addr, busyRoute, 8, stop, &before)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if before.statuses[200] == 0 || len(before.statuses) != 1 {
		t.Fatalf("before the restart: %v, want only 200", before.statuses)
	}

	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	stop = make(chan struct{})
	var down outcome
	wg = load(p.addr, busyRoute, 8, stop, &down)
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if down.statuses[503] == 0 || len(down.broken) > 0 {
		t.Fatalf("while down: %v, broken %v; want 503 answers", down.statuses, down.broken)
	}
	for status := range down.statuses {
		if status != 503 && status != 200 {
			t.Fatalf("while down: status %d (%v), want 503", status, down.statuses)
		}
	}
	if down.slowest > 3*time.Second {
		t.Fatalf("a request took %s while the database was down, past the 1s query timeout", down.slowest)
	}

	if err := pg.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	var recovered time.Duration
	for time.Since(back) < 10*time.Second {
		resp, err := http.Get("http://" + p.addr + busyRoute)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				recovered = time.Since(back)
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if recovered == 0 || recovered > 5*time.Second {
		t.Fatalf("no recovery within 5s of the database's return (%s)\n%s", recovered, p.output)
	}
	// Not poisoned: every request after recovery succeeds.
	stop = make(chan struct{})
	var after outcome
	wg = load(p.addr, busyRoute, 8, stop, &after)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if len(after.statuses) != 1 || after.statuses[200] == 0 || len(after.broken) > 0 {
		t.Fatalf("after recovery: %v %v, want only 200", after.statuses, after.broken)
	}
	select {
	case <-p.done:
		t.Fatalf("the service exited: %v", p.err)
	default:
	}
	t.Logf("down: %v (slowest %s); recovered %s after the database returned; after: %v",
		down.statuses, down.slowest.Round(time.Millisecond), recovered.Round(time.Millisecond), after.statuses)
}

// Hostile input: oversized headers and query strings are refused, 1,000 concurrent requests
// queue for a small pool with a bounded wait and get 200 or 503, never a hang or a crash.
func TestHostileInput(t *testing.T) {
	p := startProc(t, serveEnv(t, pgserver.NewDatabase(t, srv), map[string]string{
		"DB_MAX_CONNS": "4", "DB_QUERY_TIMEOUT": "500ms", "CACHE_MAX_BYTES": "0",
	}), "serve")
	p.waitReady(t)

	req, _ := http.NewRequest("GET", "http://"+p.addr+"/", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("64 KiB header: %v, want 431", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("64 KiB header: %v, want 431", resp.Status)
	}
	resp, err = http.Get("http://" + p.addr + "/rates?orig_code=" + strings.Repeat("x", 8000))
	if err != nil {
		t.Fatalf("8 KB query: %v, want 414", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestURITooLong {
		t.Fatalf("8 KB query: %v, want 414", resp.Status)
	}

	const clients = 1000
	var wg sync.WaitGroup
	var ok, unavailable, other atomic.Int64
	var slowest atomic.Int64
	transport := &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: clients}
	client := &http.Client{Timeout: 20 * time.Second, Transport: transport}
	start := make(chan struct{})
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			t0 := time.Now()
			// Distinct ranges, so no answer is shared.
			resp, err := client.Get(fmt.Sprintf("http://%s/rates?date_from=2025-%02d-%02d&date_to=2026-01-31&orig_code=china&dest_code=europe",
				p.addr, 1+i%12, 1+i%28))
			d := time.Since(t0)
			for old := slowest.Load(); d.Nanoseconds() > old && !slowest.CompareAndSwap(old, d.Nanoseconds()); old = slowest.Load() {
			}
			if err != nil {
				other.Add(1)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case 200:
				ok.Add(1)
			case 503:
				unavailable.Add(1)
			default:
				other.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	transport.CloseIdleConnections()
	if other.Load() > 0 || ok.Load() == 0 || ok.Load()+unavailable.Load() != clients {
		t.Fatalf("1000 concurrent: %d ok, %d 503, %d other; want only 200 and 503", ok.Load(), unavailable.Load(), other.Load())
	}
	if time.Duration(slowest.Load()) > 10*time.Second {
		t.Fatalf("slowest of 1000 concurrent requests took %s", time.Duration(slowest.Load()))
	}
	if status, body := get(t, "http://"+p.addr+busyRoute); status != 200 {
		t.Fatalf("after the burst: %d %s", status, body)
	}
	t.Logf("1000 concurrent requests on a pool of 4: %d ok, %d 503 (bounded wait), slowest %s",
		ok.Load(), unavailable.Load(), time.Duration(slowest.Load()).Round(time.Millisecond))
}

// kill -9 in the middle of a seed leaves the database exactly as it was; the next run completes.
func TestKilledSeedLeavesDatabaseUnchanged(t *testing.T) {
	url := pgserver.NewDatabase(t, srv)
	big := filepath.Join(t.TempDir(), "big.sql")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	opts := gendump.DefaultOptions()
	opts.Prices = 2_000_000
	if _, err := gendump.Write(f, opts); err != nil {
		t.Fatal(err)
	}
	f.Close()
	env := map[string]string{"DATABASE_URL": url, "LOG_LEVEL": "warn", "MIGRATE_ON_START": "true"}

	first := startProc(t, env, "seed", "--file", defaultDump)
	if err := first.wait(t, 60*time.Second); err != nil {
		t.Fatalf("first seed: %v\n%s", err, first.output)
	}
	before := fingerprint(t, url)

	killed := startProc(t, env, "seed", "--file", big, "--replace")
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// Kill it once its COPY is under way.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var copying bool
		if err := conn.QueryRow(context.Background(),
			"SELECT EXISTS (SELECT 1 FROM pg_stat_progress_copy WHERE relid = 'prices'::regclass AND tuples_processed > 100000)").Scan(&copying); err != nil {
			t.Fatal(err)
		}
		if copying {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the seed never reached its COPY\n%s", killed.output)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := killed.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	var exitErr *exec.ExitError
	if err := killed.wait(t, 10*time.Second); !errors.As(err, &exitErr) {
		t.Fatalf("killed seed exited with %v", err)
	}
	// The server rolls the transaction back when it notices the connection is gone.
	waitNoOtherSessions(t, conn)
	if after := fingerprint(t, url); after != before {
		t.Fatalf("after kill -9: %v, want the data as before: %v", after, before)
	}

	again := startProc(t, env, "seed", "--file", big, "--replace")
	if err := again.wait(t, 120*time.Second); err != nil {
		t.Fatalf("seed after the kill: %v\n%s", err, again.output)
	}
	// Streaming: the import of a 55 MB dump must not hold it in memory.
	if rss := again.cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss; rss > 100<<10 {
		t.Errorf("peak RSS of the 2,000,000-price seed: %d KiB, want it flat (under 100 MiB)", rss)
	} else {
		t.Logf("peak RSS of the 2,000,000-price seed (55 MB dump): %.1f MiB", float64(rss)/1024)
	}
	var prices int64
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM prices").Scan(&prices); err != nil || prices != 2_000_000 {
		t.Fatalf("after the second run: %d prices (%v), want 2000000", prices, err)
	}
}

func fingerprint(t *testing.T, url string) string {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var fp string
	if err := conn.QueryRow(context.Background(), `SELECT format('%s regions, %s ports, %s prices, sum %s, %s seeds, price_daily %s rows md5 %s',
		(SELECT count(*) FROM regions), (SELECT count(*) FROM ports), (SELECT count(*) FROM prices),
		(SELECT sum(price) FROM prices), (SELECT count(*) FROM seed_history),
		(SELECT count(*) FROM price_daily),
		(SELECT md5(coalesce(string_agg(d::text, ',' ORDER BY orig_code, dest_code, day), '')) FROM price_daily d))`).Scan(&fp); err != nil {
		t.Fatal(err)
	}
	return fp
}

func waitNoOtherSessions(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		if err := conn.QueryRow(context.Background(),
			"SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the killed process's session is still open after 10s")
}

// kill -9 in the middle of a batch load leaves prices and batches as they were; loading the
// same file again completes, once.
func TestKilledIngestLeavesDatabaseUnchanged(t *testing.T) {
	url := pgserver.NewDatabase(t, srv)
	env := map[string]string{"DATABASE_URL": url, "LOG_LEVEL": "warn", "MIGRATE_ON_START": "true"}
	seeded := startProc(t, env, "seed", "--file", defaultDump)
	if err := seeded.wait(t, 60*time.Second); err != nil {
		t.Fatalf("seed: %v\n%s", err, seeded.output)
	}
	batch := filepath.Join(t.TempDir(), "batch.csv")
	f, err := os.Create(batch)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "orig_code,dest_code,day,price")
	for i := range 1_500_000 {
		fmt.Fprintf(f, "CNSHA,NLRTM,2026-03-%02d,%d\n", 1+i%28, 1000+i%500)
	}
	f.Close()
	before := fingerprint(t, url)

	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// A backend busy with a long INSERT notices its client is gone only when it next talks to
	// it, unless it checks the socket while it works.
	if _, err := conn.Exec(context.Background(), "ALTER DATABASE "+pgx.Identifier{dbName(url)}.Sanitize()+
		" SET client_connection_check_interval = '100ms'"); err != nil {
		t.Fatal(err)
	}
	killed := startProc(t, env, "ingest", "--file", batch)
	// Kill it while it inserts into prices, past the staging COPY and the checks: the step
	// that writes the table the API reads, and price_daily through its triggers.
	deadline := time.Now().Add(60 * time.Second)
	for {
		var inserting bool
		if err := conn.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active'
			  AND query ~* '^\s*INSERT\s+INTO\s+prices\M')`).Scan(&inserting); err != nil {
			t.Fatal(err)
		}
		if inserting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the batch never reached its insert into prices\n%s", killed.output)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := killed.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	var exitErr *exec.ExitError
	if err := killed.wait(t, 10*time.Second); !errors.As(err, &exitErr) {
		t.Fatalf("killed ingest exited with %v", err)
	}
	waitNoOtherSessions(t, conn)
	var batches int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM batches WHERE source_kind <> 'seed'").Scan(&batches); err != nil || batches != 0 {
		t.Fatalf("after kill -9: %d batches recorded (%v), want none", batches, err)
	}
	if after := fingerprint(t, url); after != before {
		t.Fatalf("after kill -9: %v, want the data as before: %v", after, before)
	}

	for range 2 {
		again := startProc(t, env, "ingest", "--file", batch)
		if err := again.wait(t, 120*time.Second); err != nil {
			t.Fatalf("ingest after the kill: %v\n%s", err, again.output)
		}
	}
	var loaded int64
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM prices WHERE day >= '2026-03-01'").Scan(&loaded); err != nil || loaded != 1_500_000 {
		t.Fatalf("after two more runs: %d rows of the batch (%v), want 1500000 (loaded once)", loaded, err)
	}
}

// dbName is the database of a connection URL.
func dbName(url string) string {
	name := url[strings.LastIndex(url, "/")+1:]
	if i := strings.IndexByte(name, '?'); i >= 0 {
		name = name[:i]
	}
	return name
}
