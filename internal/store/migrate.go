package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"strconv"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	pgxmigrate "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"rates/db"
)

// Migrator applies the embedded schema migrations. golang-migrate holds a PostgreSQL advisory
// lock while it works, so several instances starting at once apply each migration exactly once.
type Migrator struct {
	m   *migrate.Migrate
	log *slog.Logger
}

// NewMigrator opens a dedicated connection for golang-migrate from the pool's settings.
func NewMigrator(pool *pgxpool.Pool, log *slog.Logger) (*Migrator, error) {
	src, err := iofs.New(db.Migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("open embedded migrations: %w", err)
	}
	sqlDB := stdlib.OpenDB(*pool.Config().ConnConfig.Copy())
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
	return &Migrator{m: m, log: log}, nil
}

// Up applies every pending migration; nothing pending is not an error. A database already
// beyond the newest migration this binary knows (after a rollback to an earlier release) is
// left as it is: golang-migrate would refuse a version it has no file for, and expand/contract
// guarantees that this binary still works on the newer schema.
func (mg *Migrator) Up(ctx context.Context) error {
	need, err := RequiredVersion()
	if err != nil {
		return err
	}
	have, dirty, err := mg.Version()
	if err != nil {
		return err
	}
	if !dirty && have > need {
		mg.log.Warn("database schema is newer than this binary's migrations; nothing to apply",
			"schema_version", have, "binary_version", need)
		return nil
	}
	return mg.run(ctx, "up", mg.m.Up)
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

// RequiredVersion is the newest migration embedded in this binary: the schema version it needs.
func RequiredVersion() (uint, error) {
	files, err := fs.Glob(db.Migrations, "migrations/*.up.sql")
	if err != nil {
		return 0, fmt.Errorf("list embedded migrations: %w", err)
	}
	var newest uint
	for _, f := range files {
		n, _, ok := strings.Cut(path.Base(f), "_")
		v, err := strconv.ParseUint(n, 10, 64)
		if !ok || err != nil {
			return 0, fmt.Errorf("embedded migration %s: name does not start with a version number", f)
		}
		newest = max(newest, uint(v))
	}
	if newest == 0 {
		return 0, errors.New("no embedded migrations")
	}
	return newest, nil
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
