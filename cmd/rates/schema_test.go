package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5" // the pgx5:// driver
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"

	"rates/db"
	"rates/internal/testing/pgserver"
	"rates/internal/testing/sqsfake"
	"rates/internal/testing/ssmfake"
)

// runCmd runs one rates command with env and returns its output, logs and error.
func runCmd(t *testing.T, env map[string]string, args ...string) (stdout, logs string, err error) {
	t.Helper()
	var out bytes.Buffer
	var lg syncBuffer
	err = run(context.Background(), args, lookupOf(env), &out, &lg)
	return out.String(), lg.String(), err
}

// migrateBeyond applies the embedded migrations plus one more, as the next release's
// migration task would: an expand step (a new column and a new table) at latest+1.
func migrateBeyond(t *testing.T, dbURL string) uint {
	t.Helper()
	files := fstest.MapFS{}
	err := fs.WalkDir(db.Migrations, "migrations", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(db.Migrations, path)
		files[path] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	versions := migrationVersions(t)
	next := uint(versions[len(versions)-1] + 1)
	files[fmt.Sprintf("migrations/%06d_next_release.up.sql", next)] = &fstest.MapFile{Data: []byte(
		"ALTER TABLE prices ADD COLUMN currency text; CREATE TABLE next_release_only (id int);")}
	files[fmt.Sprintf("migrations/%06d_next_release.down.sql", next)] = &fstest.MapFile{Data: []byte(
		"DROP TABLE next_release_only; ALTER TABLE prices DROP COLUMN currency;")}
	src, err := iofs.New(files, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	m, err := migrate.NewWithSourceInstance("iofs", src, strings.Replace(dbURL, "postgres://", "pgx5://", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Up(); err != nil {
		t.Fatalf("migrate to %d: %v", next, err)
	}
	return next
}

// Rollback: the database is one migration beyond this binary (the next release migrated it,
// then its image was rolled back). serve starts, with or without MIGRATE_ON_START, and answers.
func TestServeAcceptsANewerSchema(t *testing.T) {
	for _, onStart := range []string{"false", "true"} {
		t.Run("MIGRATE_ON_START="+onStart, func(t *testing.T) {
			dbURL := pgserver.NewDatabase(t, srv)
			next := migrateBeyond(t, dbURL)
			if _, logs, err := runCmd(t, map[string]string{"DATABASE_URL": dbURL}, "seed", "--file", defaultDump); err != nil {
				t.Fatalf("seed on the newer schema: %v\n%s", err, logs)
			}
			r := startServe(t, map[string]string{"DATABASE_URL": dbURL, "HTTP_ADDR": freeAddr(t), "MIGRATE_ON_START": onStart})
			r.waitReady(t)
			status, body := get(t, "http://"+r.addr+"/rates?date_from=2026-01-01&date_to=2026-01-03&orig_code=CNSHA&dest_code=NLRTM")
			if status != 200 || !strings.Contains(body, `"count":42,"day":"2026-01-03"`) {
				t.Fatalf("rates on the newer schema = %d %.300s", status, body)
			}
			if logs := r.logs.String(); !strings.Contains(logs, "database schema is newer than this binary") ||
				!strings.Contains(logs, fmt.Sprintf(`"schema_version":%d`, next)) {
				t.Fatalf("logs do not say the schema is newer:\n%s", logs)
			}
		})
	}
}

// Without MIGRATE_ON_START a database older than the binary stops every command that uses data
// before anything listens, naming both versions and the fix.
func TestServeRefusesAnOlderSchema(t *testing.T) {
	versions := migrationVersions(t)
	latest := versions[len(versions)-1]
	tests := []struct {
		name    string
		prepare func(t *testing.T, dbURL string)
		have    int
	}{
		{"empty database", func(*testing.T, string) {}, 0},
		// A database an earlier release migrated: its record names a version below this one's.
		{"previous version", func(t *testing.T, dbURL string) {
			env := map[string]string{"DATABASE_URL": dbURL}
			if _, logs, err := runCmd(t, env, "migrate", "up"); err != nil {
				t.Fatalf("migrate up: %v\n%s", err, logs)
			}
			conn, err := pgx.Connect(context.Background(), dbURL)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			if _, err := conn.Exec(context.Background(), "UPDATE schema_migrations SET version = $1", latest-1); err != nil {
				t.Fatal(err)
			}
		}, latest - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dbURL := pgserver.NewDatabase(t, srv)
			tt.prepare(t, dbURL)
			addr := freeAddr(t)
			want := fmt.Sprintf("database schema is at version %d, this binary needs version %d", tt.have, latest)
			for _, args := range [][]string{{"serve"}, {"seed", "--file", defaultDump}, {"check"}} {
				start := time.Now()
				_, logs, err := runCmd(t, map[string]string{"DATABASE_URL": dbURL, "HTTP_ADDR": addr}, args...)
				if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "rates migrate up") {
					t.Fatalf("rates %v: err = %v, want it to contain %q and the command that fixes it", args, err, want)
				}
				if !strings.Contains(logs, `"level":"ERROR"`) {
					t.Fatalf("rates %v: no error log line:\n%s", args, logs)
				}
				if time.Since(start) > 10*time.Second {
					t.Fatalf("rates %v took %s to fail", args, time.Since(start))
				}
				if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
					t.Fatal("something listens although the schema is too old")
				}
			}
			// And nothing was migrated behind the operator's back.
			out, _, err := runCmd(t, map[string]string{"DATABASE_URL": dbURL}, "migrate", "version")
			if err != nil || !strings.HasPrefix(out, fmt.Sprintf("schema version %d ", tt.have)) {
				t.Fatalf("migrate version after the refusals = %q, %v", out, err)
			}
		})
	}
}

// A migration that failed half-way stops every start until an operator has repaired it.
func TestServeRefusesADirtySchema(t *testing.T) {
	dbURL := pgserver.NewDatabase(t, srv)
	env := map[string]string{"DATABASE_URL": dbURL, "HTTP_ADDR": freeAddr(t)}
	if _, logs, err := runCmd(t, env, "migrate", "up"); err != nil {
		t.Fatalf("migrate up: %v\n%s", err, logs)
	}
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "UPDATE schema_migrations SET dirty = true"); err != nil {
		t.Fatal(err)
	}
	_, _, err = runCmd(t, env, "serve")
	if err == nil || !strings.Contains(err.Error(), "is dirty") || !strings.Contains(err.Error(), "rates migrate force") {
		t.Fatalf("serve on a dirty schema: err = %v", err)
	}
}

