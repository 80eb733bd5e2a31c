package store_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"rates/internal/dbtest"
	"rates/internal/pgserver"
	"rates/internal/store"
)

var srv *pgserver.Server

func TestMain(m *testing.M) { os.Exit(pgserver.Main(m, &srv)) }

// The rates query must be answered from prices_route_day_idx without visiting the table.
func TestDailyStatsUsesIndexOnlyScan(t *testing.T) {
	pool, _ := dbtest.Seeded(t, srv, "../../db/seed/rates.sql")
	ctx := context.Background()
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 0, 30)
	for _, ports := range [][2][]string{
		{{"CNSHA"}, {"NLRTM"}},
		{{"CNSHA", "CNYTN", "CNNGB"}, {"NLRTM", "DEHAM", "BEANR", "USLAX"}},
	} {
		rows, err := pool.Query(ctx, "EXPLAIN "+store.DailyStatsSQL, ports[0], ports[1], from, to)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for rows.Next() {
			var l string
			if err := rows.Scan(&l); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, l)
		}
		text := strings.Join(lines, "\n")
		if !strings.Contains(text, "Index Only Scan using prices_route_day_idx") {
			t.Fatalf("plan for %v does not use an index-only scan:\n%s", ports, text)
		}
	}
}

func TestResolveAndStats(t *testing.T) {
	pool, _ := dbtest.Seeded(t, srv, "../../db/seed/rates.sql")
	st := store.New(pool)
	ctx := context.Background()
	orig, dest, err := st.ResolvePair(ctx, "cnsha", "no_such_region")
	if err != nil {
		t.Fatal(err)
	}
	if !orig.Found || len(orig.Ports) != 1 || orig.Ports[0] != "CNSHA" {
		t.Fatalf("orig = %+v, want the single port CNSHA", orig)
	}
	if dest.Found || len(dest.Ports) != 0 {
		t.Fatalf("dest = %+v, want not found", dest)
	}
	stats, err := st.DailyStats(ctx, nil, []string{"NLRTM"}, time.Now(), time.Now())
	if err != nil || stats != nil {
		t.Fatalf("no origin ports: %v %v, want no stats and no query", stats, err)
	}
}

func TestIsUnavailable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("dial tcp: connection refused"), true},
		{context.DeadlineExceeded, true},
		{&pgconn.PgError{Code: "57P01"}, true},  // admin shutdown
		{&pgconn.PgError{Code: "08006"}, true},  // connection failure
		{&pgconn.PgError{Code: "53300"}, true},  // too many connections
		{&pgconn.PgError{Code: "42601"}, false}, // syntax error: a bug, not an outage
		{&pgconn.PgError{Code: "22P02"}, false},
	}
	for _, tt := range tests {
		if got := store.IsUnavailable(tt.err); got != tt.want {
			t.Errorf("IsUnavailable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
