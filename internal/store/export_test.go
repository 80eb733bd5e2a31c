package store

// The query texts, for tests that check their plans.
const (
	DailyStatsSQL = dailyStatsSQL
)
