package main

import (
	"strings"
	"testing"
	"time"
)

func TestBatchTargets(t *testing.T) {
	var b strings.Builder
	writeBatchTargets(&b, map[string]batchRun{
		"1":    {took: 10 * time.Second, rss: 30 << 10, out: loadOutcome{PriceDailyHeldMS: 400}},
		"2":    {took: 7 * time.Second, rss: 40 << 10, out: loadOutcome{PriceDailyHeldMS: 1200}},
		"4":    {took: 8 * time.Second, rss: 200 << 10},
		"copy": {took: 8 * time.Second, rss: 900 << 10},
	}, batchFloors{one: 4 * time.Second, two: 3 * time.Second, routeDays: 600_000, upsert: 2500 * time.Millisecond})
	for _, want := range []string{
		"2 loaders / 1 loader, wall time: 0.70× (target 0.75×): met",
		"2 loaders / `psql \\copy` + price_daily, wall time: 0.88× (target 0.90×): met",
		"4 loaders / 2 loaders, wall time: 1.14× (target 1.00×): NOT met",
		"peak RSS of a loader: 200.00 MB (target 150.00 MB): NOT met",
		"longest hold of price_daily's rows by a publish: 1.20 s (target 1.00 s): NOT met",
		"floor (a): two backends / one inserting the same rows: 0.75×",
		"floor (b): the upsert of the same 600000 route-days alone, commit included: 2.50 s",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("targets lack %q:\n%s", want, b.String())
		}
	}
	if got := string(lastLine([]byte("log line\n{\"batch_id\":3}\n"))); got != `{"batch_id":3}` {
		t.Errorf("lastLine = %q", got)
	}
}
