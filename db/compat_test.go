package db_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"rates/internal/batchstore"
	"rates/internal/ingest"
	"rates/internal/ingest/worker"
	"rates/internal/testing/batchtest"
	"rates/internal/testing/dbtest"
	"rates/internal/testing/pgserver"
)

var srv *pgserver.Server

func TestMain(m *testing.M) { os.Exit(pgserver.Main(m, &srv)) }

// previousRelease is what the release before this one sends to the database, copied from its
// source (store, ingest loader, seeder) at the release. During a rolling deploy, and after a
// rollback to it, that release runs against the schema this release migrates to, so every
// statement here must keep working: a migration that drops, renames or tightens what these
// statements use breaks CI instead of the deploy (expand/contract, docs/operations.md). When
// a release ships, this list becomes that release's statements.
var previousRelease = []struct {
	name string
	sql  string
	args []any
}{
	{"generation", `SELECT generation FROM data_generation`, nil},
	{"resolve a code", `
WITH RECURSIVE subtree(slug) AS (
    SELECT slug FROM regions WHERE slug = $1
    UNION
    SELECT r.slug FROM regions r JOIN subtree t ON r.parent_slug = t.slug
)
SELECT CASE
         WHEN EXISTS (SELECT 1 FROM ports WHERE code = upper($1)) THEN ARRAY[upper($1)]
         ELSE ARRAY(SELECT p.code FROM ports p JOIN subtree t ON p.parent_slug = t.slug ORDER BY p.code)
       END,
       EXISTS (SELECT 1 FROM ports WHERE code = upper($1)) OR EXISTS (SELECT 1 FROM subtree)`, []any{"china"}},
	{"daily stats", `
SELECT day, sum(prices)::bigint, sum(price_sum)::bigint
FROM price_daily
WHERE orig_code = ANY($1::text[]) AND dest_code = ANY($2::text[]) AND day BETWEEN $3 AND $4
GROUP BY day`, []any{[]string{"CNSHA"}, []string{"NLRTM"}, day("2026-01-01"), day("2026-01-31")}},
	{"seed: last applied dump", `SELECT sha256 FROM seed_history ORDER BY id DESC LIMIT 1`, nil},
	{"seed: data present", `SELECT EXISTS (SELECT 1 FROM regions) OR EXISTS (SELECT 1 FROM ports)
		OR EXISTS (SELECT 1 FROM prices)`, nil},
	{"seed: constraints and indexes to drop for the load", `
		SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname),
		       format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname, pg_get_constraintdef(oid)),
		       1 AS restore_order
		FROM pg_constraint
		WHERE contype = 'f' AND conrelid = ANY (ARRAY['prices', 'ports', 'regions']::regclass[])
		UNION ALL
		SELECT format('DROP INDEX %s', indexrelid::regclass), pg_get_indexdef(indexrelid), 0
		FROM pg_index
		WHERE indrelid = 'prices'::regclass AND NOT indisunique
		ORDER BY 3, 1`, nil},
	// A batch load of the previous release, statement by statement, in one transaction.
	{"ingest: source lock", `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, []any{"rates.ingest:compat"}},
	{"ingest: find source", `SELECT id, status, rows, bytes, sha256, started_at, duration_ms, report
		FROM batches WHERE source_key = $1`, []any{"compat"}},
	{"ingest: staging table", `CREATE TEMP TABLE ingest_rows (
		line      bigint NOT NULL,
		orig_code text,
		dest_code text,
		day       date,
		price     integer
	) ON COMMIT DROP`, nil},
	{"ingest: stage rows", `INSERT INTO ingest_rows VALUES
		(2, 'CNSHA', 'NLRTM', '2026-01-05', 1000), (3, 'CNSHA', 'NLRTM', '2026-01-05', 1200),
		(4, 'CNSHA', 'NLRTM', '2025-06-01', 900)`, nil},
	{"ingest: count bad rows", `SELECT count(*) FROM ingest_rows t
		LEFT JOIN ports o ON o.code = t.orig_code
		LEFT JOIN ports d ON d.code = t.dest_code
		WHERE o.code IS NULL OR d.code IS NULL OR t.day IS NULL OR t.price IS NULL`, nil},
	{"ingest: unknown codes", `SELECT line, col, code FROM (
		SELECT t.line, 1 AS ord, 'orig_code' AS col, t.orig_code AS code FROM ingest_rows t
		WHERE t.orig_code IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ports p WHERE p.code = t.orig_code)
		UNION ALL
		SELECT t.line, 2, 'dest_code', t.dest_code FROM ingest_rows t
		WHERE t.dest_code IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ports p WHERE p.code = t.dest_code)
	) e ORDER BY line, ord LIMIT $1`, []any{20}},
	{"ingest: lock ports", `SELECT code FROM ports WHERE code = ANY($1::text[]) FOR KEY SHARE`, []any{[]string{"CNSHA", "NLRTM"}}},
	{"ingest: own triggers", `SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'prices'::regclass
			AND NOT tgisinternal AND tgenabled IN ('O', 'R'))
		OR EXISTS (SELECT 1 FROM pg_rewrite WHERE ev_class = 'prices'::regclass AND ev_enabled IN ('O', 'R'))`, nil},
	{"ingest: insert prices", `INSERT INTO prices (orig_code, dest_code, day, price)
		SELECT orig_code, dest_code, day, price FROM ingest_rows ORDER BY orig_code, dest_code, day`, nil},
	{"ingest: record the batch", `INSERT INTO batches (source_key, source_kind, source_name, status, rows, bad_rows,
		bytes, sha256, started_at, finished_at, duration_ms, timings, report)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id`,
		[]any{"compat", "file", "compat.csv", "loaded", 3, 0, 120,
			"0000000000000000000000000000000000000000000000000000000000000000",
			time.Now(), time.Now(), 5, []byte(`{}`), nil}},
}

func day(s string) time.Time {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return d
}

// The previous release's statements run on the schema of this release, and its writes keep
// the derived data exact.
func TestPreviousReleaseRunsOnThisSchema(t *testing.T) {
	pool, _ := dbtest.Seeded(t, srv, "seed/rates.sql")
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	for _, st := range previousRelease {
		if err := run(ctx, tx, st.sql, st.args...); err != nil {
			t.Fatalf("%s: the previous release fails on this schema: %v", st.name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("commit of the previous release's batch: %v", err)
	}

	var diff int64
	if err := pool.QueryRow(ctx, `
		SELECT count(*) FROM (
			(SELECT orig_code, dest_code, day, count(*)::bigint, sum(price)::bigint FROM prices GROUP BY 1, 2, 3
			 EXCEPT SELECT orig_code, dest_code, day, prices, price_sum FROM price_daily)
			UNION ALL
			(SELECT orig_code, dest_code, day, prices, price_sum FROM price_daily
			 EXCEPT SELECT orig_code, dest_code, day, count(*)::bigint, sum(price)::bigint FROM prices GROUP BY 1, 2, 3)
		) d`).Scan(&diff); err != nil {
		t.Fatal(err)
	}
	if diff != 0 {
		t.Fatalf("after the previous release's batch, %d route-days of price_daily differ from prices", diff)
	}
	var n int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM prices WHERE day = '2025-06-01'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the previous release's batch row: %d rows, %v", n, err)
	}
}

// compatCSV is the batch the previous release's statements stage (see "ingest: stage rows"),
// as the CSV a producer sends: its checksum is what either release records for it.
const compatCSV = `orig_code,dest_code,day,price
CNSHA,NLRTM,2026-01-05,1000
CNSHA,NLRTM,2026-01-05,1200
CNSHA,NLRTM,2025-06-01,900
`

// previousReleaseLoad runs the previous release's batch load (the "ingest:" statements of
// previousRelease) in one transaction, as a delivery with the given source key and checksum.
func previousReleaseLoad(ctx context.Context, pool *pgxpool.Pool, key, sha string) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	for _, st := range previousRelease {
		if !strings.HasPrefix(st.name, "ingest:") {
			continue
		}
		args := slices.Clone(st.args)
		switch st.name {
		case "ingest: source lock":
			args[0] = "rates.ingest:" + key
		case "ingest: find source":
			args[0] = key
		case "ingest: record the batch":
			args[0], args[7] = key, sha
		}
		if err := run(ctx, tx, st.sql, args...); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// run runs one statement of previousRelease in tx and reads whatever rows it returns.
func run(ctx context.Context, tx pgx.Tx, sql string, args ...any) error {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	for rows.Next() {
	}
	rows.Close()
	return rows.Err()
}

// During a rollout, and after a rollback, the previous release and this one load the same
// content once between them, whichever comes first (the trigger batches_fill_content_key).
func TestPreviousReleaseAndThisOneLoadContentOnce(t *testing.T) {
	sum := sha256.Sum256([]byte(compatCSV))
	sha := hex.EncodeToString(sum[:])
	loader := func(pool *pgxpool.Pool) *ingest.Loader {
		return ingest.NewLoader(pool, ingest.LoaderOptions{}, dbtest.Discard)
	}
	prices := func(ctx context.Context, pool *pgxpool.Pool) (n int64) {
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM prices WHERE day = '2025-06-01'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	refused := func(t *testing.T, err error) {
		t.Helper()
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "23505" || pgErr.ConstraintName != "batches_content_key_key" {
			t.Fatalf("the previous release loaded content already in the database: %v", err)
		}
	}

	t.Run("previous release first", func(t *testing.T) {
		pool, _ := dbtest.Seeded(t, srv, "seed/rates.sql")
		ctx := context.Background()
		if err := previousReleaseLoad(ctx, pool, "s3:incoming/a.csv", sha); err != nil {
			t.Fatal(err)
		}
		refused(t, previousReleaseLoad(ctx, pool, "s3:incoming/b.csv", sha))
		res, err := loader(pool).Load(ctx, ingest.FileSource("/tmp/c.csv"), bytes.NewReader([]byte(compatCSV)))
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != ingest.StatusDuplicate {
			t.Fatalf("this release after the previous one: %s, want %s", res.Status, ingest.StatusDuplicate)
		}
		if n := prices(ctx, pool); n != 1 {
			t.Fatalf("the batch's row is in prices %d times, want 1", n)
		}
	})

	t.Run("this release first", func(t *testing.T) {
		pool, _ := dbtest.Seeded(t, srv, "seed/rates.sql")
		ctx := context.Background()
		res, err := loader(pool).Load(ctx, ingest.FileSource("/tmp/c.csv"), bytes.NewReader([]byte(compatCSV)))
		if err != nil || res.Status != ingest.StatusLoaded {
			t.Fatalf("this release: %+v, %v", res, err)
		}
		refused(t, previousReleaseLoad(ctx, pool, "s3:incoming/a.csv", sha))
		if n := prices(ctx, pool); n != 1 {
			t.Fatalf("the batch's row is in prices %d times, want 1", n)
		}
		// This release knows the same rows in other bytes (CRLF, a leading zero) too.
		reexport := strings.ReplaceAll(strings.Replace(compatCSV, ",900", ",0900", 1), "\n", "\r\n")
		res, err = loader(pool).Load(ctx, ingest.FileSource("/tmp/d.csv"), strings.NewReader(reexport))
		if err != nil || res.Status != ingest.StatusDuplicate {
			t.Fatalf("this release, the rows re-exported: %+v, %v", res, err)
		}
		// Other content still loads through the previous release, and gets its key.
		other := strings.Repeat("0", 63) + "1"
		if err := previousReleaseLoad(ctx, pool, "s3:incoming/d.csv", other); err != nil {
			t.Fatalf("the previous release, new content: %v", err)
		}
		var key string
		if err := pool.QueryRow(ctx, `SELECT content_key FROM batches WHERE source_key = 's3:incoming/d.csv'`).Scan(&key); err != nil || key != "prices:"+other {
			t.Fatalf("content key of the previous release's batch: %q, %v", key, err)
		}
	})
}

// previousReleaseReplace is the single-file replace of the release before this one (the
// loader of internal/ingest at 288f26e), statement by statement in one transaction: the batch's
// record, its one row staged, every price of its route-day taken out and kept, the row in. The
// arguments of each statement are picked from the route-day's orig_code, dest_code and day and
// the content's checksum, in that order.
var previousReleaseReplace = []struct {
	name string
	sql  string
	args []int
}{
	{"staging table", `CREATE TEMP TABLE ingest_rows (line bigint NOT NULL, orig_code text, dest_code text, day date,
		price integer) ON COMMIT DROP`, nil},
	{"stage rows", `INSERT INTO ingest_rows VALUES (2, $1, $2, $3, 777)`, []int{0, 1, 2}},
	{"record the batch", `INSERT INTO batches (source_key, source_kind, source_name, status, rows, bad_rows,
		bytes, sha256, started_at, finished_at, duration_ms, timings, report, kind, mode, content_key,
		duplicate_of, received_at)
		VALUES (NULL, 'file', 'fix.csv', 'loaded', 1, 0, 40, $1, now(), now(), 0, '{}', NULL, 'prices', 'replace',
			'prices:' || $1, NULL, NULL) RETURNING id`, []int{3}},
	{"take-out lock", `SELECT pg_advisory_xact_lock(hashtextextended('rates.ingest.take-out', 0))`, nil},
	{"displace", `WITH keys AS (SELECT DISTINCT orig_code, dest_code, day FROM ingest_rows),
		moved AS (DELETE FROM prices p USING keys k
			WHERE p.orig_code = k.orig_code AND p.dest_code = k.dest_code AND p.day = k.day
			RETURNING p.orig_code, p.dest_code, p.day, p.price, p.batch_id)
		INSERT INTO prices_displaced (displaced_by, orig_code, dest_code, day, price, batch_id)
		SELECT (SELECT id FROM batches WHERE content_key = 'prices:' || $1), orig_code, dest_code, day, price, batch_id
		FROM moved`, []int{3}},
	{"insert prices", `INSERT INTO prices (orig_code, dest_code, day, price, batch_id)
		SELECT orig_code, dest_code, day, price, (SELECT id FROM batches WHERE content_key = 'prices:' || $1)
		FROM ingest_rows ORDER BY orig_code, dest_code, day`, []int{3}},
}

// previousReleaseReplaceOf runs previousReleaseReplace on one route-day, as content sha.
func previousReleaseReplaceOf(ctx context.Context, pool *pgxpool.Pool, orig, dest string, d time.Time, sha string) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	values := []any{orig, dest, d, sha}
	for _, st := range previousReleaseReplace {
		args := make([]any, len(st.args))
		for i, a := range st.args {
			args[i] = values[a]
		}
		if err := run(ctx, tx, st.sql, args...); err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
	}
	return tx.Commit(ctx)
}

// A batch staging beside the previous release (000037, 000038): the previous release's readers
// see nothing of it, its loads count once, and its replace of a route-day holding staged rows
// fails as a serialisation failure, changing nothing, and goes through once the batch is
// published.
func TestPreviousReleaseBesideAStagingBatch(t *testing.T) {
	pool, _ := dbtest.Seeded(t, srv, "seed/rates.sql")
	ctx := context.Background()
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
	readAll := func() string {
		var out strings.Builder
		for _, st := range previousRelease[:3] { // generation, resolve, daily stats
			args := st.args
			if st.name == "daily stats" {
				args = []any{codes, codes, day("2026-01-01"), day("2026-01-31")}
			}
			rows, err := pool.Query(ctx, st.sql, args...)
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			for rows.Next() {
				v, err := rows.Values()
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintln(&out, v...)
			}
			rows.Close()
		}
		return out.String()
	}
	before := readAll()

	b := batchtest.Spread(codes, 5_000, 2, 1, day("2026-01-01"), 31)
	reg, err := s.Register(ctx, b.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	for p := 1; p <= 2; p++ {
		if res, err := s.StagePart(ctx, reg.BatchID, p, b.Open(20)); err != nil || res.Outcome != batchstore.PartStaged {
			t.Fatalf("part %d: %+v, %v", p, res, err)
		}
	}
	if after := readAll(); after != before {
		t.Fatalf("the previous release's readers see the staged batch:\nbefore %s\nafter %s", before, after)
	}

	sum := sha256.Sum256([]byte(compatCSV))
	if err := previousReleaseLoad(ctx, pool, "s3:incoming/a.csv", hex.EncodeToString(sum[:])); err != nil {
		t.Fatalf("the previous release's load beside a staging batch: %v", err)
	}
	if n := publishedDiff(ctx, t, pool); n != 0 {
		t.Fatalf("after the previous release's load, %d route-days of price_daily differ from the published prices", n)
	}

	var orig, dest string
	var d time.Time
	if err := pool.QueryRow(ctx, `SELECT orig_code, dest_code, day FROM prices WHERE batch_id = $1 LIMIT 1`, reg.BatchID).Scan(&orig, &dest, &d); err != nil {
		t.Fatal(err)
	}
	fix := strings.Repeat("0", 63) + "7"
	err = previousReleaseReplaceOf(ctx, pool, orig, dest, d, fix)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "40001" {
		t.Fatalf("the previous release's replace of a staged route-day: %v, want a serialisation failure", err)
	}
	var staged int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM prices WHERE batch_id = $1`, reg.BatchID).Scan(&staged); err != nil || staged != 5_000 {
		t.Fatalf("the staged batch holds %d rows after the failed replace, want 5000 (%v)", staged, err)
	}
	if _, err := s.Publish(ctx, reg.BatchID); err != nil {
		t.Fatal(err)
	}
	if err := previousReleaseReplaceOf(ctx, pool, orig, dest, d, fix); err != nil {
		t.Fatalf("the previous release's replace, retried after the publish: %v", err)
	}
	if n := publishedDiff(ctx, t, pool); n != 0 {
		t.Fatalf("after the previous release's replace, %d route-days of price_daily differ from the published prices", n)
	}
}

