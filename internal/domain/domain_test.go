package domain

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseDay(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // YYYY-MM-DD, or "" with err
		err  error
	}{
		{"2026-01-05", "2026-01-05", nil},
		{"2026-1-5", "2026-01-05", nil},
		{"0001-01-01", "0001-01-01", nil},
		{"9999-12-31", "9999-12-31", nil},
		{"2024-02-29", "2024-02-29", nil},
		{"2000-02-29", "2000-02-29", nil},
		{"1900-02-29", "", ErrNoSuchDay},
		{"2026-02-29", "", ErrNoSuchDay},
		{"2026-02-30", "", ErrNoSuchDay},
		{"2026-04-31", "", ErrNoSuchDay},
		{"2026-13-01", "", ErrNoSuchDay},
		{"2026-00-10", "", ErrNoSuchDay},
		{"2026-01-00", "", ErrNoSuchDay},
		{"0000-01-01", "", ErrNoSuchDay},
		{"", "", ErrDayForm},
		{"26-01-05", "", ErrDayForm},
		{"20260-01-05", "", ErrDayForm},
		{"2026-001-05", "", ErrDayForm},
		{"2026-01-005", "", ErrDayForm},
		{"2026/01/05", "", ErrDayForm},
		{"2026-01-05 ", "", ErrDayForm},
		{"+2026-01-05", "", ErrDayForm},
		{"２０２６-01-05", "", ErrDayForm},
		{"2026--05", "", ErrDayForm},
	} {
		got, err := ParseDay(tc.in)
		if !errors.Is(err, tc.err) {
			t.Errorf("ParseDay(%q) error = %v, want %v", tc.in, err, tc.err)
			continue
		}
		if err == nil && got.Format(time.DateOnly) != tc.want {
			t.Errorf("ParseDay(%q) = %s, want %s", tc.in, got.Format(time.DateOnly), tc.want)
		}
		if err == nil && (got.Location() != time.UTC || got.Hour() != 0) {
			t.Errorf("ParseDay(%q) = %v, want UTC midnight", tc.in, got)
		}
	}
}

// FuzzParseDay checks ParseDay against the standard library on every accepted input: the day
// it returns prints back to the same numbers.
func FuzzParseDay(f *testing.F) {
	for _, s := range []string{"2026-01-05", "2026-1-5", "2024-02-29", "2026-02-30", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDay(s)
		if err != nil {
			return
		}
		back, perr := time.Parse("2006-1-2", s)
		if perr != nil || !back.Equal(d) {
			t.Fatalf("ParseDay(%q) = %v, time.Parse says %v, %v", s, d, back, perr)
		}
	})
}

func TestShapes(t *testing.T) {
	for _, tc := range []struct {
		in         string
		port, slug bool
	}{
		{"CNSHA", true, false},
		{"NL2RT", true, false},
		{"cnsha", false, true},
		{"CNSH", false, false},
		{"CNSHAA", false, false},
		{"CN-SH", false, false},
		{"CNŠHA", false, false},
		{"north_europe", false, true},
		{"china_east2", false, true},
		{"_china", false, false},
		{"2china", false, false},
		{"China", false, false},
		{"north-europe", false, false},
		{"", false, false},
		{"a", false, true},
		{string(make([]byte, 65)), false, false},
	} {
		if got := IsPortCode(tc.in); got != tc.port {
			t.Errorf("IsPortCode(%q) = %v, want %v", tc.in, got, tc.port)
		}
		if got := IsRegionSlug(tc.in); got != tc.slug {
			t.Errorf("IsRegionSlug(%q) = %v, want %v", tc.in, got, tc.slug)
		}
	}
	long := "a"
	for len(long) < MaxRegionSlugLength {
		long += "b"
	}
	if !IsRegionSlug(long) || IsRegionSlug(long+"c") {
		t.Errorf("the slug length limit is not %d", MaxRegionSlugLength)
	}
}

func TestPriceRules(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want bool
	}{{0, false}, {-1, false}, {1, true}, {2147483647, true}, {2147483648, false}} {
		if got := ValidPrice(tc.n); got != tc.want {
			t.Errorf("ValidPrice(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
	for _, tc := range []struct {
		count int64
		want  bool
	}{{0, false}, {1, false}, {2, false}, {3, true}, {100, true}} {
		if got := HasAverage(tc.count); got != tc.want {
			t.Errorf("HasAverage(%d) = %v, want %v", tc.count, got, tc.want)
		}
	}
}

func TestFileSHA256(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	// SHA-256("abc") from FIPS 180-2, appendix B.1.
	const want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got, err := FileSHA256(p); err != nil || got != want {
		t.Fatalf("FileSHA256 = %s, %v; want %s", got, err, want)
	}
	if _, err := FileSHA256(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("FileSHA256(missing) error = %v, want not exist", err)
	}
}

func TestDayWindow(t *testing.T) {
	w := DefaultDayWindow
	now := time.Date(2026, 12, 4, 23, 59, 0, 0, time.FixedZone("UTC-5", -5*3600)) // 2026-12-05 in UTC
	day := func(s string) time.Time {
		d, err := ParseDay(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if got := w.Latest(now); !got.Equal(day("2027-12-05")) {
		t.Fatalf("latest day = %s, want 2027-12-05 (365 days after today in UTC)", got)
	}
	for _, tc := range []struct {
		day  string
		want error
	}{
		{"1999-12-31", ErrDayTooEarly},
		{"2000-01-01", nil},
		{"2026-12-05", nil},
		{"2027-12-05", nil},
		{"2027-12-06", ErrDayTooLate},
		{"9999-01-01", ErrDayTooLate},
	} {
		if err := w.Check(day(tc.day), now); !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
			t.Errorf("%s: %v, want %v", tc.day, err, tc.want)
		}
	}
	narrow := DayWindow{Earliest: day("2026-01-01"), DaysAhead: 0}
	if err := narrow.Check(day("2026-12-06"), now); !errors.Is(err, ErrDayTooLate) {
		t.Errorf("tomorrow with no day ahead: %v", err)
	}
	if err := narrow.Check(day("2026-12-05"), now); err != nil {
		t.Errorf("today with no day ahead: %v", err)
	}
}

func TestDistinctRoute(t *testing.T) {
	if !DistinctRoute("CNSHA", "NLRTM") || DistinctRoute("CNSHA", "CNSHA") {
		t.Fatal("DistinctRoute")
	}
}
