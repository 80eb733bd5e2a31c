package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"rates/internal/ingest"
	"rates/internal/testing/pgserver"
)

// partCSV is a part of rows prices on CNSHA -> NLRTM in March 2026, priced from base: parts
// with different bases hold different rows.
func partCSV(rows, base int) []byte {
	var b bytes.Buffer
	b.WriteString("orig_code,dest_code,day,price\n")
	for i := range rows {
		fmt.Fprintf(&b, "CNSHA,NLRTM,2026-03-%02d,%d\n", 1+i%28, base+i%500)
	}
	return b.Bytes()
}

// writeManifest writes parts beside a manifest of mode in dir and returns the manifest's path.
func writeManifest(t *testing.T, dir string, mode ingest.Mode, parts ...[]byte) string {
	t.Helper()
	man := ingest.Manifest{Mode: mode}
	for i, p := range parts {
		name := fmt.Sprintf("part-%d.csv", i+1)
		if err := os.WriteFile(filepath.Join(dir, name), p, 0o600); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(p)
		man.Parts = append(man.Parts, ingest.ManifestPart{Key: name, SHA256: hex.EncodeToString(sum[:])})
	}
	data, err := json.Marshal(man)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "manifest.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// ingestRun is what `rates ingest --json` printed.
type ingestRun struct {
	BatchID   int64  `json:"batch_id"`
	Status    string `json:"status"`
	Rows      int64  `json:"rows"`
	RouteDays int64  `json:"route_days"`
	Parallel  int    `json:"parallel"`
	Resumed   bool   `json:"resumed"`
	BadRows   int64  `json:"bad_rows"`
	Errors    []struct {
		Line   int64  `json:"line"`
		Column string `json:"column"`
		Reason string `json:"reason"`
		Part   string `json:"part"`
	} `json:"errors"`
}

func ingestInProcess(t *testing.T, env func(string) (string, bool), args ...string) (ingestRun, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), append([]string{"ingest", "--json"}, args...), env, &out, io.Discard)
	var got ingestRun
	if jerr := json.Unmarshal(out.Bytes(), &got); jerr != nil {
		t.Fatalf("rates ingest %v printed %q (%v): %v", args, out.String(), err, jerr)
	}
	return got, err
}

// A bad row in the last part of a manifest staged by two loaders rejects the whole batch: the
// report names the part, the line and the column, and no row of any part is left in prices.
func TestParallelIngestBadRowInLastPartRejectsAll(t *testing.T) {
	url, env := seededDatabase(t)
	db := newDBCheck(t, url)
	before := db.fingerprint()
	bad := append(partCSV(1000, 3000), "CNSHA,NLRTM,2026-03-05,12x\n"...)
	manifest := writeManifest(t, t.TempDir(), ingest.ModeAppend, partCSV(1000, 1000), partCSV(1000, 2000), bad)
	got, err := ingestInProcess(t, env, "--manifest", manifest, "--parallel", "2")
	if err == nil || got.Status != "rejected" || got.BadRows != 1 || len(got.Errors) != 1 ||
		got.Errors[0].Part != "part-3.csv" || got.Errors[0].Line != 1002 || got.Errors[0].Column != "price" {
		t.Fatalf("a bad row in the last part: %+v (%v), want the batch rejected naming part-3.csv line 1002 column price", got, err)
	}
	if n := db.int(`SELECT count(*) FROM prices WHERE batch_id = $1`, got.BatchID); n != 0 {
		t.Fatalf("%d rows of the rejected batch left in prices, want none", n)
	}
	if n := db.int(`SELECT count(*) FROM staged_daily WHERE batch_id = $1`, got.BatchID); n != 0 {
		t.Fatalf("%d staged aggregates of the rejected batch left, want none", n)
	}
	if after := db.fingerprint(); after != before {
		t.Fatal("prices or price_daily changed by a rejected batch")
	}
}

// A replace staged in parts by two loaders, then reverted: the tables are exactly as before.
func TestParallelIngestReplaceThenRevert(t *testing.T) {
	url, env := seededDatabase(t)
	db := newDBCheck(t, url)
	first := writeManifest(t, t.TempDir(), ingest.ModeAppend, partCSV(600, 1000), partCSV(600, 2000))
	if got, err := ingestInProcess(t, env, "--manifest", first, "--parallel", "2"); err != nil || got.Status != "loaded" || got.Rows != 1200 {
		t.Fatalf("first manifest: %+v (%v), want 1200 rows loaded", got, err)
	}
	before := db.fingerprint()
	replace := writeManifest(t, t.TempDir(), ingest.ModeReplace, partCSV(300, 5000), partCSV(300, 6000), partCSV(300, 7000))
	got, err := ingestInProcess(t, env, "--manifest", replace, "--parallel", "3")
	if err != nil || got.Status != "loaded" || got.Rows != 900 || got.Parallel != 3 || got.RouteDays != 28 {
		t.Fatalf("replace manifest: %+v (%v), want 900 rows on 28 route-days loaded by 3 loaders", got, err)
	}
	if n := db.int(`SELECT count(*) FROM prices WHERE orig_code = 'CNSHA' AND dest_code = 'NLRTM' AND day BETWEEN '2026-03-01' AND '2026-03-28'`); n != 900 {
		t.Fatalf("%d prices on the replaced route-days, want the replace's 900 only", n)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"batches", "revert", fmt.Sprint(got.BatchID), "--json"}, env, &out, io.Discard); err != nil ||
		!strings.Contains(out.String(), `"status": "reverted"`) {
		t.Fatalf("revert of the multi-part replace: %v\n%s", err, out.String())
	}
	if after := db.fingerprint(); after != before {
		t.Fatal("after the revert of a multi-part replace, prices or price_daily differ from before it")
	}
}

