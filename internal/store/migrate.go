package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	pgxmigrate "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"rates/db"
)

// Migrator applies the embedded schema migrations. golang-migrate holds a PostgreSQL advisory
// lock while it works, so several instances starting at once apply each migration exactly once.
type Migrator struct {
	m *migrate.Migrate
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
	return &Migrator{m: m}, nil
}

// Up applies every pending migration; nothing pending is not an error.
func (mg *Migrator) Up(ctx context.Context) error {
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
