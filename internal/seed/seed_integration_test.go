package seed_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"rates/internal/seed"
	"rates/internal/testing/dbtest"
	"rates/internal/testing/pgserver"
	"rates/internal/testing/reference"
)

var srv *pgserver.Server

func TestMain(m *testing.M) { os.Exit(pgserver.Main(m, &srv)) }

type snapshot struct {
	regions, ports, prices int64
	digest                 string
	history                int64
}

// snap fingerprints all loaded data, so a test can tell "exactly as before".
func snap(t *testing.T, pool *pgxpool.Pool) snapshot {
	t.Helper()
	var s snapshot
	err := pool.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM regions), (SELECT count(*) FROM ports), (SELECT count(*) FROM prices),
		md5(coalesce((SELECT string_agg(r::text, ',' ORDER BY r::text) FROM regions r), '') ||
		    coalesce((SELECT string_agg(p::text, ',' ORDER BY p::text) FROM ports p), '') ||
		    coalesce((SELECT string_agg(x::text, ',' ORDER BY x::text) FROM prices x), '')),
		(SELECT count(*) FROM seed_history)`).Scan(&s.regions, &s.ports, &s.prices, &s.digest, &s.history)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dump.sql")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const smallDump = `SET client_encoding = 'UTF8';
COPY public.ports (code, name, parent_slug) FROM stdin;
AAAAA	Alpha	north
BBBBB	Beta\twith tab	south
\.
COPY public.prices (orig_code, dest_code, day, price) FROM stdin;
AAAAA	BBBBB	2021-01-01	100
\.
COPY public.regions (slug, name, parent_slug) FROM stdin;
north	North	world
south	South	world
world	World	\N
\.
`

func TestReferenceDumpLoadsOnceAndRerunIsNoop(t *testing.T) {
	dump := reference.Dump(t)
	pool, _ := dbtest.Migrated(t, srv)
	s := seed.New(pool, dbtest.Discard)
	ctx := context.Background()

	res, err := s.ApplyFile(ctx, dump, seed.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped || res.SHA256 != reference.SHA256 {
		t.Fatalf("first run: skipped=%v sha=%s", res.Skipped, res.SHA256)
	}
	want := map[string]int64{"regions": 20, "ports": 143, "prices": 56689}
	for table, n := range want {
		if res.Rows[table] != n {
			t.Errorf("reported %s rows = %d, want %d", table, res.Rows[table], n)
		}
	}
	before := snap(t, pool)
	if before.regions != 20 || before.ports != 143 || before.prices != 56689 || before.history != 1 {
		t.Fatalf("loaded %+v, want 20 regions, 143 ports, 56689 prices, 1 history row", before)
	}
	t.Logf("reference dump seeded in %s", res.Duration)

	res, err = s.ApplyFile(ctx, dump, seed.Options{})
	if err != nil || !res.Skipped {
		t.Fatalf("second run: skipped=%v err=%v, want a no-op", res.Skipped, err)
	}
	if after := snap(t, pool); after != before {
		t.Fatalf("second run changed data: %+v -> %+v", before, after)
	}
}

func TestDifferentDumpRefusedThenReplaced(t *testing.T) {
	pool, _ := dbtest.Migrated(t, srv)
	s := seed.New(pool, dbtest.Discard)
	ctx := context.Background()
	first := writeFile(t, smallDump)
	if _, err := s.ApplyFile(ctx, first, seed.Options{}); err != nil {
		t.Fatal(err)
	}
	before := snap(t, pool)

	second := writeFile(t, strings.Replace(smallDump, "\t100\n", "\t200\n", 1))
	_, err := s.ApplyFile(ctx, second, seed.Options{})
	if !errors.Is(err, seed.ErrDataDiffers) || !strings.Contains(err.Error(), "--replace") {
		t.Fatalf("different dump: err = %v, want ErrDataDiffers mentioning --replace", err)
	}
	if after := snap(t, pool); after != before {
		t.Fatalf("refused dump changed data")
	}

	res, err := s.ApplyFile(ctx, second, seed.Options{Replace: true})
	if err != nil || res.Skipped {
		t.Fatalf("replace: %v skipped=%v", err, res.Skipped)
	}
	var price int
	if err := pool.QueryRow(ctx, "SELECT price FROM prices").Scan(&price); err != nil || price != 200 {
		t.Fatalf("after replace price = %d (%v), want 200", price, err)
	}
	if got := snap(t, pool); got.prices != 1 || got.ports != 2 || got.regions != 3 || got.history != 2 {
		t.Fatalf("after replace: %+v", got)
	}
	var name string
	if err := pool.QueryRow(ctx, "SELECT name FROM ports WHERE code = 'BBBBB'").Scan(&name); err != nil || name != "Beta\twith tab" {
		t.Fatalf("COPY escapes: name = %q (%v)", name, err)
	}
}

// Broken dumps must leave the database exactly as it was, both when empty and when replacing.
func TestBrokenDumpLeavesDatabaseUnchanged(t *testing.T) {
	tests := []struct {
		name, dump, wantErr string
	}{
		{"truncated inside COPY", smallDump[:strings.Index(smallDump, "BBBBB\tBeta")], "no end marker"},
		{"bad date", strings.Replace(smallDump, "2021-01-01", "2021-02-30", 1), "line 7: prices"},
		{"bad price", strings.Replace(smallDump, "\t100\n", "\tcheap\n", 1), "line 7: prices"},
		{"unknown port", strings.Replace(smallDump, "AAAAA\tBBBBB", "AAAAA\tZZZZZ", 1), "ZZZZZ"},
		{"orphan region", strings.Replace(smallDump, "world\tWorld\t\\N", "world\tWorld\tnowhere", 1), "nowhere"},
		{"duplicate port", strings.Replace(smallDump, "BBBBB\tBeta", "AAAAA\tBeta", 1), "line 4: ports"},
		{"null name", strings.Replace(smallDump, "Alpha", `\N`, 1), "line 3: ports"},
		{"unsupported statement", smallDump + "DROP TABLE prices;\n", "line 14: unsupported statement"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, replacing := range []bool{false, true} {
				pool, _ := dbtest.Migrated(t, srv)
				s := seed.New(pool, dbtest.Discard)
				ctx := context.Background()
				if replacing {
					if _, err := s.ApplyFile(ctx, writeFile(t, smallDump), seed.Options{}); err != nil {
						t.Fatal(err)
					}
				}
				before := snap(t, pool)
				_, err := s.ApplyFile(ctx, writeFile(t, tt.dump), seed.Options{Replace: replacing})
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("replacing=%v: err = %v, want it to contain %q", replacing, err, tt.wantErr)
				}
				if after := snap(t, pool); after != before {
					t.Fatalf("replacing=%v: data changed: %+v -> %+v", replacing, before, after)
				}
			}
		})
	}
}

func TestConcurrentStartImportsOnce(t *testing.T) {
	dump := reference.Dump(t)
	_, url := dbtest.Migrated(t, srv)
	const instances = 4
	results := make([]seed.Result, instances)
	errs := make([]error, instances)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each instance has its own pool, as separate containers would.
			pool, err := pgxpool.New(context.Background(), url)
			if err != nil {
				errs[i] = err
				return
			}
			defer pool.Close()
			<-start
			results[i], errs[i] = seed.New(pool, dbtest.Discard).ApplyFile(context.Background(), dump, seed.Options{})
		}()
	}
	close(start)
	wg.Wait()
	imported := 0
	for i := range instances {
		if errs[i] != nil {
			t.Fatalf("instance %d: %v", i, errs[i])
		}
		if !results[i].Skipped {
			imported++
		}
	}
	if imported != 1 {
		t.Fatalf("%d instances imported, want exactly 1", imported)
	}
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if s := snap(t, pool); s.prices != 56689 || s.history != 1 {
		t.Fatalf("after concurrent start: %+v", s)
	}
}

// TestPgDumpRoundTrip loads dumps written by the installed pg_dump in its plain formats:
// COPY (with \restrict), --inserts, and --column-inserts --rows-per-insert.
func TestPgDumpRoundTrip(t *testing.T) {
	pool, url := dbtest.Seeded(t, srv, writeFile(t, smallDump+`COPY public.ports (code, name, parent_slug) FROM stdin;
