package api

import (
	"math"
	"strconv"
	"time"

	"rates/internal/domain"
	"rates/internal/store"
)

// appendRates writes {"rates":[...]} with one item per day from q.To down to q.From, from the
// stats in chunks (days outside the range are skipped). Items carry their keys in the order
// count, day, price, as the service this API replaces wrote them; count is null on a day
// without prices and price is null on a day without an average (domain.HasAverage).
func appendRates(b []byte, q RatesQuery, chunks ...[]store.DayStat) []byte {
	first := epochDay(q.From)
	n := q.Days()
	// slot[i] is the stats of the day first+i, or nil for a day without prices. Most ranges
	// fit the array on the stack.
	var small [64]*store.DayStat
	var slot []*store.DayStat
	if n <= len(small) {
		slot = small[:n]
	} else {
		slot = make([]*store.DayStat, n)
	}
	for _, stats := range chunks {
		for i := range stats {
			if d := epochDay(stats[i].Day) - first; d >= 0 && d < int64(n) {
				slot[d] = &stats[i]
			}
		}
	}
	b = append(b, `{"rates":[`...)
	for d := n - 1; d >= 0; d-- {
		if d < n-1 {
			b = append(b, ',')
		}
		b = append(b, `{"count":`...)
		s := slot[d]
		if s != nil {
			b = strconv.AppendInt(b, s.Count, 10)
		} else {
			b = append(b, "null"...)
		}
		b = append(b, `,"day":"`...)
		b = appendDate(b, first+int64(d))
		b = append(b, `","price":`...)
		if s != nil && domain.HasAverage(s.Count) {
			b = appendPythonFloat(b, float64(s.Sum)/float64(s.Count))
		} else {
			b = append(b, "null"...)
		}
		b = append(b, '}')
	}
	return append(b, "]}\n"...)
}

// epochDay is the number of days from 1970-01-01 to day, a UTC midnight.
func epochDay(day time.Time) int64 { return day.Unix() / 86400 }

// appendDate writes the day epochDay days after 1970-01-01 as YYYY-MM-DD, like
// time.Time.AppendFormat(b, time.DateOnly) for the years 1-9999 that queries can name, without
// the time.Time arithmetic: an answer writes one date per day of its range.
func appendDate(b []byte, epochDay int64) []byte {
	// The days-to-civil algorithm of Howard Hinnant's chrono-compatible date algorithms, over
	// eras of 400 years starting on March 1st; z >= 0 from year 1 on.
	z := epochDay + 719468
	era := z / 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	day := doy - (153*mp+2)/5 + 1
	month := mp + 3
	if month > 12 {
		month -= 12
	}
	year := yoe + era*400
	if month <= 2 {
		year++
	}
	//nolint:gosec // G115: each of these is a digit 0-9 for the years 1-9999
	return append(b,
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+month/10), byte('0'+month%10), '-',
		byte('0'+day/10), byte('0'+day%10))
}

// appendPythonFloat writes f the way Python's repr (and so its json module) does: the
// shortest string that reads back as f, always with a decimal point or an exponent, so a
// whole number is written 1155.0 and typed clients keep receiving a float.
func appendPythonFloat(b []byte, f float64) []byte {
	if abs := math.Abs(f); abs != 0 && (abs < 1e-4 || abs >= 1e16) {
		return strconv.AppendFloat(b, f, 'e', -1, 64)
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, 'f', -1, 64)
	for _, c := range b[start:] {
		if c == '.' {
			return b
		}
	}
	return append(b, ".0"...)
}