// `rates migrate up` on a database where a migration fails (a table of the same name in the
// way) logs one error line naming the file and PostgreSQL's error, without the file's SQL, and
// leaves a clean version: `migrate version` is not dirty, and once the table is gone the same
// `migrate up` finishes without `migrate force`.
func TestFailedMigrateUpLogsTheFileAndRetriesWithoutForce(t *testing.T) {
	dbURL := pgserver.NewDatabase(t, srv)
	env := map[string]string{"DATABASE_URL": dbURL}
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "CREATE TABLE price_daily (conflicting int)"); err != nil {
		t.Fatal(err)
	}
	_, logs, err := runCmd(t, env, "migrate", "up")
	if err == nil {
		t.Fatal("migrate up succeeded over a conflicting table")
	}
	var line string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `"level":"ERROR"`) {
			line = l
		}
	}
	if !regexp.MustCompile(`"error":"migration \d{6}_\w+\.up\.sql failed and was rolled back`).MatchString(line) ||
		!strings.Contains(line, `relation \"price_daily\" already exists`) || strings.Contains(line, "CREATE") {
		t.Fatalf("error log line %q: want the file, PostgreSQL's error and no SQL\n%s", line, logs)
	}
	out, _, err := runCmd(t, env, "migrate", "version")
	if err != nil || !strings.HasSuffix(out, "(dirty: false)\n") {
		t.Fatalf("migrate version after the failure = %q, %v", out, err)
	}
	if _, err := conn.Exec(context.Background(), "DROP TABLE price_daily"); err != nil {
		t.Fatal(err)
	}
	versions := migrationVersions(t)
	if out, logs, err := runCmd(t, env, "migrate", "up"); err != nil ||
		out != fmt.Sprintf("schema version %d (dirty: false)\n", versions[len(versions)-1]) {
		t.Fatalf("migrate up once the table is gone = %q, %v\n%s", out, err, logs)
	}
}

