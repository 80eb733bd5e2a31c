package ingest

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"rates/internal/domain"
	"rates/internal/ingest/csvbatch"
)

// Reference data (ports and regions) arrives as small CSV batches that are upserted, all or
// nothing: a port or region is added or renamed or moved, never removed by a batch.
const (
	PortsHeader   = "code,name,parent_slug"
	RegionsHeader = "slug,name,parent_slug"

	// maxReferenceRows bounds a reference-data batch, which is held in memory: far more ports
	// and regions than exist.
	maxReferenceRows = 100_000
	maxNameLength    = 200
)

// referenceRow is one port or region of a batch. parent is "" for a root region.
type referenceRow struct {
	line              int64
	key, name, parent string
}

// referenceSet is a parsed reference-data batch.
type referenceSet struct {
	rows     []referenceRow
	badRows  int64
	errs     []csvbatch.RowError
	fatal    bool
	tooLarge bool // past csvbatch.Limits.MaxBytes
	// digest counts every good row as key, name and parent, tab-separated (names hold no
	// control characters).
	digest csvbatch.RowDigest
}

func checkName(s string) string {
	switch {
	case strings.TrimSpace(s) == "":
		return "name is empty"
	case !utf8.ValidString(s):
		return "name is not valid UTF-8"
	case utf8.RuneCountInString(s) > maxNameLength:
		return fmt.Sprintf("name is longer than %d characters", maxNameLength)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return "name contains a control character"
	}
	return ""
}

