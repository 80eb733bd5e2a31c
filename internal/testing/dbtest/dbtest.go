// Package dbtest hands tests a migrated database, optionally seeded, on the throwaway
// PostgreSQL server of their test binary (see pgserver.Main).
package dbtest

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"rates/internal/seed"
	"rates/internal/store"
	"rates/internal/testing/pgserver"
)

// Discard is a logger for code under test whose logs the test does not read.
var Discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// Migrated creates a fresh database with the schema applied and returns a pool on it,
// closed when the test ends.
func Migrated(t testing.TB, srv *pgserver.Server) (*pgxpool.Pool, string) {
	t.Helper()
	url := pgserver.NewDatabase(t, srv)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	m, err := store.NewMigrator(context.Background(), pool, Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Up(context.Background()); err != nil {
		t.Fatal(err)
	}
	return pool, url
}

// Seeded is Migrated with the dump at path imported.
func Seeded(t testing.TB, srv *pgserver.Server, path string) (*pgxpool.Pool, string) {
	t.Helper()
	pool, url := Migrated(t, srv)
	if _, err := seed.New(pool, Discard).ApplyFile(context.Background(), path, seed.Options{}); err != nil {
		t.Fatal(err)
	}
	return pool, url
}
