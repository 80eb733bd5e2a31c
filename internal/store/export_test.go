package store

import (
	"context"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The query texts, for tests that check their plans.
const (
	DailyStatsSQL = dailyStatsSQL
)

// ScramVerifier exposes the password hashing for a round-trip test.
var ScramVerifier = scramVerifier

// NewMigratorFrom is NewMigrator with the migrations of files (migrations/*.sql) instead of the
// embedded ones.
func NewMigratorFrom(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger, files fs.FS) (*Migrator, error) {
	return newMigrator(ctx, pool, log, files)
}
