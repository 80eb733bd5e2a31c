package domain_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"rates/internal/domain"
	"rates/internal/testing/dbtest"
	"rates/internal/testing/pgserver"
)

var srv *pgserver.Server

func TestMain(m *testing.M) { os.Exit(pgserver.Main(m, &srv)) }

// The CHECK constraints of the schema must accept exactly what the domain rules accept:
// each value goes through both, and they must agree.
func TestConstraintsAgreeWithRules(t *testing.T) {
	pool, _ := dbtest.Migrated(t, srv)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO regions VALUES ('r', 'R', NULL);
		INSERT INTO ports VALUES ('AAAAA', 'A', 'r'), ('BBBBB', 'B', 'r')`); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("a", domain.MaxRegionSlugLength)
	codes := []string{"CNSHA", "NL2RT", "00000", "cnsha", "CNSH", "CNSHAA", "CN-SH", "CNŠHA", "CNSH ", ""}
	slugs := []string{"china", "north_europe", "china_east2", "a", long, long + "b", "_china", "2china", "China", "north-europe", "", "ümlaut"}
	prices := []int64{-5, 0, 1, 2, 1155, domain.MaxPrice}
	days := []string{"0001-01-01", "9999-12-31", "2026-01-05"}
	outside := []string{"0001-12-31 BC", "10000-01-01"} // dates PostgreSQL holds but ParseDay cannot produce

	try := func(stmt string, args ...any) error {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(ctx) }()
		_, err = tx.Exec(ctx, stmt, args...)
		return err
	}
	check := func(what string, want bool, err error) {
		t.Helper()
		if err != nil {
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "23514" {
				t.Fatalf("%s: %v, want success or a check violation", what, err)
			}
		}
		if got := err == nil; got != want {
			t.Errorf("%s: database accepts = %v, domain rule accepts = %v (%v)", what, got, want, err)
		}
	}
	for _, c := range codes {
		check(fmt.Sprintf("port %q", c), domain.IsPortCode(c), try(`INSERT INTO ports VALUES ($1, 'x', 'r')`, c))
	}
	for _, s := range slugs {
		check(fmt.Sprintf("region %q", s), domain.IsRegionSlug(s), try(`INSERT INTO regions VALUES ($1, 'x', NULL)`, s))
	}
	for _, p := range prices {
		check(fmt.Sprintf("price %d", p), domain.ValidPrice(p),
			try(`INSERT INTO prices VALUES ('AAAAA', 'BBBBB', '2026-01-05', $1)`, p))
	}
	for _, d := range days {
		_, err := domain.ParseDay(d)
		check("day "+d, err == nil, try(`INSERT INTO prices VALUES ('AAAAA', 'BBBBB', $1::date, 10)`, d))
	}
	for _, d := range outside {
		check("day "+d, false, try(`INSERT INTO prices VALUES ('AAAAA', 'BBBBB', $1::date, 10)`, d))
	}
	for _, route := range [][2]string{{"AAAAA", "BBBBB"}, {"BBBBB", "AAAAA"}, {"AAAAA", "AAAAA"}} {
		check(fmt.Sprintf("route %s-%s", route[0], route[1]), domain.DistinctRoute(route[0], route[1]),
			try(`INSERT INTO prices VALUES ($1, $2, '2026-01-05', 10)`, route[0], route[1]))
	}
	// price_daily follows from prices: a sum below the count cannot come from valid prices.
	check("price_daily with a sum below the count", false,
		try(`INSERT INTO price_daily VALUES ('AAAAA', 'BBBBB', '2026-01-05', 3, 2)`))
	check("price_daily with a sum equal to the count", true,
		try(`INSERT INTO price_daily VALUES ('AAAAA', 'BBBBB', '2026-01-05', 3, 3)`))
}

// 000036 stops on a price from a port to itself stored before prices_route_distinct existed.
func TestRouteValidationRejectsOldBadRows(t *testing.T) {
	pool, _ := dbtest.Migrated(t, srv)
	ctx := context.Background()
	for _, stmt := range []string{
		`ALTER TABLE prices DROP CONSTRAINT prices_route_distinct`,
		`INSERT INTO regions VALUES ('r', 'R', NULL); INSERT INTO ports VALUES ('AAAAA', 'A', 'r')`,
		`INSERT INTO prices VALUES ('AAAAA', 'AAAAA', '2026-01-05', 10)`,
		`ALTER TABLE prices ADD CONSTRAINT prices_route_distinct CHECK (orig_code <> dest_code) NOT VALID`,
	} {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	up, err := os.ReadFile("../../db/migrations/000036_validate_prices_route_distinct.up.sql")
	if err != nil {
		t.Fatal(err)
	}
	_, err = pool.Exec(ctx, string(up))
	if err == nil || !strings.Contains(err.Error(), "prices_route_distinct") {
		t.Fatalf("validation of a price from a port to itself: %v, want a violation of prices_route_distinct", err)
	}
}
