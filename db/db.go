// Package db holds the database assets that ship inside the binary.
package db

import "embed"

// Migrations are the golang-migrate files, applied by `rates migrate` and at `rates serve` start.
//
//go:embed migrations/*.sql
var Migrations embed.FS
