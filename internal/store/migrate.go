package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	pgxmigrate "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"rates/db"
)

// Migrator applies the embedded schema migrations. It holds golang-migrate's PostgreSQL advisory
// lock while it works, so several instances starting at once (and the migration task of an
// earlier release) apply each migration exactly once.
type Migrator struct {
	m      *migrate.Migrate
	driver database.Driver
	files  fs.FS // holds migrations/*.sql
	conn   *pgx.ConnConfig
	log    *slog.Logger
}

// noTransaction, as the first line of a migration file, runs the file outside any transaction:
// for statements PostgreSQL refuses in a transaction block (CREATE INDEX CONCURRENTLY). Its
// statements, each ending with a semicolon at the end of a line, run one by one, and the
// version is recorded dirty until the last one succeeds, so a failure half-way stays visible
// (docs/operations.md, "A failed migration").
const noTransaction = "-- migrate: no-transaction"

// statementEnd ends a statement of a no-transaction file.
var statementEnd = regexp.MustCompile(`;[ \t]*(?:\r?\n|$)`)

// NewMigrator prepares the owner role (prepareOwner: the roles exist, the connected user may
// act as the owner, the schema belongs to it) and opens golang-migrate's connection, and later
// the one that runs the files, as the owner role: with the pool's settings plus the session
// setting role, which is SET ROLE from the first statement on. So every object a migration
// creates, schema_migrations included, belongs to the owner, and a file runs without the
// rights of the user the pool connects as.
func NewMigrator(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) (*Migrator, error) {
	return newMigrator(ctx, pool, log, db.Migrations)
}

func newMigrator(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger, files fs.FS) (*Migrator, error) {
	src, err := iofs.New(files, "migrations")
	if err != nil {
		return nil, fmt.Errorf("open embedded migrations: %w", err)
	}
	if err := prepareOwner(ctx, pool.Config().ConnConfig.Copy(), log); err != nil {
		return nil, err
	}
	asOwner := pool.Config().ConnConfig.Copy()
	if asOwner.RuntimeParams == nil {
		asOwner.RuntimeParams = map[string]string{}
	}
	asOwner.RuntimeParams["role"] = OwnerRole
	sqlDB := stdlib.OpenDB(*asOwner.Copy())
	driver, err := pgxmigrate.WithInstance(sqlDB, &pgxmigrate.Config{})
	if err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("open migration driver: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", driver)
	if err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("create migrator: %w", err)
	}
	m.Log = migrateLogger{log}
	return &Migrator{m: m, driver: driver, files: files, conn: asOwner, log: log}, nil
}

