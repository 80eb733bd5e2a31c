package api

import (
	"encoding/binary"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"rates/internal/domain"
)

// RatesQuery is a validated GET /rates request.
type RatesQuery struct {
	From, To   time.Time // UTC midnight, From <= To
	Orig, Dest string    // as given: a port code (any case) or a region slug
}

// cacheKey identifies the answer to q: both days at a fixed width, then the codes. Codes never
// hold control characters, so NUL separates them unambiguously.
func (q RatesQuery) cacheKey() string { return string(q.appendKey(nil)) }

// appendKey appends the cache key of q to b: a lookup with a key built in a buffer on the
// stack allocates nothing.
func (q RatesQuery) appendKey(b []byte) []byte {
	b = appendDayKey(b, q.From)
	b = appendDayKey(b, q.To)
	b = append(b, q.Orig...)
	b = append(b, 0)
	return append(b, q.Dest...)
}

// dayKeyLen is the width of a day in a cache key.
const dayKeyLen = 8

// appendDayKey appends day (a UTC midnight) to a cache key as its Unix time in binary: keys are
// built on every request, and formatting the dates as text took a third of the /rates
// handler's own CPU on a cache hit (pprof of BenchmarkRatesHandler).
func appendDayKey(b []byte, day time.Time) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(day.Unix())) //nolint:gosec // G115: a bijection is all a key needs, sign included
}

// Days is the number of calendar days in the range, both ends included.
func (q RatesQuery) Days() int { return daysBetween(q.From, q.To) + 1 }

// paramError is a client mistake; its message is returned to the client as is.
type paramError struct{ msg string }

func (e *paramError) Error() string { return e.msg }

func badParam(format string, args ...any) error {
	return &paramError{msg: fmt.Sprintf(format, args...)}
}

// maxCodeLength bounds codes and slugs: longer strings cannot name anything and are not sent
// to the database.
const maxCodeLength = 100

// ratesParams are the parameters of GET /rates, as sent; ok tells whether each was present.
type ratesParams struct {
	values [4]string
	ok     [4]bool
}

var ratesParamNames = [4]string{"date_from", "date_to", "orig_code", "dest_code"}

// get returns the first value of name, as url.Values does.
func (p *ratesParams) get(name string) (string, bool) {
	for i, n := range ratesParamNames {
		if n == name {
			return p.values[i], p.ok[i]
		}
	}
	return "", false
}

// splitQuery reads the parameters of GET /rates from a query string, the first value of each
// winning, exactly as url.ParseQuery would. A query without escapes ('%', '+') or semicolons
// reads the same unescaped, so it is split in place without the map url.ParseQuery builds.
func splitQuery(raw string) (ratesParams, error) {
	var p ratesParams
	if strings.ContainsAny(raw, "%+;") {
		values, err := url.ParseQuery(raw)
		if err != nil {
			return p, err
		}
		for i, n := range ratesParamNames {
			p.values[i], p.ok[i] = first(values, n)
		}
		return p, nil
	}
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		for i, n := range ratesParamNames {
			if k == n && !p.ok[i] {
				p.values[i], p.ok[i] = v, true
			}
		}
	}
	return p, nil
}

// ParseRatesQuery validates the query string of GET /rates. When a parameter is repeated the
// first value wins; unknown parameters are ignored.
func ParseRatesQuery(rawQuery string, maxRangeDays int) (RatesQuery, error) {
	values, err := splitQuery(rawQuery)
	if err != nil {
		return RatesQuery{}, badParam("malformed query string: %v", err)
	}
	var q RatesQuery
	if q.From, err = dateParam(&values, "date_from"); err != nil {
		return RatesQuery{}, err
	}
	if q.To, err = dateParam(&values, "date_to"); err != nil {
		return RatesQuery{}, err
	}
	if q.From.After(q.To) {
		return RatesQuery{}, badParam("date_from (%s) is after date_to (%s)", formatDay(q.From), formatDay(q.To))
	}
	if days := q.Days(); days > maxRangeDays {
		return RatesQuery{}, badParam("date range of %d days is longer than the maximum of %d days", days, maxRangeDays)
	}
	if q.Orig, err = codeParam(&values, "orig_code"); err != nil {
		return RatesQuery{}, err
	}
	if q.Dest, err = codeParam(&values, "dest_code"); err != nil {
		return RatesQuery{}, err
	}
	return q, nil
}

func first(values url.Values, name string) (string, bool) {
	v, ok := values[name]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

func dateParam(values *ratesParams, name string) (time.Time, error) {
	raw, ok := values.get(name)
	if !ok || raw == "" {
		return time.Time{}, badParam("missing required parameter %s (format YYYY-MM-DD)", name)
	}
	d, err := domain.ParseDay(raw)
	if err != nil {
		return time.Time{}, badParam("invalid %s %q: expected a calendar date as YYYY-MM-DD", name, truncate(raw))
	}
	return d, nil
}

func codeParam(values *ratesParams, name string) (string, error) {
	raw, ok := values.get(name)
	if !ok || raw == "" {
		return "", badParam("missing required parameter %s (a port code or region slug)", name)
	}
	if len(raw) > maxCodeLength || !utf8.ValidString(raw) || containsControl(raw) {
		return "", badParam("invalid %s %q: not a port code or region slug", name, truncate(raw))
	}
	return raw, nil
}

func containsControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// daysBetween counts whole days between two UTC midnights; it goes through Unix seconds
// because time.Duration cannot hold spans of more than about 292 years.
func daysBetween(from, to time.Time) int { return int((to.Unix() - from.Unix()) / 86400) }

func formatDay(t time.Time) string { return t.Format(time.DateOnly) }

// truncate keeps error messages short when a client sends a huge value.
func truncate(s string) string {
	const limit = 40
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
