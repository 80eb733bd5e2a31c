package main

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"rates/internal/store"
	"rates/internal/testing/pgserver"
)

// As on RDS: `rates migrate up` connects as a user with CREATEROLE and CREATEDB but not
// SUPERUSER that owns the database. Run twice (every deploy runs it), it migrates as the owner
// role and keeps the login roles in step; the master seeds; the worker's role loads a batch and
// the API's role serves it. The cluster is the test's own: from PostgreSQL 16 on, such a user
// may only grant the roles it created, and the shared cluster's were created by postgres.
func TestMigrateUpAsANonSuperuserMaster(t *testing.T) {
	ctx := context.Background()
	s, err := pgserver.Start(ctx, pgserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	admin, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	for _, stmt := range []string{
		"CREATE ROLE master LOGIN CREATEROLE CREATEDB NOSUPERUSER",
		"CREATE DATABASE rates OWNER master TEMPLATE template0",
	} {
		if _, err := admin.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	as := func(role string) string {
		u, _ := url.Parse(s.URL("rates"))
		u.User = url.User(role)
		return u.String()
	}
	migrateEnv := map[string]string{
		"DATABASE_URL": as("master"),
		"DB_API_ROLE":  "rates_api", "DB_API_PASSWORD": "api-pass",
		"DB_WORKER_ROLE": "rates_worker", "DB_WORKER_PASSWORD": "worker-pass",
	}
	for i := range 2 {
		if out, logs, err := runCmd(t, migrateEnv, "migrate", "up"); err != nil || !strings.Contains(out, "(dirty: false)") {
			t.Fatalf("migrate up #%d as the master: %q, %v\n%s", i+1, out, err, logs)
		}
	}
	conn, err := pgx.Connect(ctx, as("master"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, "SELECT DISTINCT pg_get_userbyid(relowner)::text FROM pg_class WHERE relnamespace = 'public'::regnamespace")
	if owners, err := pgx.CollectRows(rows, pgx.RowTo[string]); err != nil || len(owners) != 1 || owners[0] != store.OwnerRole {
		t.Fatalf("owners of the schema's relations = %v (%v), want only %s", owners, err, store.OwnerRole)
	}

	if _, logs, err := runCmd(t, map[string]string{"DATABASE_URL": as("master")}, "seed", "--file", defaultDump); err != nil {
		t.Fatalf("seed as the master: %v\n%s", err, logs)
	}
	batch := writeFile(t, t.TempDir(), "batch.csv", "orig_code,dest_code,day,price\nCNSHA,NLRTM,2026-02-01,1500\n")
	if out, logs, err := runCmd(t, map[string]string{"DATABASE_URL": as("rates_worker")}, "ingest", "--file", batch); err != nil ||
		!strings.Contains(out, ": 1 rows in ") {
		t.Fatalf("ingest as the worker's role: %q, %v\n%s", out, err, logs)
	}
	r := startServe(t, map[string]string{"DATABASE_URL": as("rates_api"), "HTTP_ADDR": freeAddr(t), "MIGRATE_ON_START": "false"})
	r.waitReady(t)
	status, body := get(t, "http://"+r.addr+"/rates?date_from=2026-02-01&date_to=2026-02-01&orig_code=CNSHA&dest_code=NLRTM")
	if status != 200 || !strings.Contains(body, `"day":"2026-02-01"`) {
		t.Fatalf("rates as the API's role = %d %.300s", status, body)
	}
}
