package batchstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ownTriggersSQL finds triggers and rules on prices, other than the foreign keys' own, whose
// firing depends on session_replication_role: enabled the default way (O) they are silenced by
// replica mode, and ENABLE REPLICA ones (R) would fire only then. Those of the schema are
// ENABLE ALWAYS (A).
const ownTriggersSQL = `SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'prices'::regclass
		AND NOT tgisinternal AND tgenabled IN ('O', 'R'))
	OR EXISTS (SELECT 1 FROM pg_rewrite WHERE ev_class = 'prices'::regclass AND ev_enabled IN ('O', 'R'))`

// withoutRowChecks runs insert with the foreign keys' per-row checks off when they are
// redundant and the session may turn them off, and says whether it did. They are redundant
// once portsLocked (every port the rows name exists and is locked as the checks would lock it)
// and the transaction holds its batch's row; they cost more than the rest of the insert
// together (a trigger query per key per row). Turning them off takes session_replication_role
// (superuser, or PostgreSQL 15's GRANT SET ON PARAMETER) and a prices table whose own triggers
// all fire in replica mode too.
func withoutRowChecks(ctx context.Context, tx pgx.Tx, portsLocked bool, insert func() error) (bool, error) {
	skipped := false
	if portsLocked {
		var err error
		if skipped, err = enterReplicaMode(ctx, tx); err != nil {
			return false, err
		}
	}
	if err := insert(); err != nil {
		return skipped, err
	}
	if skipped {
		if _, err := tx.Exec(ctx, "SET LOCAL session_replication_role = DEFAULT"); err != nil {
			return skipped, fmt.Errorf("restore session_replication_role: %w", err)
		}
	}
	return skipped, nil
}

// insufficientPrivilege is SQLSTATE 42501.
const insufficientPrivilege = "42501"

func enterReplicaMode(ctx context.Context, tx pgx.Tx) (bool, error) {
	var own bool
	if err := tx.QueryRow(ctx, ownTriggersSQL).Scan(&own); err != nil {
		return false, fmt.Errorf("look for triggers on prices: %w", err)
	}
	if own {
		return false, nil
	}
	if _, err := tx.Exec(ctx, "SAVEPOINT replica_mode"); err != nil {
		return false, fmt.Errorf("savepoint: %w", err)
	}
	if _, err := tx.Exec(ctx, "SET LOCAL session_replication_role = replica"); err != nil {
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != insufficientPrivilege {
			return false, fmt.Errorf("set session_replication_role: %w", err)
		}
		if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT replica_mode"); err != nil {
			return false, fmt.Errorf("rollback to savepoint: %w", err)
		}
		return false, nil
	}
	if _, err := tx.Exec(ctx, "RELEASE SAVEPOINT replica_mode"); err != nil {
		return false, fmt.Errorf("release savepoint: %w", err)
	}
	return true, nil
}
