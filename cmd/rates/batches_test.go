package main

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
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"rates/internal/testing/pgserver"
)

// rates runs the binary with args to completion and returns its stdout and exit error.
func ratesCmd(t testing.TB, env map[string]string, args ...string) (string, error) {
	t.Helper()
	p := startProc(t, env, args...)
	err := p.wait(t, 120*time.Second)
	return p.output.String(), err
}

// ingestJSON runs `rates ingest --json` and decodes its one JSON object (the last line; the
// logs go to the same buffer).
func ingestJSON(t *testing.T, env map[string]string, args ...string) (map[string]any, error) {
	t.Helper()
	out, err := ratesCmd(t, env, append([]string{"ingest", "--json"}, args...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var obj map[string]any
	for i := len(lines) - 1; i >= 0; i-- {
		if json.Unmarshal([]byte(lines[i]), &obj) == nil && obj["batch_id"] != nil {
			return obj, err
		}
	}
	t.Fatalf("rates ingest %v printed no JSON object: %v\n%s", args, err, out)
	return nil, err
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// dbCheck opens a connection for the test's checks: after every step price_daily must equal
// the GROUP BY over prices.
type dbCheck struct {
	t    testing.TB
	conn *pgx.Conn
}

func newDBCheck(t testing.TB, url string) *dbCheck {
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	c := &dbCheck{t: t, conn: conn}
	t.Cleanup(c.daily)
	return c
}

func (c *dbCheck) int(sql string, args ...any) int64 {
	c.t.Helper()
	var n int64
	if err := c.conn.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		c.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func (c *dbCheck) daily() {
	c.t.Helper()
	if n := c.int(`SELECT count(*) FROM (
		(SELECT orig_code, dest_code, day, prices, price_sum FROM price_daily
		 EXCEPT ALL SELECT orig_code, dest_code, day, count(*), sum(price) FROM prices GROUP BY 1, 2, 3)
		UNION ALL
		(SELECT orig_code, dest_code, day, count(*), sum(price) FROM prices GROUP BY 1, 2, 3
		 EXCEPT ALL SELECT orig_code, dest_code, day, prices, price_sum FROM price_daily)) d`); n != 0 {
		c.t.Errorf("price_daily differs from the GROUP BY over prices on %d route-days", n)
	}
}

// fingerprint digests prices (with lineage) and price_daily: equal digests, equal tables.
func (c *dbCheck) fingerprint() string {
	c.t.Helper()
	var fp string
	if err := c.conn.QueryRow(context.Background(), `SELECT
		(SELECT md5(string_agg(r, ',' ORDER BY r)) FROM (SELECT format('%s|%s|%s|%s|%s', orig_code, dest_code, day, price, batch_id) r FROM prices) p)
		|| '/' ||
		(SELECT md5(string_agg(r, ',' ORDER BY r)) FROM (SELECT format('%s|%s|%s|%s|%s', orig_code, dest_code, day, prices, price_sum) r FROM price_daily) d)`).Scan(&fp); err != nil {
		c.t.Fatal(err)
	}
	return fp
}

// The batch life cycle through the real binary and a real PostgreSQL: identity by content,
// --json output and exit codes, replace and revert, reference data, and seed --replace.
func TestBatchLifeCycleThroughTheBinary(t *testing.T) {
	url := pgserver.NewDatabase(t, srv)
	env := map[string]string{"DATABASE_URL": url, "LOG_LEVEL": "warn", "MIGRATE_ON_START": "true"}
	if out, err := ratesCmd(t, env, "seed", "--file", defaultDump); err != nil {
		t.Fatalf("seed: %v\n%s", err, out)
	}
	db := newDBCheck(t, url)
	dir := t.TempDir()

	// Same content under two names loads once.
	content := "orig_code,dest_code,day,price\nCNSHA,NLRTM,2025-01-01,1000\nCNSHA,NLRTM,2025-01-01,1100\nCNSHA,NLRTM,2025-01-02,1200\n"
	a := writeFile(t, dir, "a.csv", content)
	b := writeFile(t, dir, "renamed.csv", content)
	first, err := ingestJSON(t, env, "--file", a)
	if err != nil || first["status"] != "loaded" || first["rows"] != 3.0 {
		t.Fatalf("first ingest: %v %v", first, err)
	}
	second, err := ingestJSON(t, env, "--file", b)
	if err != nil || second["status"] != "duplicate" || second["batch_id"] != first["batch_id"] {
		t.Fatalf("same content, other name: %v %v; want a duplicate of batch %v, exit 0", second, err, first["batch_id"])
	}
	if n := db.int(`SELECT count(*) FROM prices WHERE day BETWEEN '2025-01-01' AND '2025-12-31'`); n != 3 {
		t.Fatalf("%d prices of the batch, want 3 (loaded once)", n)
	}
	db.daily()

	// A rejected batch exits non-zero with status rejected.
	bad := writeFile(t, dir, "bad.csv", "orig_code,dest_code,day,price\nCNSHA,XXXXX,2025-01-01,5\n")
	rej, err := ingestJSON(t, env, "--file", bad)
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || rej["status"] != "rejected" || rej["bad_rows"] != 1.0 {
		t.Fatalf("rejected ingest: %v %v; want status rejected and a non-zero exit", rej, err)
	}

	// A replace leaves exactly its rows on its route-days; the revert restores the tables.
	before := db.fingerprint()
	fix := writeFile(t, dir, "fix.csv", "orig_code,dest_code,day,price\nCNSHA,NLRTM,2025-01-01,1050\n")
	repl, err := ingestJSON(t, env, "--file", fix, "--mode", "replace")
	if err != nil || repl["status"] != "loaded" || repl["mode"] != "replace" || repl["displaced_rows"] != 2.0 {
		t.Fatalf("replace: %v %v", repl, err)
	}
	if n := db.int(`SELECT sum(price) FROM prices WHERE orig_code = 'CNSHA' AND dest_code = 'NLRTM' AND day = '2025-01-01'`); n != 1050 {
		t.Fatalf("the replaced route-day sums to %d, want 1050 (the batch's one row)", n)
	}
	db.daily()
	id := fmt.Sprint(repl["batch_id"])
	out, err := ratesCmd(t, env, "batches", "revert", id, "--json")
	if err != nil || !strings.Contains(out, `"status": "reverted"`) {
		t.Fatalf("revert: %v\n%s", err, out)
	}
	if db.fingerprint() != before {
		t.Fatal("after the revert prices and price_daily differ from before the replace")
	}
	out, err = ratesCmd(t, env, "batches", "revert", id)
	if err != nil || !strings.Contains(out, "already reverted") {
		t.Fatalf("second revert: %v\n%s", err, out)
	}
	out, err = ratesCmd(t, env, "batches", "show", id, "--json")
	if err != nil || !strings.Contains(out, `"status": "reverted"`) || !strings.Contains(out, `"displaced_rows": 2`) {
		t.Fatalf("show: %v\n%s", err, out)
	}
	out, err = ratesCmd(t, env, "batches", "list")
	if err != nil || !strings.Contains(out, "duplicate of "+fmt.Sprint(first["batch_id"])) || !strings.Contains(out, "seed") {
		t.Fatalf("list: %v\n%s", err, out)
	}

	// A ports batch, then prices on the new port; /rates answers for the port and its region.
	regions := writeFile(t, dir, "regions.csv", "slug,name,parent_slug\nnew_coast,New coast,china\n")
	ports := writeFile(t, dir, "ports.csv", "code,name,parent_slug\nCNNEW,New port,new_coast\n")
	onNew := writeFile(t, dir, "onnew.csv", "orig_code,dest_code,day,price\nCNNEW,NLRTM,2025-02-01,10\nCNNEW,NLRTM,2025-02-01,20\nCNNEW,NLRTM,2025-02-01,30\n")
	for _, step := range [][]string{{"--file", regions, "--kind", "regions"}, {"--file", ports, "--kind", "ports"}, {"--file", onNew}} {
		if res, err := ingestJSON(t, env, step...); err != nil || res["status"] != "loaded" {
			t.Fatalf("ingest %v: %v %v", step, res, err)
		}
	}
	senv := serveEnv(t, url, nil)
	delete(senv, "SEED_FILE")
	s := startProc(t, senv, "serve")
	s.waitReady(t)
	for _, code := range []string{"CNNEW", "new_coast", "china"} {
		status, body := get(t, "http://"+s.addr+"/rates?date_from=2025-02-01&date_to=2025-02-01&orig_code="+code+"&dest_code=NLRTM")
		if status != 200 || strings.TrimSpace(body) != `{"rates":[{"count":3,"day":"2025-02-01","price":20.0}]}` {
			t.Fatalf("/rates from %s: %d %s", code, status, body)
		}
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	_ = s.wait(t, 30*time.Second)

	// seed --replace is refused while ingested batches are loaded, and says how much is at stake.
	out, err = ratesCmd(t, env, "seed", "--file", defaultDump, "--replace")
	if err == nil || !strings.Contains(out, "would discard 4 loaded batches (8 rows)") || !strings.Contains(out, "pass --discard-batches") {
		t.Fatalf("seed --replace with batches: %v\n%s", err, out)
	}
	if out, err := ratesCmd(t, env, "seed", "--file", defaultDump, "--replace", "--discard-batches"); err != nil {
		t.Fatalf("seed --replace --discard-batches: %v\n%s", err, out)
	}
	if n := db.int(`SELECT count(*) FROM batches WHERE status = 'loaded' AND source_kind <> 'seed'`); n != 0 {
		t.Fatalf("%d ingested batches still say loaded after the replace", n)
	}
	if n := db.int(`SELECT count(*) FROM batches WHERE status = 'discarded'`); n != 5 {
		t.Fatalf("%d batches say discarded, want 5 (4 ingested and the first seed)", n)
	}
	if n := db.int(`SELECT count(*) FROM prices WHERE batch_id IS DISTINCT FROM (SELECT max(id) FROM batches WHERE source_kind = 'seed')`); n != 0 {
		t.Fatalf("%d prices do not belong to the new seed's record", n)
	}
	// The content of a discarded batch may be loaded again.
	if res, err := ingestJSON(t, env, "--file", a); err != nil || res["status"] != "loaded" {
		t.Fatalf("reloading after the replace: %v %v", res, err)
	}
}

// 32 uploads held open (slow clients) take no connection from /rates: it keeps answering 200.
// The 33rd upload is refused with 429; the 32 then finish, one loaded and 31 duplicates.
func TestSlowUploadsDoNotStarveRates(t *testing.T) {
	const token = "test-token-0123456789abcdef"
	url := pgserver.NewDatabase(t, srv)
	env := serveEnv(t, url, map[string]string{"INGEST_API_TOKEN": token, "INGEST_MAX_CONCURRENT_UPLOADS": "32",
		"DB_MAX_CONNS": "4", "CACHE_MAX_BYTES": "0"})
	s := startProc(t, env, "serve")
	s.waitReady(t)
	db := newDBCheck(t, url)

	upload := func(key string, body io.Reader) (int, http.Header, string) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+s.addr+"/batches", body)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "text/csv")
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	const body = "orig_code,dest_code,day,price\nCNSHA,NLRTM,2025-03-01,1000\n"
	writers := make([]*io.PipeWriter, 32)
	statuses := make([]int, 32)
	var wg sync.WaitGroup
	for i := range writers {
		r, w := io.Pipe()
		writers[i] = w
		wg.Go(func() { statuses[i], _, _ = upload(fmt.Sprintf("slow-%d", i), r) })
		// The header goes out now; the rest waits.
		go func() { _, _ = w.Write([]byte(body[:31])) }()
	}
	// Wait until the 32 uploads are all in progress (in flight: 32 and the scrape itself).
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, metrics := get(t, "http://"+s.addr+"/metrics")
		if strings.Contains(metrics, "\nrates_http_requests_in_flight 33\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the 32 uploads never were in flight together\n%s", s.output)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// One more is refused.
	if status, hdr, msg := upload("one-too-many", strings.NewReader(body)); status != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Fatalf("the 33rd upload: %d %v %s, want 429 with Retry-After", status, hdr, msg)
	}
	for i := range 60 {
		q := fmt.Sprintf("/rates?date_from=2026-01-%02d&date_to=2026-01-%02d&orig_code=CNSHA&dest_code=NLRTM", 1+i%28, 1+i%28)
		if status, b := get(t, "http://"+s.addr+q); status != 200 {
			t.Fatalf("/rates with 32 uploads open: %d %s", status, b)
		}
	}
	for _, w := range writers {
		go func() { _, _ = w.Write([]byte(body[31:])); _ = w.Close() }()
	}
	wg.Wait()
	created, duplicates := 0, 0
	for _, st := range statuses {
		switch st {
		case http.StatusCreated:
			created++
		case http.StatusOK:
			duplicates++
		}
	}
	if created != 1 || duplicates != 31 {
		t.Fatalf("statuses %v: want one 201 and 31 duplicates (200)", statuses)
	}
	if n := db.int(`SELECT count(*) FROM prices WHERE day = '2025-03-01'`); n != 1 {
		t.Fatalf("%d prices from the 32 uploads of one content, want 1", n)
	}
}
