package store_test

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"rates/internal/store"
	"rates/internal/testing/dbtest"
)

// connectAs opens a connection to the database at dbURL as role (the test cluster trusts
// local connections, so no password is needed to act as the role).
func connectAs(ctx context.Context, t *testing.T, dbURL, role string) *pgx.Conn {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatalf("connect as %s: %v", role, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.WithoutCancel(ctx)) })
	return conn
}

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

func TestSyncRolesGrantsLeastPrivilege(t *testing.T) {
	ctx := context.Background()
	pool, dbURL := dbtest.Seeded(t, srv, "../../db/seed/rates.sql")
	suffix := fmt.Sprint(time.Now().UnixNano())
	api, worker := "api_"+suffix, "worker_"+suffix
	roles := []store.LoginRole{
		{Name: api, Password: "api-secret-1", Group: store.ReaderRole},
		{Name: worker, Password: "worker-secret-1", Group: store.LoaderRole},
	}
	if err := store.SyncRoles(ctx, pool, roles); err != nil {
		t.Fatal(err)
	}
	var verifier string
	if err := pool.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", api).Scan(&verifier); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(verifier, "SCRAM-SHA-256$4096:") || strings.Contains(verifier, "api-secret-1") {
		t.Fatalf("stored password of %s = %q, want a SCRAM-SHA-256 verifier", api, verifier)
	}

	// A new table a later migration adds (as the owner): the loader may use it at once.
	if _, err := pool.Exec(ctx, "SET ROLE "+store.OwnerRole+"; CREATE TABLE later_ingest_table (id bigint GENERATED ALWAYS AS IDENTITY, note text); RESET ROLE"); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		role, sql string
		wantState string // "" means allowed
	}{
		{api, "SELECT count(*) FROM price_daily", ""},
		{api, "SELECT count(*) FROM ports JOIN regions ON ports.parent_slug = regions.slug", ""},
		{api, "SELECT generation FROM data_generation", ""},
		{api, "INSERT INTO prices VALUES ('CNSHA', 'NLRTM', '2026-01-01', 1)", "42501"},
		{api, "SELECT count(*) FROM batches", "42501"},
		{api, "UPDATE data_generation SET generation = generation + 1", "42501"},
		{worker, "INSERT INTO prices VALUES ('CNSHA', 'NLRTM', '2026-01-01', 1)", ""},
		{worker, "SELECT code FROM ports WHERE code = 'CNSHA' FOR KEY SHARE", ""},
		{worker, "CREATE TEMP TABLE staging (x int)", ""},
		{worker, "INSERT INTO later_ingest_table (note) VALUES ('x')", ""},
		{worker, "SELECT version FROM schema_migrations", ""},
		{worker, "UPDATE schema_migrations SET dirty = false", "42501"},
		{api, "DELETE FROM schema_migrations", "42501"},
		{worker, "CREATE TABLE public.not_yours (x int)", "42501"},
		{worker, "ALTER TABLE prices ADD COLUMN x int", "42501"},
		{worker, "TRUNCATE prices", "42501"},
	}
	for _, tt := range tests {
		t.Run(strings.SplitN(tt.role, "_", 2)[0]+": "+tt.sql, func(t *testing.T) {
			conn := connectAs(ctx, t, dbURL, tt.role)
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx) //nolint:errcheck // nothing here may stay
			_, err = tx.Exec(ctx, tt.sql)
			if got := sqlState(err); got != tt.wantState || (tt.wantState == "" && err != nil) {
				t.Fatalf("%s as %s: err = %v, want SQLSTATE %q", tt.sql, tt.role, err, tt.wantState)
			}
		})
	}

	// Again, with a rotated password and the roles' groups swapped: the verifier changes and
	// each role is in the new group only.
	roles[0].Password, roles[0].Group, roles[1].Group = "api-secret-2", store.LoaderRole, store.ReaderRole
	if err := store.SyncRoles(ctx, pool, roles); err != nil {
		t.Fatal(err)
	}
	var rotated string
	if err := pool.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", api).Scan(&rotated); err != nil {
		t.Fatal(err)
	}
	if rotated == verifier {
		t.Fatal("the password did not change")
	}
	var apiLoads, workerLoads bool
	if err := pool.QueryRow(ctx, `SELECT pg_has_role($1, 'rates_loader', 'MEMBER'), pg_has_role($2, 'rates_loader', 'MEMBER')`,
		api, worker).Scan(&apiLoads, &workerLoads); err != nil {
		t.Fatal(err)
	}
	if !apiLoads || workerLoads {
		t.Fatalf("after swapping groups: api loads %t, worker loads %t", apiLoads, workerLoads)
	}

	for _, bad := range []store.LoginRole{
		{Name: "Robert'); DROP TABLE prices;--", Password: "x", Group: store.ReaderRole},
		{Name: "ok_name", Password: "", Group: store.ReaderRole},
		{Name: "ok_name", Password: "x", Group: "postgres"},
	} {
		if err := store.SyncRoles(ctx, pool, []store.LoginRole{bad}); err == nil {
			t.Errorf("SyncRoles(%+v) succeeded, want an error", bad)
		}
	}
}

// The verifier is the one RFC 5802 defines: recomputing its keys from the password and the
// stored salt gives the stored keys.
func TestScramVerifierRoundTrip(t *testing.T) {
	v, err := store.ScramVerifier("pencil")
	if err != nil {
		t.Fatal(err)
	}
	var iter int
	var salt64, keys string
	head, keys, _ := strings.Cut(v, "$")
	if head != "SCRAM-SHA-256" {
		t.Fatalf("verifier %q", v)
	}
	params, keys, _ := strings.Cut(keys, "$")
	if _, err := fmt.Sscanf(params, "%d:", &iter); err != nil {
		t.Fatal(err)
	}
	salt64 = params[strings.Index(params, ":")+1:]
	salt, _ := base64.StdEncoding.DecodeString(salt64)
	stored64, server64, _ := strings.Cut(keys, ":")
	salted, err := pbkdf2.Key(sha256.New, "pencil", salt, iter, 32)
	if err != nil {
		t.Fatal(err)
	}
	h := hmac.New(sha256.New, salted)
	h.Write([]byte("Client Key"))
	stored := sha256.Sum256(h.Sum(nil))
	h = hmac.New(sha256.New, salted)
	h.Write([]byte("Server Key"))
	if base64.StdEncoding.EncodeToString(stored[:]) != stored64 || base64.StdEncoding.EncodeToString(h.Sum(nil)) != server64 {
		t.Fatalf("verifier %q does not derive from the password", v)
	}
	if v2, _ := store.ScramVerifier("pencil"); v2 == v {
		t.Fatal("two verifiers share a salt")
	}
}