// parseReference reads a ports or regions batch, which must bound its records (a csvbatch.Reader
// does), and checks every row's shape.
func parseReference(kind DataKind, r io.Reader, maxErrors int, sourceErr func() error) (*referenceSet, error) {
	header := PortsHeader
	if kind == DataRegions {
		header = RegionsHeader
	}
	set := &referenceSet{}
	bad := func(e csvbatch.RowError) {
		if len(set.errs) < maxErrors {
			set.errs = append(set.errs, e)
		}
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	seen := map[string]int64{}
	var buf []byte
	for first := true; ; first = false {
		rec, err := cr.Read()
		if err != nil {
			done, err := set.readFailed(err, first, header, sourceErr, bad)
			if err != nil {
				return nil, err
			}
			if done {
				return set, nil
			}
			continue
		}
		line, _ := cr.FieldPos(0)
		if first {
			rec[0] = strings.TrimPrefix(rec[0], "\uFEFF")
			if strings.Join(rec, ",") != header {
				bad(csvbatch.RowError{Line: int64(line), Reason: fmt.Sprintf("header must be %s, got %s", header, csvbatch.Quote(strings.Join(rec, ",")))})
				set.fatal = true
				return set, nil
			}
			continue
		}
		if len(set.rows)+int(set.badRows) >= maxReferenceRows {
			bad(csvbatch.RowError{Line: int64(line), Reason: fmt.Sprintf("a %s batch holds at most %d rows", kind, maxReferenceRows)})
			set.fatal = true
			set.badRows++
			return set, nil
		}
		row, ok := checkReferenceRow(kind, int64(line), rec, seen, bad)
		if !ok {
			set.badRows++
			continue
		}
		set.rows = append(set.rows, row)
		buf = append(append(append(append(append(append(buf[:0], row.key...), '\t'), row.name...), '\t'), row.parent...), '\n')
		set.digest.Add(buf)
	}
}

// readFailed handles err from the CSV reader: EOF or a problem of the batch, recorded in set,
// ends the reading (done); a source error is returned. A record that is not valid CSV is a bad
// row, and reading goes on.
func (set *referenceSet) readFailed(err error, first bool, header string, sourceErr func() error, bad func(csvbatch.RowError)) (done bool, _ error) {
	if errors.Is(err, io.EOF) {
		switch {
		case first:
			bad(csvbatch.RowError{Line: 1, Reason: "batch is empty: expected the header " + header})
			set.fatal = true
		case len(set.rows) == 0 && set.badRows == 0:
			bad(csvbatch.RowError{Line: 2, Reason: "batch has no rows: expected rows after the header " + header})
			set.fatal = true
		}
		return true, nil
	}
	if srcErr := sourceErr(); srcErr != nil {
		return true, srcErr
	}
	if e, ok := csvbatch.LimitProblem(err); ok {
		bad(e)
		set.fatal, set.tooLarge = true, e.Line == 0
		return true, nil
	}
	var perr *csv.ParseError
	if errors.As(err, &perr) && !first {
		set.badRows++
		bad(csvbatch.RowError{Line: int64(perr.StartLine), Reason: "not valid CSV: " + perr.Err.Error()})
		return false, nil
	}
	bad(csvbatch.RowError{Line: 1, Reason: "cannot read the batch: " + err.Error()})
	set.fatal = true
	return true, nil
}

func checkReferenceRow(kind DataKind, line int64, rec []string, seen map[string]int64, bad func(csvbatch.RowError)) (referenceRow, bool) {
	keyCol := "code"
	if kind == DataRegions {
		keyCol = "slug"
	}
	if len(rec) != 3 {
		bad(csvbatch.RowError{Line: line, Reason: fmt.Sprintf("expected 3 fields, got %d", len(rec))})
		return referenceRow{}, false
	}
	row := referenceRow{line: line, key: rec[0], name: rec[1], parent: rec[2]}
	ok := true
	if kind == DataPorts && !domain.IsPortCode(row.key) {
		bad(csvbatch.RowError{Line: line, Column: keyCol, Reason: csvbatch.Quote(row.key) + " is not a port code (5 upper-case letters or digits)"})
		ok = false
	}
	if kind == DataRegions && !domain.IsRegionSlug(row.key) {
		bad(csvbatch.RowError{Line: line, Column: keyCol, Reason: csvbatch.Quote(row.key) + " is not a region slug (lower-case letters, digits, _)"})
		ok = false
	}
	if reason := checkName(row.name); reason != "" {
		bad(csvbatch.RowError{Line: line, Column: "name", Reason: reason})
		ok = false
	}
	switch {
	case row.parent == "" && kind == DataPorts:
		bad(csvbatch.RowError{Line: line, Column: "parent_slug", Reason: "a port needs a parent region"})
		ok = false
	case row.parent != "" && !domain.IsRegionSlug(row.parent):
		bad(csvbatch.RowError{Line: line, Column: "parent_slug", Reason: csvbatch.Quote(row.parent) + " is not a region slug (lower-case letters, digits, _)"})
		ok = false
	case kind == DataRegions && row.parent == row.key:
		bad(csvbatch.RowError{Line: line, Column: "parent_slug", Reason: "a region cannot be its own parent"})
		ok = false
	}
	if prev, dup := seen[row.key]; dup {
		bad(csvbatch.RowError{Line: line, Column: keyCol, Reason: fmt.Sprintf("%s %s is already on line %d", keyCol, csvbatch.Quote(row.key), prev)})
		ok = false
	} else if ok {
		seen[row.key] = line
	}
	return row, ok
}

const (
	createReferenceStagingSQL = `CREATE TEMP TABLE ingest_reference (
		line        bigint NOT NULL,
		key         text   NOT NULL,
		name        text   NOT NULL,
		parent_slug text
	) ON COMMIT DROP`

	// unknownParentsSQL lists rows whose parent region is neither in the database nor (for
	// regions) in the batch.
	unknownParentsSQL = `SELECT t.line, t.parent_slug FROM ingest_reference t
		WHERE t.parent_slug IS NOT NULL
		  AND NOT EXISTS (SELECT 1 FROM regions r WHERE r.slug = t.parent_slug)
		  AND ($1 = 'ports' OR NOT EXISTS (SELECT 1 FROM ingest_reference b WHERE b.key = t.parent_slug))
		ORDER BY t.line LIMIT $2`

	// regionCyclesSQL walks up from every region of the batch through the tree as it would be
	// after the upsert; a walk that comes back to its start is a cycle. The tree in the database
	// has none, so every cycle goes through a region of the batch. The depth bound stops walks
	// that enter a cycle elsewhere in the batch (found from that region's own start).
	regionCyclesSQL = `WITH RECURSIVE merged AS (
			SELECT slug, parent_slug FROM regions WHERE slug NOT IN (SELECT key FROM ingest_reference)
			UNION ALL SELECT key, parent_slug FROM ingest_reference
		), walk (start, line, slug, depth) AS (
			SELECT key, line, parent_slug, 1 FROM ingest_reference WHERE parent_slug IS NOT NULL
			UNION ALL
			SELECT w.start, w.line, m.parent_slug, w.depth + 1 FROM walk w JOIN merged m ON m.slug = w.slug
			WHERE m.parent_slug IS NOT NULL AND w.slug <> w.start
			  AND w.depth <= (SELECT count(*) FROM merged)
		)
		SELECT line, start FROM walk WHERE slug = start ORDER BY line LIMIT $1`

	recordPortChangesSQL = `INSERT INTO reference_changes (batch_id, kind, key, existed, old_name, old_parent_slug)
		SELECT $1, 'ports', t.key, p.code IS NOT NULL, p.name, p.parent_slug
		FROM ingest_reference t LEFT JOIN ports p ON p.code = t.key`
	upsertPortsSQL = `INSERT INTO ports (code, name, parent_slug)
		SELECT key, name, parent_slug FROM ingest_reference ORDER BY key
		ON CONFLICT (code) DO UPDATE SET name = excluded.name, parent_slug = excluded.parent_slug`

	recordRegionChangesSQL = `INSERT INTO reference_changes (batch_id, kind, key, existed, old_name, old_parent_slug)
		SELECT $1, 'regions', t.key, r.slug IS NOT NULL, r.name, r.parent_slug
		FROM ingest_reference t LEFT JOIN regions r ON r.slug = t.key`
	upsertRegionsSQL = `INSERT INTO regions (slug, name, parent_slug)
		SELECT key, name, parent_slug FROM ingest_reference ORDER BY key
		ON CONFLICT (slug) DO UPDATE SET name = excluded.name, parent_slug = excluded.parent_slug`
)

// stageReference parses a ports or regions batch and copies its well-formed rows into a
// staging table for the checks against the database.
func (l *Loader) stageReference(ctx context.Context, tx pgx.Tx, kind DataKind, in *csvbatch.Reader) (staged, error) {
	set, err := parseReference(kind, in, l.maxErrors, in.SourceErr)
	if err != nil {
		return staged{}, &SourceError{Err: err}
	}
	if srcErr := in.SourceErr(); srcErr != nil {
		return staged{}, &SourceError{Err: srcErr}
	}
	if _, err := tx.Exec(ctx, createReferenceStagingSQL); err != nil {
		return staged{}, fmt.Errorf("create staging table: %w", err)
	}
	rows := make([][]any, len(set.rows))
	for i, r := range set.rows {
		rows[i] = []any{r.line, r.key, r.name, nullIfEmpty(r.parent)}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ingest_reference"}, []string{"line", "key", "name", "parent_slug"},
		pgx.CopyFromRows(rows)); err != nil {
		return staged{}, fmt.Errorf("copy into staging table: %w", err)
	}
	return staged{rows: int64(len(set.rows)) + set.badRows, digest: set.digest, ref: set}, nil
}

// checkReference returns nil when the batch can be upserted, or the report of a rejection.
func (l *Loader) checkReference(ctx context.Context, tx pgx.Tx, kind DataKind, set *referenceSet) (*Report, error) {
	if set.fatal || set.badRows > 0 {
		return &Report{BadRows: set.badRows, Errors: set.errs}, nil
	}
	errs, err := lineErrors(ctx, tx, "check parent regions", func(name string) string { return "unknown region " + csvbatch.Quote(name) },
		unknownParentsSQL, string(kind), l.maxErrors)
	if err != nil {
		return nil, err
	}
	if kind == DataRegions && len(errs) == 0 {
		errs, err = lineErrors(ctx, tx, "check the region tree for cycles",
			func(slug string) string {
				return "region " + csvbatch.Quote(slug) + " would be its own ancestor (a cycle in the region tree)"
			},
			regionCyclesSQL, l.maxErrors)
		if err != nil {
			return nil, err
		}
	}
	if len(errs) == 0 {
		return nil, nil
	}
	bad := map[int64]bool{}
	for _, e := range errs {
		bad[e.Line] = true
	}
	slices.SortStableFunc(errs, func(a, b csvbatch.RowError) int { return int(a.Line - b.Line) })
	return &Report{BadRows: int64(len(bad)), Errors: errs}, nil
}

// lineErrors runs query, whose rows are a CSV line and a name, and returns them as problems of
// the parent_slug column, reason saying what is wrong with the name; what names the check.
func lineErrors(ctx context.Context, tx pgx.Tx, what string, reason func(name string) string, query string, args ...any) ([]csvbatch.RowError, error) {
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	errs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (csvbatch.RowError, error) {
		e := csvbatch.RowError{Column: "parent_slug"}
		var name string
		err := r.Scan(&e.Line, &name)
		e.Reason = reason(name)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return errs, nil
}

// applyReference records what the batch changes (for a revert) and upserts it.
func (l *Loader) applyReference(ctx context.Context, tx pgx.Tx, kind DataKind, batchID int64) error {
	record, upsert := recordPortChangesSQL, upsertPortsSQL
	if kind == DataRegions {
		record, upsert = recordRegionChangesSQL, upsertRegionsSQL
		// Parents may come later in the same batch.
		if _, err := tx.Exec(ctx, "SET CONSTRAINTS regions_parent_slug_fkey DEFERRED"); err != nil {
			return fmt.Errorf("defer the parent check: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, record, batchID); err != nil {
		return fmt.Errorf("record the %s the batch changes: %w", kind, err)
	}
	if _, err := tx.Exec(ctx, upsert); err != nil {
		return fmt.Errorf("upsert %s: %w", kind, err)
	}
	if kind == DataRegions {
		if _, err := tx.Exec(ctx, "SET CONSTRAINTS regions_parent_slug_fkey IMMEDIATE"); err != nil {
			return fmt.Errorf("check parent regions: %w", err)
		}
	}
	return nil
}