// The previous release's worker on the queue this release fans out on, during a rollout. A part
// message is not an S3 event notification to it (its parser is ParseS3Event, unchanged): it
// fails the message, which comes back to a worker of this release or reaches the dead-letter
// queue, and is never taken for an empty event and deleted. A manifest's event, delivered again
// to it after this release registered the batch, finds the batch recorded as staging (its "find
// source") and writes nothing: the parts this release announced stage and publish the batch,
// once; if none were announced (the registering worker died first), the batch fails at its
// deadline with its staged rows removed, so that nothing of it is lost unsaid or counted twice.
func TestPreviousReleaseWorkerBesideFannedOutBatches(t *testing.T) {
	part := fmt.Sprintf(`{"type":%q,"version":%d,"batch_id":7,"part":1,"bucket":"rates-ingest","manifest":"incoming/manifests/m.json"}`,
		worker.PartMessageType, worker.PartMessageVersion)
	if refs, err := worker.ParseS3Event(part); err == nil {
		t.Fatalf("the previous release reads a part message as an S3 event of %d objects, and would delete it", len(refs))
	}

	pool, _ := dbtest.Seeded(t, srv, "seed/rates.sql")
	ctx := context.Background()
	s, err := batchstore.New(pool, batchstore.Options{MaxErrors: 20, MaxBatchDuration: time.Second, Identity: batchtest.Identity})
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
	b := batchtest.Spread(codes, 2_000, 2, 3, day("2026-01-01"), 31)
	b.Manifest.SourceKind, b.Manifest.SourceKey = "s3", "s3://rates-ingest/incoming/manifests/m.json?etag=e"
	reg, err := s.Register(ctx, b.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := s.StagePart(ctx, reg.BatchID, 1, b.Open(20)); err != nil || res.Outcome != batchstore.PartStaged {
		t.Fatalf("part 1: %+v, %v", res, err)
	}
	var found int
	var status string
	for _, st := range previousRelease {
		if st.name == "ingest: find source" {
			if err := pool.QueryRow(ctx, `SELECT count(*), min(status) FROM (`+st.sql+`) f`, b.Manifest.SourceKey).Scan(&found, &status); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
		}
	}
	if found != 1 || status != "staging" {
		t.Fatalf("the previous release finds %d batches (%s) for the manifest's key, want the staging one", found, status)
	}
	time.Sleep(1100 * time.Millisecond)
	ended, err := s.Sweep(ctx)
	if err != nil || len(ended) != 1 || ended[0].Status != batchstore.StatusFailed || ended[0].RemovedRows == 0 {
		t.Fatalf("sweep past the deadline: %+v, %v, want the batch failed with its staged rows removed", ended, err)
	}
	var left int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM prices WHERE batch_id = $1`, reg.BatchID).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d rows of the failed batch left (%v), want none", left, err)
	}
	if n := publishedDiff(ctx, t, pool); n != 0 {
		t.Fatalf("after the failed batch, %d route-days of price_daily differ from the published prices", n)
	}
}
