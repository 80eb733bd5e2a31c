package ratesmix

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// Draw yields valid queries in the proportions and ranges the mix promises.
func TestDraw(t *testing.T) {
	d := Data{
		Routes:  [][2]string{{"CNSHA", "NLRTM"}, {"CNYTN", "USLAX"}, {"DEHAM", "CNSHA"}},
		Regions: []string{"china", "europe"},
		First:   time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Last:    time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC),
	}
	isPort := func(c string) bool { return len(c) == 5 && strings.ToUpper(c) == c }
	var portPairs, regionPairs int
	paths := d.Draw(5000, 1)
	for _, p := range paths {
		q, err := url.ParseQuery(strings.TrimPrefix(p, "/rates?"))
		if err != nil {
			t.Fatal(err)
		}
		from, err1 := time.Parse(time.DateOnly, q.Get("date_from"))
		to, err2 := time.Parse(time.DateOnly, q.Get("date_to"))
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: dates %v %v", p, err1, err2)
		}
		if days := int(to.Sub(from).Hours()/24) + 1; days < 1 || days > 60 {
			t.Fatalf("%s: %d days, want 1-60", p, days)
		}
		if from.Before(d.First.AddDate(0, 0, -30)) || from.After(d.Last) {
			t.Fatalf("%s: starts outside the 30 days before the data and its last day", p)
		}
		orig, dest := q.Get("orig_code"), q.Get("dest_code")
		switch {
		case isPort(orig) && isPort(dest):
			if !slices.Contains(d.Routes, [2]string{orig, dest}) {
				t.Fatalf("%s: a port pair that is not a route of the data", p)
			}
			portPairs++
		case !isPort(orig) && !isPort(dest):
			regionPairs++
		}
	}
	if share := float64(portPairs) / float64(len(paths)); share < 0.5 || share > 0.7 {
		t.Errorf("routes with prices: %.2f of the requests, want about 0.6", share)
	}
	if share := float64(regionPairs) / float64(len(paths)); share < 0.1 || share > 0.3 {
		t.Errorf("region pairs: %.2f of the requests, want about 0.2", share)
	}
	if slices.Equal(paths[:100], d.Draw(100, 2)) {
		t.Error("another seed drew the same requests")
	}
}
