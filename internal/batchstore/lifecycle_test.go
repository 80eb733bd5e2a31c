package batchstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"rates/internal/batchstore"
	"rates/internal/ingest"
	"rates/internal/testing/batchtest"
	"rates/internal/testing/dbtest"
)

// routeDayBatch is a batch of parts parts whose rows fall on the given route-days, each route-day
// getting perDay prices.
func routeDayBatch(name string, parts int, routeDays [][3]string, perDay int) batchtest.Batch {
	var b batchtest.Batch
	sum := sha256.Sum256([]byte(name))
	b.Manifest = batchstore.Manifest{SourceKind: "file", SourceName: name, Mode: "append", SHA256: hex.EncodeToString(sum[:])}
	csv := make([]strings.Builder, parts)
	for i := range csv {
		csv[i].WriteString(batchtest.Header + "\n")
	}
	n := 0
	for _, rd := range routeDays {
		for j := range perDay {
			fmt.Fprintf(&csv[n%parts], "%s,%s,%s,%d\n", rd[0], rd[1], rd[2], 500+n%700+j)
			n++
		}
	}
	for i := range csv {
		b.AddPart(fmt.Sprintf("%s-%d.csv", name, i+1), []byte(csv[i].String()))
	}
	return b
}

func routeDays(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) [][3]string {
	t.Helper()
	rows, err := pool.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([3]string, error) {
		var rd [3]string
		var day time.Time
		err := r.Scan(&rd[0], &rd[1], &day)
		rd[2] = day.Format(time.DateOnly)
		return rd, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func loadAll(t *testing.T, s *batchstore.Store, b batchtest.Batch) int64 {
	t.Helper()
	id := register(t, s, b)
	stageAll(t, s, id, b, 2)
	return id
}

// A multi-part replace takes out, on its route-days, every published price of other batches
// (the seed's and an earlier batch's), and nothing of a batch still staging there or of other
// route-days; reverting it restores the tables exactly.
func TestReplaceTakesOutWhatIsPublishedOnItsRouteDaysAndRevertRestores(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := seeded(t)
	s := newStore(t, pool, time.Minute)
	earlier := spread(t, pool, 8_000, 2, 11)
	publish(t, s, loadAll(t, s, earlier))

	seedDays := routeDays(t, pool, `SELECT DISTINCT orig_code, dest_code, day FROM prices ORDER BY 1, 2, 3 LIMIT 150`)
	earlierDays := routeDays(t, pool, `SELECT DISTINCT p.orig_code, p.dest_code, p.day FROM prices p
		JOIN batches b ON b.id = p.batch_id WHERE b.source_name = 'spread-11' ORDER BY 1, 2, 3 LIMIT 150`)
	staging := routeDayBatch("staging", 2, append(seedDays[:20:20], earlierDays[:20]...), 2)
	stagingID := loadAll(t, s, staging)

	fp := fingerprint(t, pool)
	replace := routeDayBatch("replace", 3, append(seedDays, earlierDays...), 3)
	replace.Manifest.Mode = "replace"
	replaceID := register(t, s, replace)
	stageAll(t, s, replaceID, replace, 3)
	keysOf := func(id int64) string {
		return `(SELECT DISTINCT orig_code, dest_code, day FROM prices WHERE batch_id = ` + fmt.Sprint(id) + `)`
	}
	want := count(t, pool, `SELECT count(*) FROM published_prices p WHERE (orig_code, dest_code, day) IN `+keysOf(replaceID))
	outside := count(t, pool, `SELECT count(*) FROM published_prices p WHERE (orig_code, dest_code, day) NOT IN `+keysOf(replaceID))
	stagedRows := count(t, pool, `SELECT count(*) FROM prices WHERE batch_id = $1`, stagingID)

	res := publish(t, s, replaceID)
	if res.Status != batchstore.StatusLoaded || res.DisplacedRows != want || want == 0 {
		t.Fatalf("replace: %+v; want %d rows displaced", res, want)
	}
	if n := count(t, pool, `SELECT count(*) FROM published_prices WHERE batch_id IS DISTINCT FROM $1 AND (orig_code, dest_code, day) IN `+keysOf(replaceID), replaceID); n != 0 {
		t.Errorf("%d published prices of other batches left on the replace's route-days", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM published_prices WHERE (orig_code, dest_code, day) NOT IN `+keysOf(replaceID)); n != outside {
		t.Errorf("outside the replace's route-days: %d prices, %d before", n, outside)
	}
	if n := count(t, pool, `SELECT count(*) FROM prices WHERE batch_id = $1`, stagingID); n != stagedRows {
		t.Errorf("the batch still staging has %d rows, %d before the replace", n, stagedRows)
	}
	if n := count(t, pool, `SELECT count(*) FROM prices_displaced WHERE displaced_by = $1`, replaceID); n != want {
		t.Errorf("%d rows kept for a revert, want %d", n, want)
	}

	rev, err := ingest.NewLoader(pool, ingest.LoaderOptions{}, dbtest.Discard).Revert(ctx, replaceID)
	if err != nil || rev.Status != "reverted" {
		t.Fatalf("revert: %+v, %v", rev, err)
	}
	if fingerprint(t, pool) != fp {
		t.Error("the revert of the multi-part replace did not restore the tables exactly")
	}
	if res := publish(t, s, stagingID); res.Status != batchstore.StatusLoaded {
		t.Errorf("the batch that was staging: %+v", res)
	}
}

// Reverting a multi-part append restores prices and price_daily exactly.
func TestRevertOfAMultiPartAppendRestoresExactly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := seeded(t)
	s := newStore(t, pool, time.Minute)
	fp, gen := fingerprint(t, pool), generation(t, pool)
	b := spread(t, pool, 12_000, 4, 12)
	id := loadAll(t, s, b)
	publish(t, s, id)
	rev, err := ingest.NewLoader(pool, ingest.LoaderOptions{}, dbtest.Discard).Revert(ctx, id)
	if err != nil || rev.RemovedRows != 12_000 {
		t.Fatalf("revert: %+v, %v", rev, err)
	}
	if fingerprint(t, pool) != fp {
		t.Error("the revert did not restore the tables exactly")
	}
	if generation(t, pool) <= gen {
		t.Error("the data generation did not move")
	}
}

// No other writer takes staged rows out of prices behind their batch: a DELETE, an UPDATE and a
// TRUNCATE fail with a serialisation failure (retry later), leaving the batch whole; a
// single-file replace of one of their route-days reads the published prices only and leaves
// them; once the batch is published the same replace takes them out.
func TestOtherWritersCannotTakeStagedRowsOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := seeded(t)
	s := newStore(t, pool, time.Minute)
	b := spread(t, pool, 4_000, 2, 13)
	id := loadAll(t, s, b)
	rd := routeDays(t, pool, `SELECT orig_code, dest_code, day FROM prices WHERE batch_id = $1 ORDER BY 1, 2, 3 LIMIT 1`, id)[0]
	replaceCSV := []byte(batchtest.Header + "\n" + strings.Join(rd[:], ",") + ",777\n")
	loader := ingest.NewLoader(pool, ingest.LoaderOptions{}, dbtest.Discard)
	src := ingest.FileSource("fix.csv")
	src.Mode = ingest.ModeReplace

	retry := func(what string, err error) {
		t.Helper()
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "40001" {
			t.Errorf("%s of staged rows: %v, want a serialisation failure", what, err)
		}
	}
	_, err := pool.Exec(ctx, `DELETE FROM prices WHERE orig_code = $1 AND dest_code = $2 AND day = $3`, rd[0], rd[1], rd[2])
	retry("DELETE", err)
	_, err = pool.Exec(ctx, `UPDATE prices SET price = price + 1 WHERE batch_id = $1`, id)
	retry("UPDATE", err)
	_, err = pool.Exec(ctx, `TRUNCATE prices`)
	retry("TRUNCATE", err)
	if res, err := loader.Load(ctx, src, bytes.NewReader(replaceCSV)); err != nil || res.DisplacedRows != 0 {
		t.Errorf("a single-file replace of a staged route-day: %+v, %v; want loaded, nothing displaced", res, err)
	}
	if n := count(t, pool, `SELECT count(*) FROM prices WHERE batch_id = $1`, id); n != 4_000 {
		t.Fatalf("the staged batch has %d rows left, want 4000", n)
	}

	publish(t, s, id)
	src.Name = "fix-again.csv"
	res, err := loader.Load(ctx, src, bytes.NewReader([]byte(batchtest.Header+"\n"+strings.Join(rd[:], ",")+",778\n")))
	if err != nil || res.Status != ingest.StatusLoaded || res.DisplacedRows == 0 {
		t.Fatalf("the replace after the publish: %+v, %v", res, err)
	}
}

// The same rows sent again, in other parts and another order, are a duplicate of the batch that
// holds them: the second batch's staged rows go.
func TestSameRowsInOtherPartsAreADuplicate(t *testing.T) {
	t.Parallel()
	pool := seeded(t)
	s := newStore(t, pool, time.Minute)
	first := spread(t, pool, 6_000, 3, 14)
	firstID := loadAll(t, s, first)
	publish(t, s, firstID)
	fp := fingerprint(t, pool)

	var lines []string
	for _, p := range first.Parts {
		lines = append(lines, strings.Split(strings.TrimSuffix(string(p), "\n"), "\n")[1:]...)
	}
	var again batchtest.Batch
	again.Manifest = first.Manifest
	again.Manifest.SHA256 = strings.Repeat("0", 63) + "2"
	again.Manifest.Parts = nil
	for i := range 2 { // two parts, rows reversed
		var csv strings.Builder
		csv.WriteString(batchtest.Header + "\n")
		for j := len(lines) - 1 - i; j >= 0; j -= 2 {
			csv.WriteString(lines[j] + "\n")
		}
		again.AddPart(fmt.Sprintf("again-%d.csv", i), []byte(csv.String()))
	}
	id := loadAll(t, s, again)
	res := publish(t, s, id)
	if res.Status != batchstore.StatusDuplicate || res.DuplicateOf != firstID {
		t.Fatalf("publish of the same rows: %+v; want a duplicate of %d", res, firstID)
	}
	if fingerprint(t, pool) != fp {
		t.Error("the duplicate left rows behind")
	}
}

// A batch whose parts do not all arrive within its deadline fails, with a report naming them,
// and nothing of it is left: when a loader next touches it, or when any loader sweeps.
func TestBatchPastItsDeadlineFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := seeded(t)
	const deadline = 1500 * time.Millisecond
	s := newStore(t, pool, deadline)
	fp := fingerprint(t, pool)
	b := spread(t, pool, 3_000, 3, 15)
	touched := register(t, s, b)
	b2 := spread(t, pool, 3_000, 3, 16)
	swept := register(t, s, b2)
	for _, id := range []int64{touched, swept} {
		if res, err := s.StagePart(ctx, id, 1, b.Open(maxErrors)); err != nil {
			t.Fatal(err)
		} else if id == touched && res.Outcome != batchstore.PartStaged {
			t.Fatalf("part 1: %+v", res)
		}
	}
	time.Sleep(deadline)
	res, err := s.StagePart(ctx, touched, 2, b.Open(maxErrors))
	if err != nil || res.Outcome != batchstore.PartBatchEnded || res.BatchStatus != batchstore.StatusFailed {
		t.Fatalf("a part after the deadline: %+v, %v; want the batch failed", res, err)
	}
	ended, err := s.Sweep(ctx)
	if err != nil || len(ended) != 1 || ended[0].BatchID != swept || ended[0].Status != batchstore.StatusFailed {
		t.Fatalf("sweep: %+v, %v; want batch %d failed", ended, err, swept)
	}
	var rep batchstore.Report
	if err := pool.QueryRow(ctx, `SELECT report FROM batches WHERE id = $1 AND status = 'failed'`, touched).Scan(&rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0].Reason, "part-02.csv, part-03.csv (2 of 3)") {
		t.Errorf("report: %+v", rep)
	}
	if fingerprint(t, pool) != fp || count(t, pool, `SELECT count(*) FROM staged_daily`) != 0 {
		t.Error("the failed batches left rows behind")
	}
}

// When a server start has emptied staged_daily (UNLOGGED), wholly or for the parts staged
// before it, the publish sums the staged rows again and price_daily stays exact.
func TestPublishRecountsAggregatesLostToAServerStart(t *testing.T) {
	t.Parallel()
	pool := seeded(t)
	s := newStore(t, pool, time.Minute)
	for _, lost := range []string{"all", "part 2"} {
		b := spread(t, pool, 7_000, 3, uint64(17+len(lost)))
		id := loadAll(t, s, b)
		sql := `DELETE FROM staged_daily WHERE batch_id = $1`
		if lost != "all" {
			sql += ` AND part = 2`
		}
		if _, err := pool.Exec(context.Background(), sql, id); err != nil {
			t.Fatal(err)
		}
		res := publish(t, s, id)
		if !res.Recounted || res.Rows != 7_000 {
			t.Fatalf("%s lost: publish %+v; want 7000 rows, recounted", lost, res)
		}
	}
	b := spread(t, pool, 2_000, 2, 20)
	if res := publish(t, s, loadAll(t, s, b)); res.Recounted {
		t.Errorf("a batch with its aggregates whole was recounted: %+v", res)
	}
}

// A loader connected as a member of rates_loader, without the superuser's right to turn the
// foreign keys' row checks off, stages, rejects and publishes.
func TestStagingAsTheLoaderRole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := seeded(t)
	role := fmt.Sprintf("loader_%d", time.Now().UnixNano()%1_000_000_000)
	for _, sql := range []string{"CREATE ROLE " + role + " LOGIN", "GRANT rates_loader TO " + role} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	u, err := url.Parse(pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	rolePool, err := pgxpool.New(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer rolePool.Close()
	s := newStore(t, rolePool, time.Minute)
	b := spread(t, pool, 3_000, 2, 18)
	id := loadAll(t, s, b)
	var fkChecks int64
	if err := pool.QueryRow(ctx, `SELECT sum((timings->>'row_fk_checks')::bigint) FROM batch_parts WHERE batch_id = $1`, id).Scan(&fkChecks); err != nil {
		t.Fatal(err)
	}
	if fkChecks != 9_000 {
		t.Errorf("%d foreign key row checks, want 9000 (three per row)", fkChecks)
	}
	if res := publish(t, s, id); res.Status != batchstore.StatusLoaded {
		t.Fatalf("publish: %+v", res)
	}
	bad := withPart(spread(t, pool, 2_000, 2, 19), 1, batchtest.Header+"\nAAAAA,BBBBB,2026-01-01,1\n")
	badID := register(t, s, bad)
	for p := 1; p <= 2; p++ {
		if _, err := s.StagePart(ctx, badID, p, bad.Open(maxErrors)); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM batches WHERE id = $1 AND status = 'rejected'`, badID); n != 1 {
		t.Error("the bad batch was not rejected")
	}
}

// withoutCodes is a part whose parser held no list of its port codes (too many to hold).
type withoutCodes struct{ batchstore.PartRows }

func (w withoutCodes) Checked() (batchstore.Checked, error) {
	c, err := w.PartRows.Checked()
	c.Codes = nil
	return c, err
}

// Without the list of its codes a part is checked over its staged rows: an unknown port is
// reported by line, and a sound part is staged with the foreign keys' row checks.
func TestPartWithoutItsCodeListIsCheckedInSQL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := seeded(t)
	s := newStore(t, pool, time.Minute)
	b := spread(t, pool, 2_000, 2, 24)
	b = withPart(b, 1, string(b.Parts[1])+"AEJEA,QQQQQ,2026-01-03,500\n")
	open := func(ctx context.Context, key string) (batchstore.PartRows, error) {
		rows, err := b.Open(maxErrors)(ctx, key)
		return withoutCodes{rows}, err
	}
	id := register(t, s, b)
	first, err := s.StagePart(ctx, id, 1, open)
	if err != nil || first.Outcome != batchstore.PartStaged || first.Timings["row_fk_checks"] != 3*first.Rows {
		t.Fatalf("part 1: %+v, %v; want staged with the row checks", first, err)
	}
	second, err := s.StagePart(ctx, id, 2, open)
	if err != nil || second.Outcome != batchstore.PartBad || second.BatchStatus != batchstore.StatusRejected {
		t.Fatalf("part 2: %+v, %v; want bad, the batch rejected", second, err)
	}
	line := int64(strings.Count(string(b.Parts[1]), "\n"))
	if p := second.Report.Problems; len(p) != 1 || p[0].Line != line || p[0].Column != "dest_code" || !strings.Contains(p[0].Reason, "QQQQQ") {
		t.Errorf("report: %+v; want QQQQQ on line %d", second.Report, line)
	}
}

// StageParts settles every pending part with n loaders; after a failure a second call
// settles what is left, and a bad part ends with the batch rejected.
func TestStageParts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := seeded(t)
	s := newStore(t, pool, time.Minute)
	b := spread(t, pool, 8_000, 8, 26)
	id := register(t, s, b)
	failing := func(ctx context.Context, key string) (batchstore.PartRows, error) {
		if key == "part-03.csv" {
			return nil, errors.New("S3 is down")
		}
		return b.Open(maxErrors)(ctx, key)
	}
	if _, err := s.StageParts(ctx, id, 3, failing); err == nil || !strings.Contains(err.Error(), "S3 is down") {
		t.Fatalf("staging with a part that cannot be read: %v", err)
	}
	got, err := s.StageParts(ctx, id, 3, b.Open(maxErrors))
	if err != nil || got.BatchStatus != batchstore.StatusStaging || got.Timings["copy_ms"] < 0 {
		t.Fatalf("second run: %+v, %v", got, err)
	}
	parts, err := s.Parts(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		if p.Status != "staged" {
			t.Errorf("part %d is %s after the second run", p.Part, p.Status)
		}
	}
	if again, err := s.StageParts(ctx, id, 3, b.Open(maxErrors)); err != nil || len(again.Outcomes) != 0 {
		t.Errorf("a third run: %+v, %v; want nothing to do", again, err)
	}
	publish(t, s, id)

	bad := withPart(spread(t, pool, 4_000, 4, 27), 2, batchtest.Header+"\nAAAAA,BBBBB,2026-01-01,1\n")
	badID := register(t, s, bad)
	res, err := s.StageParts(ctx, badID, 2, bad.Open(maxErrors))
	if err != nil || res.BatchStatus != batchstore.StatusRejected || res.Outcomes[batchstore.PartBad] != 1 {
		t.Errorf("a batch with a bad part: %+v, %v", res, err)
	}
}

// A multi-part batch and a single file with the same rows are one content, whichever comes
// first: the digest combined from the parts is the single file's (batches.rows_key).
func TestSameRowsAsASingleFileAreOneContent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := seeded(t)
	s := newStore(t, pool, time.Minute)
	loader := ingest.NewLoader(pool, ingest.LoaderOptions{}, dbtest.Discard)
	single := func(b batchtest.Batch) []byte {
		var all bytes.Buffer
		all.WriteString(batchtest.Header + "\n")
		for i := len(b.Parts) - 1; i >= 0; i-- { // another order of the same rows
			all.Write(bytes.TrimPrefix(b.Parts[i], []byte(batchtest.Header+"\n")))
		}
		return all.Bytes()
	}

	first := spread(t, pool, 3_000, 3, 28)
	res, err := loader.Load(ctx, ingest.FileSource("single.csv"), bytes.NewReader(single(first)))
	if err != nil || res.Status != ingest.StatusLoaded {
		t.Fatalf("single file: %+v, %v", res, err)
	}
	pub := publish(t, s, loadAll(t, s, first))
	if pub.Status != batchstore.StatusDuplicate || pub.DuplicateOf != res.BatchID || pub.RowsDigest != res.RowsDigest {
		t.Errorf("parts after the single file: %+v; want a duplicate of %d with digest %s", pub, res.BatchID, res.RowsDigest)
	}

	second := spread(t, pool, 3_000, 3, 29)
	pub = publish(t, s, loadAll(t, s, second))
	if pub.Status != batchstore.StatusLoaded {
		t.Fatalf("parts: %+v", pub)
	}
	res, err = loader.Load(ctx, ingest.FileSource("single-2.csv"), bytes.NewReader(single(second)))
	if err != nil || res.Status != ingest.StatusDuplicate || res.BatchID != pub.BatchID {
		t.Errorf("single file after the parts: %+v, %v; want a duplicate of %d", res, err, pub.BatchID)
	}
}
