// Package domain holds the rules every entry point applies to the service's data (the API's
// parameters, batch files, seed dumps) so that each has one home. The database backs the rules
// on the data it holds with CHECK constraints (db/migrations), and a test holds the two
// together.
package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// MinPricesForAverage is the number of prices a day needs on a route before it has an average
// price; below it the API answers a null price (the count is still given).
const MinPricesForAverage = 3

// HasAverage tells whether a day with count prices has an average price.
func HasAverage(count int64) bool { return count >= MinPricesForAverage }

// MinPrice and MaxPrice bound a price: a whole number of at least 1 that the integer column of
// prices holds.
const (
	MinPrice = 1
	MaxPrice = 1<<31 - 1
)

// ValidPrice tells whether n is an acceptable price.
func ValidPrice(n int64) bool { return n >= MinPrice && n <= MaxPrice }

// PortCodeLength is the length of a UN/LOCODE port code.
const PortCodeLength = 5

// IsPortCode accepts the UN/LOCODE shape of the ports table: 5 upper-case ASCII letters or
// digits. Whether the port exists is the database's business.
func IsPortCode(s string) bool {
	if len(s) != PortCodeLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// MaxRegionSlugLength bounds a region slug.
const MaxRegionSlugLength = 64

// IsRegionSlug accepts the shape of a region slug: a lower-case ASCII letter, then lower-case
// letters, digits or underscores, at most MaxRegionSlugLength bytes.
func IsRegionSlug(s string) bool {
	if s == "" || len(s) > MaxRegionSlugLength || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Why a string is not a calendar day.
var (
	ErrDayForm   = errors.New("not a date in YYYY-MM-DD form")
	ErrNoSuchDay = errors.New("not a real date")
)

// ParseDay reads a calendar day written as a 4-digit year (0001-9999, the range the prices
// table's CHECK allows), a 1- or 2-digit month
// and a 1- or 2-digit day, ASCII digits only, as UTC midnight. The error is ErrDayForm when s
// does not have that shape and ErrNoSuchDay when it does but names no day (2026-02-30).
func ParseDay(s string) (time.Time, error) {
	year, rest, ok := digits(s, 4, 4)
	if !ok || rest == "" || rest[0] != '-' {
		return time.Time{}, ErrDayForm
	}
	month, rest, ok := digits(rest[1:], 1, 2)
	if !ok || rest == "" || rest[0] != '-' {
		return time.Time{}, ErrDayForm
	}
	day, rest, ok := digits(rest[1:], 1, 2)
	if !ok || rest != "" {
		return time.Time{}, ErrDayForm
	}
	if year < 1 || month < 1 || month > 12 || day < 1 || day > daysIn(year, time.Month(month)) {
		return time.Time{}, ErrNoSuchDay
	}
	return time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC), nil
}

func digits(s string, minLen, maxLen int) (n int, rest string, ok bool) {
	i := 0
	for i < len(s) && i < maxLen && s[i] >= '0' && s[i] <= '9' {
		n = n*10 + int(s[i]-'0')
		i++
	}
	return n, s[i:], i >= minLen
}

func daysIn(year int, month time.Month) int {
	return time.Date(year, month+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// DistinctRoute tells whether a price may go from orig to dest: a route joins two ports, and a
// price from a port to itself is a mistake (prices_route_distinct backs it in the database).
func DistinctRoute(orig, dest string) bool { return orig != dest }

// DayWindow is the span of days a price may be dated: none before Earliest, none more than
// DaysAhead days after today (UTC). A price outside it is a typo (9999-01-01, a year 0202) or a
// unit slip rather than a quote. It depends on today, so the database cannot check it; batches
// check it as they are read.
type DayWindow struct {
	Earliest  time.Time
	DaysAhead int
}

// DefaultDayWindow is the window of prices when none is configured: from 2000-01-01 to a year
// (365 days) after today.
var DefaultDayWindow = DayWindow{Earliest: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), DaysAhead: 365}

// Why a day is outside a DayWindow.
var (
	ErrDayTooEarly = errors.New("before the earliest day a price may have")
	ErrDayTooLate  = errors.New("too far after today")
)

// Latest is the last day the window allows on the day now falls on (UTC).
func (w DayWindow) Latest(now time.Time) time.Time {
	y, m, d := now.UTC().Date()
	return time.Date(y, m, d+w.DaysAhead, 0, 0, 0, 0, time.UTC)
}

// Check returns nil for a day inside the window on the day now falls on, else ErrDayTooEarly
// or ErrDayTooLate.
func (w DayWindow) Check(day, now time.Time) error {
	switch {
	case day.Before(w.Earliest):
		return ErrDayTooEarly
	case day.After(w.Latest(now)):
		return ErrDayTooLate
	}
	return nil
}

// FileSHA256 returns the hex SHA-256 of the file at path: a seed dump and a batch file are
// identified by their content, so loading the same bytes twice is recognised and does nothing.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path) //nolint:gosec // G304: the operator names the file to load
	if err != nil {
		return "", err // names the file already
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
