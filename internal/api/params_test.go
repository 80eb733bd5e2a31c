package api

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"rates/internal/domain"
)

func day(y, m, d int) time.Time { return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC) }

func TestParseRatesQueryValid(t *testing.T) {
	tests := []struct {
		name  string
		query string
		want  RatesQuery
	}{
		{"plain", "date_from=2021-01-01&date_to=2021-01-31&orig_code=CNSGH&dest_code=north_europe_main",
			RatesQuery{From: day(2021, 1, 1), To: day(2021, 1, 31), Orig: "CNSGH", Dest: "north_europe_main"}},
		{"one-digit month and day", "date_from=2021-1-5&date_to=2021-2-3&orig_code=a&dest_code=b",
			RatesQuery{From: day(2021, 1, 5), To: day(2021, 2, 3), Orig: "a", Dest: "b"}},
		{"single day", "date_from=2021-01-05&date_to=2021-01-05&orig_code=a&dest_code=b",
			RatesQuery{From: day(2021, 1, 5), To: day(2021, 1, 5), Orig: "a", Dest: "b"}},
		{"leap day", "date_from=2020-02-29&date_to=2020-03-01&orig_code=a&dest_code=b",
			RatesQuery{From: day(2020, 2, 29), To: day(2020, 3, 1), Orig: "a", Dest: "b"}},
		{"year 0001", "date_from=0001-01-01&date_to=0001-01-02&orig_code=a&dest_code=b",
			RatesQuery{From: day(1, 1, 1), To: day(1, 1, 2), Orig: "a", Dest: "b"}},
		{"year 9999", "date_from=9999-12-30&date_to=9999-12-31&orig_code=a&dest_code=b",
			RatesQuery{From: day(9999, 12, 30), To: day(9999, 12, 31), Orig: "a", Dest: "b"}},
		{"first value wins", "date_from=2021-01-01&date_from=2021-01-09&date_to=2021-01-02&orig_code=a&orig_code=z&dest_code=b",
			RatesQuery{From: day(2021, 1, 1), To: day(2021, 1, 2), Orig: "a", Dest: "b"}},
		{"unknown parameters ignored", "foo=bar&date_from=2021-01-01&date_to=2021-01-02&orig_code=a&dest_code=b&x",
			RatesQuery{From: day(2021, 1, 1), To: day(2021, 1, 2), Orig: "a", Dest: "b"}},
		{"percent-encoded", "date_from=2021%2D01%2D01&date_to=2021-01-02&orig_code=%43NSGH&dest_code=b",
			RatesQuery{From: day(2021, 1, 1), To: day(2021, 1, 2), Orig: "CNSGH", Dest: "b"}},
		{"range at the maximum", "date_from=2021-01-01&date_to=2021-02-09&orig_code=a&dest_code=b",
			RatesQuery{From: day(2021, 1, 1), To: day(2021, 2, 9), Orig: "a", Dest: "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRatesQuery(tt.query, 40)
			if err != nil {
				t.Fatalf("ParseRatesQuery(%q): %v", tt.query, err)
			}
			if got != tt.want {
				t.Fatalf("ParseRatesQuery(%q) = %+v, want %+v", tt.query, got, tt.want)
			}
		})
	}
}

