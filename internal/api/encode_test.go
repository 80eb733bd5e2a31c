package api

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"rates/internal/store"
)

// Expected strings are what Python's repr() prints for the same float.
func TestAppendPythonFloat(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{1155, "1155.0"},
		{0, "0.0"},
		{1154.3333333333333, "1154.3333333333333"},
		{3463.0 / 3, "1154.3333333333333"},
		{1111.9166666666667, "1111.9166666666667"},
		{0.1, "0.1"},
		{0.0001, "0.0001"},
		{0.00001, "1e-05"},
		{0.000015, "1.5e-05"},
		{1e15, "1000000000000000.0"},
		{9999999999999998, "9999999999999998.0"},
		{1e16, "1e+16"},
		{1.5e16, "1.5e+16"},
		{2147483647, "2147483647.0"},
		{-1.5, "-1.5"},
		{math.Copysign(0, -1), "-0.0"},
	}
	for _, tt := range tests {
		if got := string(appendPythonFloat(nil, tt.in)); got != tt.want {
			t.Errorf("appendPythonFloat(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestAppendRates(t *testing.T) {
	q := RatesQuery{From: day(2021, 1, 1), To: day(2021, 1, 4)}
	stats := []store.DayStat{
		{Day: day(2021, 1, 1), Count: 3, Sum: 3463},
		{Day: day(2021, 1, 2), Count: 2, Sum: 2000},
		{Day: day(2021, 1, 4), Count: 4, Sum: 4620},
	}
	want := `{"rates":[` +
		`{"count":4,"day":"2021-01-04","price":1155.0},` +
		`{"count":null,"day":"2021-01-03","price":null},` +
		`{"count":2,"day":"2021-01-02","price":null},` +
		`{"count":3,"day":"2021-01-01","price":1154.3333333333333}]}` + "\n"
	if got := string(appendRates(nil, q, stats)); got != want {
		t.Fatalf("appendRates:\n got %s\nwant %s", got, want)
	}
}

func TestAppendRatesYearOne(t *testing.T) {
	q := RatesQuery{From: day(1, 1, 1), To: day(1, 1, 2)}
	want := `{"rates":[{"count":null,"day":"0001-01-02","price":null},{"count":null,"day":"0001-01-01","price":null}]}` + "\n"
	if got := string(appendRates(nil, q, nil)); got != want {
		t.Fatalf("appendRates:\n got %s\nwant %s", got, want)
	}
}

// Every day a query can name, against the standard library's formatting.
func TestAppendDateEveryDay(t *testing.T) {
	var got, want []byte
	for d := day(1, 1, 1); d.Year() <= 9999; d = d.AddDate(0, 0, 1) {
		got = appendDate(got[:0], epochDay(d))
		want = d.AppendFormat(want[:0], time.DateOnly)
		if !bytes.Equal(got, want) {
			t.Fatalf("appendDate(%d) = %s, want %s", epochDay(d), got, want)
		}
	}
}

// A range longer than the stack array, with the days in no particular order (the database
// returns them unsorted) and one day outside the range, which is ignored.
func TestAppendRatesLongRangeUnsorted(t *testing.T) {
	q := RatesQuery{From: day(2020, 12, 1), To: day(2021, 3, 31)}
	stats := []store.DayStat{
		{Day: day(2021, 3, 31), Count: 3, Sum: 300},
		{Day: day(2020, 12, 1), Count: 1, Sum: 7},
		{Day: day(2021, 2, 28), Count: 4, Sum: 402},
		{Day: day(2021, 4, 1), Count: 9, Sum: 9},
	}
	var want strings.Builder
	want.WriteString(`{"rates":[`)
	for d := q.To; !d.Before(q.From); d = d.AddDate(0, 0, -1) {
		if d != q.To {
			want.WriteByte(',')
		}
		count, price := "null", "null"
		switch d {
		case day(2021, 3, 31):
			count, price = "3", "100.0"
		case day(2020, 12, 1):
			count = "1"
		case day(2021, 2, 28):
			count, price = "4", "100.5"
		}
		fmt.Fprintf(&want, `{"count":%s,"day":"%s","price":%s}`, count, d.Format(time.DateOnly), price)
	}
	want.WriteString("]}\n")
	if got := string(appendRates(nil, q, stats)); got != want.String() {
		t.Fatalf("appendRates:\n got %s\nwant %s", got, want.String())
	}
}

func BenchmarkAppendRates31Days(b *testing.B) {
	q := RatesQuery{From: day(2021, 1, 1), To: day(2021, 1, 31)}
	var stats []store.DayStat
	for d := q.From; !d.After(q.To); d = d.AddDate(0, 0, 1) {
		stats = append(stats, store.DayStat{Day: d, Count: 24, Sum: 24*1100 + int64(d.Day())})
	}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendRates(buf[:0], q, stats)
	}
}