// `rates check` exits 0 on a consistent database, fails listing the mismatches after a drift
// that bypassed the triggers, and --repair fixes it.
func TestCheckCommand(t *testing.T) {
	dbURL := pgserver.NewDatabase(t, srv)
	env := map[string]string{"DATABASE_URL": dbURL, "MIGRATE_ON_START": "true"}
	if _, logs, err := runCmd(t, env, "seed", "--file", defaultDump); err != nil {
		t.Fatalf("seed: %v\n%s", err, logs)
	}
	if out, logs, err := runCmd(t, env, "check"); err != nil || !strings.Contains(out, "consistent") {
		t.Fatalf("check on a consistent database = %q, %v\n%s", out, err, logs)
	}
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, sql := range []string{
		"ALTER TABLE prices DISABLE TRIGGER price_daily_insert",
		"INSERT INTO prices VALUES ('CNSHA', 'NLRTM', '2026-01-01', 1000), ('CNSHA', 'NLRTM', '2026-01-02', 1000)",
		"ALTER TABLE prices ENABLE ALWAYS TRIGGER price_daily_insert",
	} {
		if _, err := conn.Exec(context.Background(), sql); err != nil {
			t.Fatal(err)
		}
	}
	out, _, err := runCmd(t, env, "check")
	if err == nil || !strings.Contains(err.Error(), "differs from its source in 2 rows") {
		t.Fatalf("check after drift: err = %v", err)
	}
	if !strings.Contains(out, "price_daily CNSHA→NLRTM 2026-01-01: prices 72 (want 73)") || !strings.Contains(out, "2026-01-02") {
		t.Fatalf("check after drift lists:\n%s", out)
	}
	if out, logs, err := runCmd(t, env, "check", "--repair"); err != nil || !strings.Contains(out, "rebuilt") || !strings.Contains(out, "consistent") {
		t.Fatalf("check --repair = %q, %v\n%s", out, err, logs)
	}
	if out, _, err := runCmd(t, env, "check"); err != nil {
		t.Fatalf("check after repair = %q, %v", out, err)
	}
	if _, _, err := runCmd(t, env, "check", "extra"); err == nil {
		t.Fatal("check with an argument succeeded")
	}
}