func TestParseRatesQueryErrors(t *testing.T) {
	const ok = "orig_code=a&dest_code=b"
	tests := []struct {
		name, query, wantInMessage string
	}{
		{"missing date_from", "date_to=2021-01-02&" + ok, "missing required parameter date_from"},
		{"empty date_from", "date_from=&date_to=2021-01-02&" + ok, "missing required parameter date_from"},
		{"missing date_to", "date_from=2021-01-02&" + ok, "missing required parameter date_to"},
		{"missing orig_code", "date_from=2021-01-01&date_to=2021-01-02&dest_code=b", "missing required parameter orig_code"},
		{"missing dest_code", "date_from=2021-01-01&date_to=2021-01-02&orig_code=a", "missing required parameter dest_code"},
		{"empty dest_code", "date_from=2021-01-01&date_to=2021-01-02&orig_code=a&dest_code=", "missing required parameter dest_code"},
		{"not a date", "date_from=yesterday&date_to=2021-01-02&" + ok, "invalid date_from"},
		{"February 29 of a common year", "date_from=2021-02-29&date_to=2021-03-01&" + ok, "invalid date_from"},
		{"month 13", "date_from=2021-13-01&date_to=2021-01-02&" + ok, "invalid date_from"},
		{"month 0", "date_from=2021-00-01&date_to=2021-01-02&" + ok, "invalid date_from"},
		{"day 0", "date_from=2021-01-00&date_to=2021-01-02&" + ok, "invalid date_from"},
		{"day 32", "date_from=2021-01-01&date_to=2021-01-32&" + ok, "invalid date_to"},
		{"year 0000", "date_from=0000-01-01&date_to=2021-01-02&" + ok, "invalid date_from"},
		{"two-digit year", "date_from=21-01-01&date_to=2021-01-02&" + ok, "invalid date_from"},
		{"five-digit year", "date_from=20210-01-01&date_to=2021-01-02&" + ok, "invalid date_from"},
		{"three-digit month", "date_from=2021-001-01&date_to=2021-01-02&" + ok, "invalid date_from"},
		{"space inside", "date_from=2021-01-%2001&date_to=2021-01-02&" + ok, "invalid date_from"},
		{"leading space", "date_from=%202021-01-01&date_to=2021-01-02&" + ok, "invalid date_from"},
		{"trailing space", "date_from=2021-01-01+&date_to=2021-01-02&" + ok, "invalid date_from"},
		{"non-ASCII digits", "date_from=%D9%A2%D9%A0%D9%A2%D9%A1-01-01&date_to=2021-01-02&" + ok, "invalid date_from"},
		{"fullwidth digits", "date_from=%EF%BC%92021-01-01&date_to=2021-01-02&" + ok, "invalid date_from"},
		{"slashes", "date_from=2021/01/01&date_to=2021-01-02&" + ok, "invalid date_from"},
		{"time attached", "date_from=2021-01-01T00:00&date_to=2021-01-02&" + ok, "invalid date_from"},
		{"sign", "date_from=%2B2021-01-01&date_to=2021-01-02&" + ok, "invalid date_from"},
		{"from after to", "date_from=2021-01-03&date_to=2021-01-02&" + ok, "date_from (2021-01-03) is after date_to (2021-01-02)"},
		{"range too long", "date_from=2021-01-01&date_to=2021-01-11&" + ok, "date range of 11 days is longer than the maximum of 10 days"},
		{"whole calendar", "date_from=0001-01-01&date_to=9999-12-31&" + ok, "date range of 3652059 days"},
		{"malformed escape", "date_from=%zz&date_to=2021-01-02&" + ok, "malformed query string"},
		{"code too long", "date_from=2021-01-01&date_to=2021-01-02&dest_code=b&orig_code=" + strings.Repeat("x", 101), "invalid orig_code"},
		{"code not UTF-8", "date_from=2021-01-01&date_to=2021-01-02&orig_code=a&dest_code=%FF", "invalid dest_code"},
		{"code with NUL", "date_from=2021-01-01&date_to=2021-01-02&orig_code=a%00b&dest_code=b", "invalid orig_code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRatesQuery(tt.query, 10)
			var pe *paramError
			if !errors.As(err, &pe) {
				t.Fatalf("ParseRatesQuery(%q) error = %v, want a parameter error", tt.query, err)
			}
			if !strings.Contains(err.Error(), tt.wantInMessage) {
				t.Fatalf("ParseRatesQuery(%q) error = %q, want it to contain %q", tt.query, err, tt.wantInMessage)
			}
		})
	}
}

