package seed_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"rates/internal/batchstore"
	"rates/internal/domain"
	"rates/internal/seed"
	"rates/internal/store"
	"rates/internal/testing/batchtest"
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

// derivedExact fails unless price_daily equals the GROUP BY over prices after a seed, and its
// triggers are back as the migrations left them (ENABLE ALWAYS): a price written by hand and
// deleted again keeps it exact.
func derivedExact(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	check := func(when string) {
		t.Helper()
		rep, err := store.Check(ctx, pool, 3)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Mismatches != 0 {
			t.Fatalf("price_daily %s: %d mismatches, first %v", when, rep.Mismatches, rep.First)
		}
	}
	check("after the seed")
	var pages, visible int64
	if err := pool.QueryRow(ctx, `SELECT relpages, relallvisible FROM pg_class WHERE oid = 'price_daily'::regclass`).Scan(&pages, &visible); err != nil {
		t.Fatal(err)
	}
	if pages == 0 || visible != pages {
		t.Fatalf("after the seed: %d of price_daily's %d pages all-visible, want all (vacuumed)", visible, pages)
	}
	var daily, always int64
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM price_daily),
		(SELECT count(*) FROM pg_trigger WHERE tgrelid = 'prices'::regclass AND tgname LIKE 'price_daily%' AND tgenabled = 'A')`).
		Scan(&daily, &always); err != nil {
		t.Fatal(err)
	}
	if daily == 0 || always != 5 {
		t.Fatalf("after the seed: %d price_daily rows, %d of the 5 price_daily triggers ENABLE ALWAYS", daily, always)
	}
	for _, stmt := range []string{
		"INSERT INTO prices (orig_code, dest_code, day, price) SELECT orig_code, dest_code, day, price + 7 FROM prices LIMIT 1",
		"DELETE FROM prices WHERE ctid = (SELECT max(ctid) FROM prices)",
	} {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
		check("after " + strings.Fields(stmt)[0])
	}
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

// generatedDump is the project's default dump; the reference dump, when present beside the
// repository, is checked the same way.
const generatedDump = "../../db/seed/rates.sql"

// dumps are the dumps the tests that need real volumes run on: always the generated one, and
// the reference dump as an extra comparison when it is present.
func dumps() map[string]string {
	d := map[string]string{"generated": generatedDump}
	if p := reference.Find(); p != "" {
		d["reference"] = p
	}
	return d
}

// copyRowCounts counts the data lines of each COPY block of a dump with a plain line scan,
// independently of the seeder's parser.
func copyRowCounts(t *testing.T, path string) map[string]int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	counts := map[string]int64{}
	table := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case table != "" && line == `\.`:
			table = ""
		case table != "":
			counts[table]++
		case strings.HasPrefix(line, "COPY public."):
			table = strings.TrimPrefix(strings.Fields(line)[1], "public.")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return counts
}

func TestDumpLoadsOnceAndRerunIsNoop(t *testing.T) {
	for name, dump := range dumps() {
		t.Run(name, func(t *testing.T) {
			pool, _ := dbtest.Migrated(t, srv)
			s := seed.New(pool, dbtest.Discard)
			ctx := context.Background()

			res, err := s.ApplyFile(ctx, dump, seed.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Skipped || len(res.SHA256) != 64 || (name == "reference" && res.SHA256 != reference.SHA256) {
				t.Fatalf("first run: skipped=%v sha=%s", res.Skipped, res.SHA256)
			}
			want := copyRowCounts(t, dump)
			if want["prices"] == 0 {
				t.Fatalf("no prices counted in %s", dump)
			}
			for _, table := range []string{"regions", "ports", "prices"} {
				if res.Rows[table] != want[table] {
					t.Errorf("reported %s rows = %d, the dump has %d", table, res.Rows[table], want[table])
				}
			}
			before := snap(t, pool)
			if before.regions != want["regions"] || before.ports != want["ports"] || before.prices != want["prices"] || before.history != 1 {
				t.Fatalf("loaded %+v, want %v and 1 history row", before, want)
			}
			t.Logf("%s dump seeded in %s", name, res.Duration)

			res, err = s.ApplyFile(ctx, dump, seed.Options{})
			if err != nil || !res.Skipped {
				t.Fatalf("second run: skipped=%v err=%v, want a no-op", res.Skipped, err)
			}
			if after := snap(t, pool); after != before {
				t.Fatalf("second run changed data: %+v -> %+v", before, after)
			}
			derivedExact(t, pool)
		})
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
	if !errors.Is(err, seed.ErrDataDiffers) {
		t.Fatalf("different dump: err = %v, want ErrDataDiffers", err)
	}
	// The error names the file once and both dumps; what to do about it is the command's to say.
	firstSum, _ := domain.FileSHA256(first)
	secondSum, _ := domain.FileSHA256(second)
	for _, want := range []string{"seed " + second + ": ", firstSum, secondSum} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("different dump: err = %v, want it to contain %q", err, want)
		}
	}
	if !strings.HasPrefix(err.Error(), "seed "+second+": ") || strings.Count(err.Error(), second) != 1 || strings.Contains(err.Error(), "--") {
		t.Errorf("different dump: err = %v, want one \"seed PATH:\" prefix and no command-line advice", err)
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
	derivedExact(t, pool)
	var name string
	if err := pool.QueryRow(ctx, "SELECT name FROM ports WHERE code = 'BBBBB'").Scan(&name); err != nil || name != "Beta\twith tab" {
		t.Fatalf("COPY escapes: name = %q (%v)", name, err)
	}
}

// Broken dumps must leave the database exactly as it was, both when empty and when replacing.
// before is s up to sep, which must occur in it.
func before(s, sep string) string {
	head, _, found := strings.Cut(s, sep)
	if !found {
		panic("before: " + sep + " not found")
	}
	return head
}

func TestBrokenDumpLeavesDatabaseUnchanged(t *testing.T) {
	tests := []struct {
		name, dump, wantErr string
	}{
		{"truncated inside COPY", before(smallDump, "BBBBB\tBeta"), "no end marker"},
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
				path := writeFile(t, tt.dump)
				_, err := s.ApplyFile(ctx, path, seed.Options{Replace: replacing})
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("replacing=%v: err = %v, want it to contain %q", replacing, err, tt.wantErr)
				}
				if prefix := "seed " + path + ": "; !strings.HasPrefix(err.Error(), prefix) || strings.Count(err.Error(), prefix) != 1 {
					t.Errorf("replacing=%v: err = %v, want it to start with %q once", replacing, err, prefix)
				}
				if after := snap(t, pool); after != before {
					t.Fatalf("replacing=%v: data changed: %+v -> %+v", replacing, before, after)
				}
			}
		})
	}
}

func TestConcurrentStartImportsOnce(t *testing.T) {
	dump := generatedDump
	want := copyRowCounts(t, dump)["prices"]
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
	if s := snap(t, pool); s.prices != want || s.history != 1 {
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
			derivedExact(t, target)
		})
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// A seed cancelled in the middle of its COPY into prices (rows already at the server, more to
// come) leaves nothing behind. The test controls what the seeder reads: it holds the seed lock
// while the seeder hashes the dump, then points the path at a FIFO that delivers only the
// first half of the prices and stays open, and cancels once the server has received rows.
func TestCancelledSeedLeavesNothing(t *testing.T) {
	content, err := os.ReadFile(generatedDump)
	if err != nil {
		t.Fatal(err)
	}
	start := bytes.Index(content, []byte("COPY public.prices "))
	end := bytes.Index(content[start:], []byte("\n\\.\n"))
	if start < 0 || end < 0 {
		t.Fatal("no prices COPY block in the generated dump")
	}
	cut := start + end/2
	cut += bytes.IndexByte(content[cut:], '\n') + 1 // a whole row

	dir := t.TempDir()
	path, fifo := filepath.Join(dir, "dump.sql"), filepath.Join(dir, "fifo")
	abs, err := filepath.Abs(generatedDump)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(abs, path); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}

	pool, _ := dbtest.Migrated(t, srv)
	ctx := context.Background()
	lock, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lock.Rollback(ctx) }()
	if _, err := lock.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", batchstore.SeedLock); err != nil {
		t.Fatal(err)
	}

	seedCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	seedErr := make(chan error, 1)
	go func() {
		_, err := seed.New(pool, dbtest.Discard).ApplyFile(seedCtx, path, seed.Options{})
		seedErr <- err
	}()
	waitFor(t, pool, seedErr, "the seeder to hash the dump and wait for the lock",
		"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
	if err := os.Rename(fifo, path); err != nil { // the load now reads the FIFO
		t.Fatal(err)
	}
	release := make(chan struct{})
	defer close(release)
	go func() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		defer f.Close()
		_, _ = f.Write(content[:cut]) // fails with EPIPE once the seeder gives up; that is fine
		<-release
	}()
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	copied := waitFor(t, pool, seedErr, "the COPY into prices to hold rows",
		"SELECT coalesce(max(tuples_processed), 0) FROM pg_stat_progress_copy WHERE relid = 'prices'::regclass")
	total := copyRowCounts(t, generatedDump)["prices"]
	if copied >= total {
		t.Fatalf("the COPY holds %d of %d prices: not mid-stream", copied, total)
	}
	cancel()
	select {
	case err := <-seedErr:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled seed returned %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the seed did not stop after its context was cancelled")
	}
	t.Logf("cancelled with %d of %d prices at the server", copied, total)
	if s := snap(t, pool); s.prices != 0 || s.ports != 0 || s.regions != 0 || s.history != 0 {
		t.Fatalf("cancelled seed left data: %+v", s)
	}
	var daily int64
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM price_daily").Scan(&daily); err != nil || daily != 0 {
		t.Fatalf("price_daily after the cancelled seed: %d rows (%v)", daily, err)
	}
	// The database is usable at once: the same dump loads.
	if _, err := seed.New(pool, dbtest.Discard).ApplyFile(ctx, generatedDump, seed.Options{}); err != nil {
		t.Fatalf("seed after the cancelled one: %v", err)
	}
}

// waitFor polls query (one number) until it is above 0 and returns it; it fails the test if
// the seed ends first or nothing happens within 30 seconds.
func waitFor(t *testing.T, pool *pgxpool.Pool, seedErr <-chan error, what, query string) int64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int64
		if err := pool.QueryRow(context.Background(), query).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return n
		}
		select {
		case err := <-seedErr:
			t.Fatalf("waiting for %s: the seed ended: %v", what, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 30s for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A seed that replaces the data beside a multi-part batch being staged: refused without
// DiscardBatches, leaving the batch whole; with it, the batch fails first (its rows go with the
// replaced data, a report says why) and the seed applies, leaving price_daily exact.
func TestReplaceBesideAStagingBatch(t *testing.T) {
	ctx := context.Background()
	dump := filepath.Join("..", "..", "db", "seed", "rates.sql")
	pool, _ := dbtest.Seeded(t, srv, dump)
	s, err := batchstore.New(pool, batchstore.Options{MaxErrors: 20, MaxBatchDuration: time.Minute, Identity: batchtest.Identity})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT code FROM ports ORDER BY code`)
	if err != nil {
		t.Fatal(err)
	}
	codes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	b := batchtest.Spread(codes, 2_000, 2, 3, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 31)
	reg, err := s.Register(ctx, b.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := s.StagePart(ctx, reg.BatchID, 1, b.Open(20)); err != nil || res.Outcome != batchstore.PartStaged {
		t.Fatalf("stage part 1: %+v, %v", res, err)
	}
	staged := func() (n int64) {
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM prices WHERE batch_id = $1`, reg.BatchID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	seeder := seed.New(pool, dbtest.Discard)
	_, err = seeder.ApplyFile(ctx, dump, seed.Options{Replace: true})
	if !errors.Is(err, seed.ErrBatchesPresent) || !strings.Contains(err.Error(), "1 batches being staged") {
		t.Fatalf("seed --replace beside a staging batch: %v, want ErrBatchesPresent naming it", err)
	}
	if n := staged(); n != 1_000 {
		t.Fatalf("after the refused seed the staging batch has %d rows, want 1000", n)
	}

	if _, err := seeder.ApplyFile(ctx, dump, seed.Options{Replace: true, DiscardBatches: true}); err != nil {
		t.Fatalf("seed --replace --discard-batches beside a staging batch: %v", err)
	}
	var status, report string
	if err := pool.QueryRow(ctx, `SELECT status, report::text FROM batches WHERE id = $1`, reg.BatchID).Scan(&status, &report); err != nil {
		t.Fatal(err)
	}
	if status != "failed" || !strings.Contains(report, "rates seed --replace") {
		t.Fatalf("the staging batch after the seed: %s, %s; want failed with a report", status, report)
	}
	if n := staged(); n != 0 {
		t.Fatalf("%d rows of the failed batch left", n)
	}
	if res, err := s.StagePart(ctx, reg.BatchID, 2, b.Open(20)); err != nil || res.Outcome != batchstore.PartBatchEnded {
		t.Fatalf("the second part after the seed: %+v, %v; want the batch ended", res, err)
	}
	derivedExact(t, pool)
}