// The migration task creates the services' login roles with the passwords from their own SSM
// parameters; the worker start check passes as the worker's role and fails as the API's.
func TestMigrateCreatesRolesAndWorkerCheck(t *testing.T) {
	suffix := fmt.Sprint(time.Now().UnixNano())
	apiRole, workerRole := "api_"+suffix, "worker_"+suffix
	params := ssmfake.New(map[string]string{"/rates/test/db/api": "api-pass-1", "/rates/test/db/worker": "worker-pass-1"})
	defer params.Close()
	queues := sqsfake.New()
	defer queues.Close()
	queueURL, err := queues.CreateQueue("ingest", sqsfake.QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range params.Env() {
		t.Setenv(k, v)
	}
	t.Setenv("AWS_ENDPOINT_URL_SQS", queues.URL())

	dbURL := pgserver.NewDatabase(t, srv)
	migrateEnv := map[string]string{
		"DATABASE_URL": dbURL,
		"DB_API_ROLE":  apiRole, "DB_API_PASSWORD_SSM_PARAMETER": "/rates/test/db/api",
		"DB_WORKER_ROLE": workerRole, "DB_WORKER_PASSWORD_SSM_PARAMETER": "/rates/test/db/worker",
	}
	if _, logs, err := runCmd(t, migrateEnv, "migrate", "up"); err != nil {
		t.Fatalf("migrate up with roles: %v\n%s", err, logs)
	}
	if len(params.Requests()) != 2 {
		t.Fatalf("SSM requests = %+v, want one per role", params.Requests())
	}
	as := func(role string) string {
		u, _ := url.Parse(dbURL)
		u.User = url.User(role)
		return u.String()
	}
	workerEnv := map[string]string{"DATABASE_URL": as(workerRole), "INGEST_QUEUE_URL": queueURL}
	out, logs, err := runCmd(t, workerEnv, "worker", "--check")
	if err != nil || !strings.Contains(out, "worker check passed") || !strings.Contains(out, workerRole) {
		t.Fatalf("worker --check as the worker role = %q, %v\n%s", out, err, logs)
	}
	apiEnv := map[string]string{"DATABASE_URL": as(apiRole), "INGEST_QUEUE_URL": queueURL}
	if _, _, err := runCmd(t, apiEnv, "worker", "--check"); err == nil || !strings.Contains(err.Error(), "may not load batches") {
		t.Fatalf("worker --check as the API role: err = %v, want a privilege error", err)
	}
	missing := map[string]string{"DATABASE_URL": as(workerRole), "INGEST_QUEUE_URL": queues.URL() + "/000000000000/no-such-queue"}
	if _, _, err := runCmd(t, missing, "worker", "--check"); err == nil || !strings.Contains(err.Error(), "no-such-queue") {
		t.Fatalf("worker --check with a missing queue: err = %v", err)
	}
	empty := pgserver.NewDatabase(t, srv)
	if _, _, err := runCmd(t, map[string]string{"DATABASE_URL": empty, "INGEST_QUEUE_URL": queueURL}, "worker", "--check"); err == nil ||
		!strings.Contains(err.Error(), "this binary needs version") {
		t.Fatalf("worker --check on an empty database: err = %v", err)
	}

	// The API's role serves /rates; the worker's role loads a batch.
	if _, logs, err := runCmd(t, map[string]string{"DATABASE_URL": dbURL}, "seed", "--file", defaultDump); err != nil {
		t.Fatalf("seed: %v\n%s", err, logs)
	}
	const token = "test-token-0123456789abcdef"
	r := startServe(t, map[string]string{"DATABASE_URL": as(apiRole), "HTTP_ADDR": freeAddr(t), "MIGRATE_ON_START": "false",
		"INGEST_API_TOKEN": token})
	r.waitReady(t)
	if status, body := get(t, "http://"+r.addr+"/rates?date_from=2026-01-01&date_to=2026-01-01&orig_code=CNSHA&dest_code=NLRTM"); status != 200 {
		t.Fatalf("rates as the API role = %d %s", status, body)
	}
	// With a token but the least-privilege role, /batches is refused before any body is read,
	// naming the role, and the start-up log says why.
	req, _ := http.NewRequest(http.MethodPost, "http://"+r.addr+"/batches", strings.NewReader("orig_code,dest_code,day,price\nCNSHA,NLRTM,2025-01-01,1\n"))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "text/csv")
	req.Header.Set("Idempotency-Key", "least-privilege")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	refusal, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotImplemented || !strings.Contains(string(refusal), "database role "+apiRole+" may not load batches") {
		t.Fatalf("POST /batches as the API role = %d %s, want 501 naming the role", resp.StatusCode, refusal)
	}
	if !strings.Contains(r.logs.String(), "POST /batches is off") {
		t.Fatalf("the start-up log does not say /batches is off:\n%s", r.logs)
	}
	batch := t.TempDir() + "/batch.csv"
	if err := os.WriteFile(batch, []byte("orig_code,dest_code,day,price\nCNSHA,NLRTM,2026-01-01,1000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, logs, err := runCmd(t, map[string]string{"DATABASE_URL": as(workerRole)}, "ingest", "--file", batch); err != nil {
		t.Fatalf("ingest as the worker role = %q, %v\n%s", out, err, logs)
	}
	other := t.TempDir() + "/other.csv"
	if err := os.WriteFile(other, []byte("orig_code,dest_code,day,price\nCNSHA,NLRTM,2026-01-02,1000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCmd(t, map[string]string{"DATABASE_URL": as(apiRole)}, "ingest", "--file", other); err == nil ||
		!strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("ingest as the API role: err = %v, want permission denied", err)
	}
}