// FuzzParseRatesQuery checks that no input panics, that every accepted query is in range and
// that accepted dates print back to a string the parser accepts as the same day.
func FuzzParseRatesQuery(f *testing.F) {
	for _, seed := range []string{
		"date_from=2021-01-01&date_to=2021-01-31&orig_code=CNSGH&dest_code=north_europe_main",
		"date_from=2021-1-1&date_to=2021-1-1&orig_code=a&dest_code=b",
		"date_from=%zz", "date_from=2021-02-29", "a=b&&&=", "date_from=٢٠٢١-01-01",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := ParseRatesQuery(raw, 3660)
		if err != nil {
			if msg := err.Error(); msg == "" || !strings.Contains(msg, "date") && !strings.Contains(msg, "code") && !strings.Contains(msg, "query") {
				t.Fatalf("error %q does not name a parameter", msg)
			}
			return
		}
		if q.From.After(q.To) || q.Days() < 1 || q.Days() > 3660 || q.Orig == "" || q.Dest == "" {
			t.Fatalf("accepted out-of-range query %+v from %q", q, raw)
		}
		for _, d := range []time.Time{q.From, q.To} {
			back, err := domain.ParseDay(formatDay(d))
			if err != nil || !back.Equal(d) {
				t.Fatalf("date %v does not round-trip", d)
			}
		}
	})
}

// Queries that differ in any part have different cache keys, including where a byte could move
// from one part to the next; the same query parsed twice has the same key.
func TestCacheKeyIdentifiesTheQuery(t *testing.T) {
	queries := []RatesQuery{
		{From: day(2021, 1, 1), To: day(2021, 1, 31), Orig: "CNSGH", Dest: "NLRTM"},
		{From: day(2021, 1, 1), To: day(2021, 1, 30), Orig: "CNSGH", Dest: "NLRTM"},
		{From: day(2021, 1, 2), To: day(2021, 1, 31), Orig: "CNSGH", Dest: "NLRTM"},
		{From: day(2021, 1, 31), To: day(2021, 1, 1), Orig: "CNSGH", Dest: "NLRTM"},
		{From: day(2021, 1, 1), To: day(2021, 1, 31), Orig: "CNSG", Dest: "HNLRTM"},
		{From: day(2021, 1, 1), To: day(2021, 1, 31), Orig: "NLRTM", Dest: "CNSGH"},
		{From: day(2021, 1, 1), To: day(2021, 1, 31), Orig: "cnsgh", Dest: "NLRTM"},
		{From: day(1, 1, 1), To: day(1, 1, 1), Orig: "CNSGH", Dest: "NLRTM"},
		{From: day(1969, 12, 31), To: day(1970, 1, 1), Orig: "CNSGH", Dest: "NLRTM"},
		{From: day(1970, 1, 1), To: day(1969, 12, 31), Orig: "CNSGH", Dest: "NLRTM"},
	}
	seen := map[string]RatesQuery{}
	for _, q := range queries {
		if other, ok := seen[q.cacheKey()]; ok {
			t.Fatalf("%+v and %+v share the cache key %q", q, other, q.cacheKey())
		}
		seen[q.cacheKey()] = q
	}
	raw := "date_from=2021-01-01&date_to=2021-01-31&orig_code=CNSGH&dest_code=NLRTM"
	a, errA := ParseRatesQuery(raw, 366)
	b, errB := ParseRatesQuery(raw, 366)
	if errA != nil || errB != nil || a.cacheKey() != b.cacheKey() {
		t.Fatalf("the same query: keys %q and %q (errors %v, %v)", a.cacheKey(), b.cacheKey(), errA, errB)
	}
}

// FuzzSplitQuery checks that the parameters split without url.ParseQuery are the ones it finds.
func FuzzSplitQuery(f *testing.F) {
	for _, seed := range []string{
		"date_from=2021-01-01&date_to=2021-01-31&orig_code=CNSGH&dest_code=north_europe_main",
		"date_from&date_from=2&=x&&orig_code==a=b&dest_code=", "a=b&&&=", "date_to=1&date_to=2", "%41=b;c", "x+y=z",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := splitQuery(raw)
		values, wantErr := url.ParseQuery(raw)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("splitQuery(%q) error %v, url.ParseQuery error %v", raw, err, wantErr)
		}
		if err != nil {
			return
		}
		for i, n := range ratesParamNames {
			if v, ok := first(values, n); got.values[i] != v || got.ok[i] != ok {
				t.Fatalf("splitQuery(%q) %s = %q, %t; url.ParseQuery: %q, %t", raw, n, got.values[i], got.ok[i], v, ok)
			}
		}
	})
}