// Up applies every pending migration, in order; nothing pending is not an error. Each file
// runs as one batch of statements followed by the record of its version, in one transaction:
// PostgreSQL applies both or neither. A migration that fails therefore leaves the schema and
// the recorded version where they were, never dirty, and once the cause is fixed `migrate up`
// retries it as it is, without `migrate force`. The error names the file and carries
// PostgreSQL's error, never the file's text. A file that manages its own transaction
// (BEGIN ... COMMIT) gets its version recorded right after its COMMIT.
//
// A database already beyond the newest migration this binary knows (after a rollback to an
// earlier release) is left as it is: expand/contract guarantees that this binary still works
// on the newer schema.
func (mg *Migrator) Up(ctx context.Context) error {
	files, err := migrationFiles(mg.files)
	if err != nil {
		return err
	}
	need := files[len(files)-1].version
	have, dirty, err := mg.Version()
	if err != nil {
		return err
	}
	if dirty {
		return &SchemaDirtyError{Version: have}
	}
	if have > need {
		mg.log.Warn("database schema is newer than this binary's migrations; nothing to apply",
			"schema_version", have, "binary_version", need)
		return nil
	}
	if err := mg.driver.Lock(); err != nil {
		return fmt.Errorf("migrate up: lock: %w", err)
	}
	defer func() {
		if err := mg.driver.Unlock(); err != nil {
			mg.log.Warn("migrate up: unlock", "error", err.Error())
		}
	}()
	conn, err := pgx.ConnectConfig(ctx, mg.conn)
	if err != nil {
		return fmt.Errorf("migrate up: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// Read again under the lock: another instance may have migrated meanwhile.
	if have, dirty, err = mg.Version(); err != nil {
		return err
	}
	if dirty {
		return &SchemaDirtyError{Version: have}
	}
	for _, f := range files {
		if f.version <= have {
			continue
		}
		if err := mg.apply(ctx, conn, f, have); err != nil {
			return err
		}
		have = f.version
	}
	return nil
}

// apply runs one migration file and records its version; prev is the version before it.
func (mg *Migrator) apply(ctx context.Context, conn *pgx.Conn, f migrationFile, prev uint) error {
	body, err := fs.ReadFile(mg.files, path.Join("migrations", f.name))
	if err != nil {
		return fmt.Errorf("migrate up: read %s: %w", f.name, err)
	}
	started := time.Now()
	record := fmt.Sprintf("DELETE FROM schema_migrations; INSERT INTO schema_migrations (version, dirty) VALUES (%d, false)", f.version)
	if strings.HasPrefix(string(body), noTransaction) {
		if err := mg.applyAlone(ctx, conn, f, string(body), record); err != nil {
			return err
		}
	} else if _, err := conn.Exec(ctx, string(body)+"\n;\n"+record); err != nil {
		// A file that opened its own transaction block leaves it aborted; nothing of it stays.
		_, _ = conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		return &MigrationError{File: f.name, Line: errorLine(string(body), err), Version: prev, Err: err}
	}
	mg.log.Info("migration applied", "file", f.name, "version", f.version,
		"duration_ms", time.Since(started).Milliseconds())
	return nil
}

// applyAlone runs a no-transaction file the way golang-migrate does: version recorded dirty,
// the file, then the version clean.
func (mg *Migrator) applyAlone(ctx context.Context, conn *pgx.Conn, f migrationFile, body, record string) error {
	dirty := fmt.Sprintf("DELETE FROM schema_migrations; INSERT INTO schema_migrations (version, dirty) VALUES (%d, true)", f.version)
	if _, err := conn.Exec(ctx, dirty); err != nil {
		return fmt.Errorf("migrate up: record %s as running: %w", f.name, err)
	}
	line := 1
	for _, stmt := range statementEnd.Split(body, -1) {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			if l := errorLine(stmt, err); l > 0 {
				line += l - 1
			} else {
				line = 0
			}
			return &MigrationError{File: f.name, Line: line, Version: f.version, Dirty: true, Err: err}
		}
		line += strings.Count(stmt, "\n") + 1
	}
	// Settings the file made for its session end with it.
	if _, err := conn.Exec(ctx, "RESET ALL; "+record); err != nil {
		return &MigrationError{File: f.name, Version: f.version, Dirty: true, Err: fmt.Errorf("record the version: %w", err)}
	}
	return nil
}

// MigrationError is a migration file that failed. The message names the file (and the line
// PostgreSQL points at) and carries PostgreSQL's error, never the file's text.
type MigrationError struct {
	File    string // the file's name, 000007_price_daily.up.sql
	Line    int    // line of the file the error points at; 0 when PostgreSQL names none
	Version uint   // the recorded version after the failure
	Dirty   bool   // a no-transaction file failed half-way: Version is recorded dirty
	Err     error
}

func (e *MigrationError) Error() string {
	where := e.File
	if e.Line > 0 {
		where = fmt.Sprintf("%s, line %d", e.File, e.Line)
	}
	cause := e.Err.Error()
	var pgErr *pgconn.PgError
	if errors.As(e.Err, &pgErr) {
		for _, extra := range []struct{ label, text string }{{"detail", pgErr.Detail}, {"hint", pgErr.Hint}} {
			if extra.text != "" {
				cause += "; " + extra.label + ": " + extra.text
			}
		}
	}
	if e.Dirty {
		return fmt.Sprintf("migration %s failed outside a transaction: version %d is recorded dirty: %s", where, e.Version, cause)
	}
	return fmt.Sprintf("migration %s failed and was rolled back: the schema stays at version %d, not dirty: %s", where, e.Version, cause)
}

func (e *MigrationError) Unwrap() error { return e.Err }

// errorLine is the line of body that PostgreSQL's error position points at, or 0.
func errorLine(body string, err error) int {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Position <= 0 {
		return 0
	}
	runes := []rune(body)
	if int(pgErr.Position) > len(runes) {
		return 0 // in the version record appended to the file
	}
	return strings.Count(string(runes[:pgErr.Position-1]), "\n") + 1
}

// Down reverts the newest n migrations.
func (mg *Migrator) Down(ctx context.Context, n int) error {
	if n < 1 {
		return fmt.Errorf("migrate down: step count must be at least 1, got %d", n)
	}
	return mg.run(ctx, fmt.Sprintf("down %d", n), func() error { return mg.m.Steps(-n) })
}

// Force sets the recorded version without running anything, to recover from a failed migration.
func (mg *Migrator) Force(ctx context.Context, version int) error {
	return mg.run(ctx, fmt.Sprintf("force %d", version), func() error { return mg.m.Force(version) })
}

// Version reports the applied schema version; 0 means none.
func (mg *Migrator) Version() (version uint, dirty bool, err error) {
	v, dirty, err := mg.m.Version()
	if errors.Is(err, migrate.ErrNilVersion) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("migrate version: %w", err)
	}
	return v, dirty, nil
}

