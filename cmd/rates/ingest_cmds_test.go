package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"rates/internal/ingest"
	"rates/internal/testing/pgserver"
)

// seededDatabase returns a new database seeded with the default dump by run, and the
// environment that points the commands at it.
func seededDatabase(t *testing.T) (string, func(string) (string, bool)) {
	t.Helper()
	url := pgserver.NewDatabase(t, srv)
	env := lookupOf(map[string]string{"DATABASE_URL": url, "LOG_LEVEL": "warn", "MIGRATE_ON_START": "true"})
	if err := run(context.Background(), []string{"seed", "--file", defaultDump}, env, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	return url, env
}

func TestIngestCommand(t *testing.T) {
	url, env := seededDatabase(t)
	ctx := context.Background()
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

// rates ingest --manifest loads the parts beside the manifest as one batch, and says so in
// its JSON line; the same rows as one file are then a duplicate.
func TestIngestManifestCommand(t *testing.T) {
	_, env := seededDatabase(t)
	ctx := context.Background()
	dir := t.TempDir()
	parts := []string{
		"orig_code,dest_code,day,price\nCNSHA,NLRTM,2026-02-01,1500\n",
		"orig_code,dest_code,day,price\nCNSHA,NLRTM,2026-02-01,1600\nCNSHA,NLRTM,2026-02-02,1700\n",
	}
	var man ingest.Manifest
	for i, p := range parts {
		name := fmt.Sprintf("part-%d.csv", i)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(p), 0o600); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(p))
		man.Parts = append(man.Parts, ingest.ManifestPart{Key: name, SHA256: hex.EncodeToString(sum[:])})
	}
	data, _ := json.Marshal(man)
	manifest := filepath.Join(dir, "batch.json")
	if err := os.WriteFile(manifest, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"ingest", "--manifest", manifest, "--json"}, env, &out, io.Discard); err != nil {
		t.Fatalf("ingest --manifest: %v %s", err, out.String())
	}
	var got struct {
		BatchID int64  `json:"batch_id"`
		Status  string `json:"status"`
		Rows    int64  `json:"rows"`
		Mode    string `json:"mode"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || got.Status != "loaded" || got.Rows != 3 || got.Mode != "append" {
		t.Fatalf("ingest --manifest printed %s (%v), want a loaded batch of 3 rows", out.String(), err)
	}
	single := filepath.Join(dir, "single.csv")
	_ = os.WriteFile(single, []byte(parts[0]+strings.SplitN(parts[1], "\n", 2)[1]), 0o600)
	out.Reset()
	if err := run(ctx, []string{"ingest", "--file", single, "--json"}, env, &out, io.Discard); err != nil ||
		!strings.Contains(out.String(), `"status":"duplicate"`) || !strings.Contains(out.String(), fmt.Sprintf(`"batch_id":%d`, got.BatchID)) {
		t.Fatalf("the same rows as one file: %v %s, want a duplicate of batch %d", err, out.String(), got.BatchID)
	}
	if err := run(ctx, []string{"ingest", "--manifest", manifest, "--mode", "replace"}, env, io.Discard, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "manifest gives its mode") {
		t.Fatalf("--manifest with --mode: %v, want a usage error", err)
	}
}