CCCCC	Quote ' and "double" and back\\slash and ünïcödé; semicolon	north
\.
`))
	want := snap(t, pool)
	variants := map[string][]string{
		"copy":           nil,
		"inserts":        {"--inserts"},
		"column-inserts": {"--column-inserts", "--rows-per-insert=2"},
	}
	for name, flags := range variants {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), name+".sql")
			args := append([]string{"--no-owner", "--no-privileges", "--table=regions", "--table=ports", "--table=prices", "-f", out, url}, flags...)
			if b, err := exec.Command(filepath.Join(srv.BinDir(), "pg_dump"), args...).CombinedOutput(); err != nil {
				t.Fatalf("pg_dump: %v: %s", err, b)
			}
			target, _ := dbtest.Migrated(t, srv)
			if _, err := seed.New(target, dbtest.Discard).ApplyFile(context.Background(), out, seed.Options{}); err != nil {
				dumped, _ := os.ReadFile(out)
				t.Fatalf("seed pg_dump output: %v\n%s", err, firstLines(string(dumped), 40))
			}
			got := snap(t, target)
			if got.regions != want.regions || got.ports != want.ports || got.prices != want.prices || got.digest != want.digest {
				t.Fatalf("round trip: got %+v, want %+v", got, want)
			}
		})
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

func TestCancelledSeedLeavesNothing(t *testing.T) {
	dump := reference.Dump(t)
	pool, _ := dbtest.Migrated(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := seed.New(pool, dbtest.Discard).ApplyFile(ctx, dump, seed.Options{}); err == nil {
		t.Fatal("cancelled seed succeeded")
	}
	if s := snap(t, pool); s.prices != 0 || s.ports != 0 || s.history != 0 {
		t.Fatalf("cancelled seed left data: %+v", s)
	}
}
