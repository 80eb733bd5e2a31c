package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"rates/internal/store"
	"rates/internal/testing/dbtest"
)

// Each case provokes a real failure of pgx against a real server and checks how it is classed:
// an outage is unavailable (503), a bug is not (500).
func TestIsUnavailable(t *testing.T) {
	pool, url := dbtest.Migrated(t, srv)
	ctx := context.Background()
	raise := func(code string) error {
		_, err := pool.Exec(ctx, fmt.Sprintf(`DO $$ BEGIN RAISE EXCEPTION 'raised' USING ERRCODE = '%s'; END $$`, code))
		return err
	}
	tests := []struct {
		name string
		err  func(t *testing.T) error
		want bool
	}{
		{"no error", func(*testing.T) error { return nil }, false},
		{"connection refused", func(t *testing.T) error {
			p, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			return p.Ping(ctx)
		}, true},
		{"closed pool", func(t *testing.T) error {
			p, err := pgxpool.New(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			p.Close()
			_, err = p.Exec(ctx, "SELECT 1")
			return err
		}, true},
		{"connection killed by the server", func(t *testing.T) error {
			conn, err := pool.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Release()
			_, err = conn.Exec(ctx, "SELECT pg_terminate_backend(pg_backend_pid())")
			return err
		}, true},
		{"connection dropped under a query", func(t *testing.T) error {
			conn, err := pool.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Release()
			_ = conn.Conn().PgConn().Conn().Close() // the socket goes, as when the network fails
			_, err = conn.Exec(ctx, "SELECT 1")
			return err
		}, true},
		{"query timeout", func(*testing.T) error {
			c, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			_, err := pool.Exec(c, "SELECT pg_sleep(5)")
			return err
		}, true},
		{"too many connections (53300)", func(*testing.T) error { return raise("53300") }, true},
		{"admin shutdown (57P01)", func(*testing.T) error { return raise("57P01") }, true},
		{"deadlock (40P01), after its retry", func(*testing.T) error { return raise("40P01") }, true},
		{"serialization failure (40001), after its retry", func(*testing.T) error { return raise("40001") }, true},
		{"syntax error", func(*testing.T) error { _, err := pool.Exec(ctx, "SELEC 1"); return err }, false},
		{"scan into the wrong type", func(*testing.T) error {
			var n int
			return pool.QueryRow(ctx, "SELECT 'not a number'").Scan(&n)
		}, false},
		{"scan of too few columns", func(*testing.T) error {
			var a, b int
			return pool.QueryRow(ctx, "SELECT 1").Scan(&a, &b)
		}, false},
		{"check violation", func(*testing.T) error {
			_, err := pool.Exec(ctx, "INSERT INTO regions VALUES ('Not A Slug', 'x', NULL)")
			return err
		}, false},
		{"an error of the program", func(*testing.T) error { return errors.New("index out of range") }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err(t)
			if (err == nil) != (tt.name == "no error") {
				t.Fatalf("the case returned %v", err)
			}
			if err != nil {
				err = fmt.Errorf("what failed: %w", err) // as callers wrap it
			}
			if got := store.IsUnavailable(err); got != tt.want {
				t.Errorf("IsUnavailable(%v) = %v, want %v", err, got, tt.want)
			}
		})
	}
}

func TestRetryOnce(t *testing.T) {
	deadlock := &pgconn.PgError{Code: "40P01"}
	serialization := &pgconn.PgError{Code: "40001"}
	syntax := &pgconn.PgError{Code: "42601"}
	tests := []struct {
		name      string
		errs      []error // returned by the successive calls; nil is success
		wantCalls int
		wantErr   error
	}{
		{"success", []error{nil}, 1, nil},
		{"deadlock, then success", []error{deadlock, nil}, 2, nil},
		{"serialization failure, then success", []error{serialization, nil}, 2, nil},
		{"deadlock twice", []error{deadlock, deadlock, nil}, 2, deadlock},
		{"a bug is not retried", []error{syntax, nil}, 1, syntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			v, err := store.RetryOnce(context.Background(), func(context.Context) (int, error) {
				calls++
				return calls, tt.errs[calls-1]
			})
			if calls != tt.wantCalls || !errors.Is(err, tt.wantErr) || (err == nil && v != calls) {
				t.Fatalf("calls = %d, v = %d, err = %v; want %d calls, err %v", calls, v, err, tt.wantCalls, tt.wantErr)
			}
		})
	}
	// A cancelled request is not run again.
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	_, _ = store.RetryOnce(ctx, func(context.Context) (int, error) { calls++; cancel(); return 0, deadlock })
	if calls != 1 {
		t.Fatalf("calls after cancel = %d, want 1", calls)
	}
}
