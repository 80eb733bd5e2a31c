package dbtest

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"testing"

	"rates/db"

	"rates/internal/testing/pgserver"
)

var srv *pgserver.Server

func TestMain(m *testing.M) { os.Exit(pgserver.Main(m, &srv)) }

// Migrated hands out a fresh database at the newest schema, Seeded one with the dump loaded,
// and two calls never share a database.
func TestMigratedAndSeeded(t *testing.T) {
	ctx := context.Background()
	a, urlA := Migrated(t, srv)
	_, urlB := Migrated(t, srv)
	if urlA == urlB {
		t.Fatalf("two calls returned the same database %s", urlA)
	}
	var version int
	var dirty bool
	if err := a.QueryRow(ctx, "SELECT version, dirty FROM schema_migrations").Scan(&version, &dirty); err != nil || dirty || version != newestMigration(t) {
		t.Fatalf("schema version %d dirty %v (%v), want %d, clean", version, dirty, err, newestMigration(t))
	}
	var prices int
	if err := a.QueryRow(ctx, "SELECT count(*) FROM prices").Scan(&prices); err != nil || prices != 0 {
		t.Fatalf("a migrated database holds %d prices (%v), want none", prices, err)
	}
	seeded, _ := Seeded(t, srv, "../../../db/seed/rates.sql")
	if err := seeded.QueryRow(ctx, "SELECT count(*) FROM prices").Scan(&prices); err != nil || prices == 0 {
		t.Fatalf("a seeded database holds %d prices (%v)", prices, err)
	}
}

func newestMigration(t *testing.T) int {
	t.Helper()
	files, err := fs.Glob(db.Migrations, "migrations/*.up.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("embedded migrations: %v %v", files, err)
	}
	newest := 0
	for _, f := range files {
		var v int
		if _, err := fmt.Sscanf(path.Base(f), "%d_", &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		newest = max(newest, v)
	}
	return newest
}
