package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"rates/internal/testing/pgserver"
)

func TestIngestCommand(t *testing.T) {
	url := pgserver.NewDatabase(t, srv)
	env := lookupOf(map[string]string{"DATABASE_URL": url, "LOG_LEVEL": "warn", "MIGRATE_ON_START": "true"})
	ctx := context.Background()
	if err := run(ctx, []string{"seed", "--file", defaultDump}, env, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.csv")
	bad := filepath.Join(dir, "bad.csv")
	_ = os.WriteFile(good, []byte("orig_code,dest_code,day,price\nCNSHA,NLRTM,2026-02-01,1500\nCNSHA,NLRTM,2026-02-01,1600\n"), 0o644)
	_ = os.WriteFile(bad, []byte("orig_code,dest_code,day,price\nCNSHA,NLRTM,2026-02-01,1500\nCNSHA,XXXXX,2026-02-30,-3\n"), 0o644)

	var out bytes.Buffer
	if err := run(ctx, []string{"ingest", "--file", good}, env, &out, io.Discard); err != nil || !strings.Contains(out.String(), ": 2 rows in ") {
		t.Fatalf("ingest good: %v %q", err, out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"ingest", "--file", good}, env, &out, io.Discard); err != nil || !strings.Contains(out.String(), "already loaded") {
		t.Fatalf("ingest good again: %v %q", err, out.String())
	}
	out.Reset()
	err := run(ctx, []string{"ingest", "--file", bad}, env, &out, io.Discard)
	if err == nil || !strings.Contains(out.String(), `"line": 3`) || !strings.Contains(out.String(), `"bad_rows": 1`) {
		t.Fatalf("ingest bad: %v %q, want an error and a report naming line 3", err, out.String())
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM prices WHERE day = '2026-02-01'").Scan(&n); err != nil || n != 2 {
		t.Fatalf("prices on 2026-02-01: %d (%v), want the 2 rows of the good batch only", n, err)
	}
}
