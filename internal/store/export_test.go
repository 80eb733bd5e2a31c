package store

// The query texts, for tests that check their plans.
const (
	DailyStatsSQL = dailyStatsSQL
)

// ScramVerifier exposes the password hashing for a round-trip test.
var ScramVerifier = scramVerifier
