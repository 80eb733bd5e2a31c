// Package db holds the database assets that ship inside the binary.
package db

import "embed"

// Migrations are the golang-migrate files, applied by `rates migrate` (and at start with
// MIGRATE_ON_START); the newest one is the schema version the binary needs.
//
//go:embed migrations/*.sql
var Migrations embed.FS
