package api

import (
	"math"
	"strconv"
	"time"

	"rates/internal/domain"
	"rates/internal/store"
)

// appendRates writes {"rates":[...]} with one item per day from q.To down to q.From. Items
// carry their keys in the order count, day, price, as the service this API replaces wrote
// them; count is null on a day without prices and price is null on a day without an average (domain.HasAverage).
func appendRates(b []byte, q RatesQuery, stats []store.DayStat) []byte {
	byDay := make(map[int64]store.DayStat, len(stats))
	for _, s := range stats {
		byDay[s.Day.Unix()] = s
	}
	b = append(b, `{"rates":[`...)
	for day, i := q.To, 0; !day.Before(q.From); day, i = day.AddDate(0, 0, -1), i+1 {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"count":`...)
		s, ok := byDay[day.Unix()]
		if ok {
			b = strconv.AppendInt(b, s.Count, 10)
		} else {
			b = append(b, "null"...)
		}
		b = append(b, `,"day":"`...)
		b = day.AppendFormat(b, time.DateOnly)
		b = append(b, `","price":`...)
		if ok && domain.HasAverage(s.Count) {
			b = appendPythonFloat(b, float64(s.Sum)/float64(s.Count))
		} else {
			b = append(b, "null"...)
		}
		b = append(b, '}')
	}
	return append(b, "]}\n"...)
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