// Close releases the migration connection.
func (mg *Migrator) Close() error {
	srcErr, dbErr := mg.m.Close()
	return errors.Join(srcErr, dbErr)
}

func (mg *Migrator) run(ctx context.Context, what string, fn func() error) error {
	stop := context.AfterFunc(ctx, func() {
		select {
		case mg.m.GracefulStop <- true:
		default:
		}
	})
	defer stop()
	if err := fn(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate %s: %w", what, err)
	}
	return nil
}

type migrateLogger struct{ log *slog.Logger }

func (l migrateLogger) Printf(format string, v ...any) {
	l.log.Info(strings.TrimSpace(fmt.Sprintf(format, v...)), "component", "migrate")
}

func (l migrateLogger) Verbose() bool { return false }

// migrationFile is one up migration: NNNNNN_name.up.sql.
type migrationFile struct {
	version uint
	name    string
}

// migrationFiles lists the up migrations of files in version order.
func migrationFiles(files fs.FS) ([]migrationFile, error) {
	paths, err := fs.Glob(files, "migrations/*.up.sql")
	if err != nil {
		return nil, fmt.Errorf("list embedded migrations: %w", err)
	}
	out := make([]migrationFile, 0, len(paths))
	for _, p := range paths {
		n, _, ok := strings.Cut(path.Base(p), "_")
		v, err := strconv.ParseUint(n, 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("embedded migration %s: name does not start with a version number", p)
		}
		out = append(out, migrationFile{version: uint(v), name: path.Base(p)})
	}
	if len(out) == 0 {
		return nil, errors.New("no embedded migrations")
	}
	slices.SortFunc(out, func(a, b migrationFile) int { return cmp.Compare(a.version, b.version) })
	return out, nil
}

// RequiredVersion is the newest migration embedded in this binary: the schema version it needs.
func RequiredVersion() (uint, error) {
	files, err := migrationFiles(db.Migrations)
	if err != nil {
		return 0, err
	}
	return files[len(files)-1].version, nil
}

// Schema is the state of a database's schema as seen by this binary.
type Schema struct {
	Have  uint // applied version; 0 means none
	Need  uint // the version this binary's queries are written for
	Dirty bool // a migration failed half-way
}

// Newer reports a database beyond this binary's migrations: the state after a rollback.
func (s Schema) Newer() bool { return s.Have > s.Need }

// SchemaTooOldError stops a binary whose queries need migrations the database lacks.
type SchemaTooOldError struct{ Have, Need uint }

func (e *SchemaTooOldError) Error() string {
	return fmt.Sprintf("database schema is at version %d, this binary needs version %d", e.Have, e.Need)
}

// SchemaDirtyError stops every binary until an operator has repaired a failed migration.
type SchemaDirtyError struct{ Version uint }

func (e *SchemaDirtyError) Error() string {
	return fmt.Sprintf("database schema version %d is dirty (its migration failed half-way)", e.Version)
}

// CheckSchema reads the applied version without migrating, and fails unless this binary can
// use it: the database must be at least at the version the binary needs and not dirty. A
// newer database is accepted, since every migration keeps the previous release working.
func CheckSchema(ctx context.Context, pool *pgxpool.Pool) (Schema, error) {
	need, err := RequiredVersion()
	if err != nil {
		return Schema{}, err
	}
	have, dirty, err := SchemaVersion(ctx, pool)
	if err != nil {
		return Schema{}, err
	}
	s := Schema{Have: have, Need: need, Dirty: dirty}
	switch {
	case dirty:
		return s, &SchemaDirtyError{Version: have}
	case have < need:
		return s, &SchemaTooOldError{Have: have, Need: need}
	}
	return s, nil
}

// SchemaVersion reads golang-migrate's record of the applied version directly, since
// golang-migrate itself refuses a version it has no file for. No record means version 0.
func SchemaVersion(ctx context.Context, pool *pgxpool.Pool) (version uint, dirty bool, err error) {
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass('schema_migrations') IS NOT NULL").Scan(&exists); err != nil {
		return 0, false, fmt.Errorf("read schema version: %w", err)
	}
	if !exists {
		return 0, false, nil
	}
	var v int64
	err = pool.QueryRow(ctx, "SELECT version, dirty FROM schema_migrations LIMIT 1").Scan(&v, &dirty)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read schema version: %w", err)
	}
	if v < 0 { // golang-migrate's "no version" after a full migrate down
		return 0, false, nil
	}
	return uint(v), dirty, nil
}