// activeWrite reports whether another session is writing rows (COPY or INSERT into prices).
func activeWrite(t *testing.T, conn *pgx.Conn) bool {
	t.Helper()
	var busy bool
	if err := conn.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active'
		  AND query ~* '^\s*(COPY|INSERT\s+INTO\s+prices)\M')`).Scan(&busy); err != nil {
		t.Fatal(err)
	}
	return busy
}

// checkClientsOften makes a backend working for a killed client notice it within 100 ms.
func checkClientsOften(t *testing.T, conn *pgx.Conn, url string) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), "ALTER DATABASE "+pgx.Identifier{dbName(url)}.Sanitize()+
		" SET client_connection_check_interval = '100ms'"); err != nil {
		t.Fatal(err)
	}
}

// ratesBody is GET path's body from a freshly started API on url, which has no cached answer.
func ratesBody(t *testing.T, url, path string) string {
	t.Helper()
	env := serveEnv(t, url, nil)
	api := startProc(t, env, "serve")
	api.waitReady(t)
	status, body := get(t, "http://"+env["HTTP_ADDR"]+path)
	if status != 200 {
		t.Fatalf("GET %s: %d %s", path, status, body)
	}
	_ = api.cmd.Process.Signal(os.Interrupt)
	if err := api.wait(t, 30*time.Second); err != nil {
		t.Fatalf("serve: %v\n%s", err, api.output)
	}
	return body
}

// kill -9 of `rates ingest --manifest --parallel 2` while it stages a part leaves the batch
// staging: its staged rows are invisible through GET /rates of a running API. The next run
// resumes the batch from the parts staged and loads it exactly once.
func TestKilledParallelIngestResumesAndLoadsOnce(t *testing.T) {
	url := pgserver.NewDatabase(t, srv)
	env := map[string]string{"DATABASE_URL": url, "LOG_LEVEL": "warn", "MIGRATE_ON_START": "true"}
	if out, err := ratesCmd(t, env, "seed", "--file", defaultDump); err != nil {
		t.Fatalf("seed: %v\n%s", err, out)
	}
	db := newDBCheck(t, url)
	checkClientsOften(t, db.conn, url)
	const parts, rows = 4, 150_000
	var data [][]byte
	for i := range parts {
		data = append(data, partCSV(rows, 1000*(i+1)))
	}
	manifest := writeManifest(t, t.TempDir(), ingest.ModeAppend, data...)
	const route = "/rates?date_from=2026-03-01&date_to=2026-03-28&orig_code=CNSHA&dest_code=NLRTM"
	before := ratesBody(t, url, route)

	killed := startProc(t, env, "ingest", "--manifest", manifest, "--parallel", "2")
	deadline := time.Now().Add(90 * time.Second)
	for db.int(`SELECT count(*) FROM batch_parts WHERE status = 'staged'`) == 0 || !activeWrite(t, db.conn) {
		if time.Now().After(deadline) {
			t.Fatalf("no part staged while another stages\n%s", killed.output)
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
	waitNoOtherSessions(t, db.conn)
	id := db.int(`SELECT id FROM batches WHERE status = 'staging'`)
	staged := db.int(`SELECT count(*) FROM batch_parts WHERE batch_id = $1 AND status = 'staged'`, id)
	if staged == 0 || staged == parts || db.int(`SELECT count(*) FROM prices WHERE batch_id = $1`, id) != staged*rows {
		t.Fatalf("after kill -9: %d parts staged, %d rows in prices, want some parts staged, whole",
			staged, db.int(`SELECT count(*) FROM prices WHERE batch_id = $1`, id))
	}
	if during := ratesBody(t, url, route); during != before {
		t.Fatalf("GET /rates shows staged rows:\nbefore %s\nwith parts staged %s", before, during)
	}

	got, err := ingestJSON(t, env, "--manifest", manifest, "--parallel", "2")
	if err != nil || got["status"] != "loaded" || got["rows"] != float64(parts*rows) || got["batch_id"] != float64(id) || got["resumed"] != true {
		t.Fatalf("the run after the kill: %v (%v), want batch %d resumed and loaded with %d rows", got, err, id, parts*rows)
	}
	if n := db.int(`SELECT count(*) FROM prices WHERE batch_id = $1`, id); n != parts*rows {
		t.Fatalf("%d rows of the batch in prices, want %d (each part once)", n, parts*rows)
	}
	if n := db.int(`SELECT count(*) FROM batches WHERE source_kind = 'file'`); n != 1 {
		t.Fatalf("%d file batches recorded, want 1", n)
	}
	if after := ratesBody(t, url, route); after == before {
		t.Fatalf("GET /rates does not show the published batch: %s", after)
	}
	again, err := ingestJSON(t, env, "--manifest", manifest)
	if err != nil || again["status"] != "duplicate" || again["batch_id"] != float64(id) {
		t.Fatalf("the manifest once more: %v (%v), want a duplicate of batch %d", again, err, id)
	}
	if n := db.int(`SELECT count(*) FROM prices WHERE day BETWEEN '2026-03-01' AND '2026-03-28' AND orig_code = 'CNSHA' AND dest_code = 'NLRTM' AND batch_id = $1`, id); n != parts*rows {
		t.Fatalf("%d rows of the batch after the duplicate, want %d", n, parts*rows)
	}
}
