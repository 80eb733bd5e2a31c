package main

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"rates/internal/testing/pgserver"
)

var srv *pgserver.Server

func TestMain(m *testing.M) { os.Exit(pgserver.Main(m, &srv)) }

// ensureDatabase creates the database on the first run and finds it, with its data, on the next.
func TestEnsureDatabaseKeepsData(t *testing.T) {
	ctx := context.Background()
	url, err := ensureDatabase(ctx, srv, "devdb_keeps")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (x int)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	again, err := ensureDatabase(ctx, srv, "devdb_keeps")
	if err != nil || again != url {
		t.Fatalf("second ensureDatabase = %q, %v; want %q", again, err, url)
	}
	conn, err = pgx.Connect(ctx, again)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT x FROM kept"); err != nil {
		t.Fatalf("the second run lost the data: %v", err)
	}
}
