package store

// The query texts, for tests that check their plans.
const (
	DailyStatsSQL = dailyStatsSQL
)

// Goto migrates up or down to version v, for tests that need the schema of an earlier release.
func (mg *Migrator) Goto(v uint) error { return mg.m.Migrate(v) }

// ScramVerifier exposes the password hashing for a round-trip test.
var ScramVerifier = scramVerifier
