package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"rates/internal/testing/ratesmix"
)

func TestFigures(t *testing.T) {
	if got := median([]time.Duration{5, 1, 3}); got != 3 {
		t.Errorf("median of 5, 1, 3 = %d, want 3", got)
	}
	in := []time.Duration{4, 2, 9, 1}
	if got := median(in); got != 4 || in[0] != 4 {
		t.Errorf("median of 4, 2, 9, 1 = %d (input now %v), want the upper middle 4 and the input untouched", got, in)
	}
	if got := ms(1500 * time.Microsecond); got != "2 ms" {
		t.Errorf("ms(1.5ms) = %q, want 2 ms (rounded)", got)
	}
	if got := (wrkResult{Requests: 3000, DurationUS: 2_000_000}).rps(); got != 1500 {
		t.Errorf("rps = %v, want 1500", got)
	}
	m := medianRun([]ingestRun{{took: 3 * time.Second, wal: 3}, {took: time.Second, wal: 1}, {took: 2 * time.Second, wal: 2}})
	if m.took != 2*time.Second || m.wal != 2 || m.timeCell() != "2000 ms (1000 ms-3000 ms)" {
		t.Errorf("medianRun of 3 s, 1 s, 2 s = %+v (%s), want the 2 s run with its range", m, m.timeCell())
	}
	if got := (ingestRun{took: time.Second}).timeCell(); got != "1000 ms" {
		t.Errorf("time of a single run = %q, want 1000 ms", got)
	}
}

func TestCacheCellAndScript(t *testing.T) {
	r := wrkResult{lookups: map[string]float64{"hit": 1, "days": 2, "miss": 1}}
	if got := r.cacheCell(); got != "25.0% / 50.0% / 25.0%" {
		t.Errorf("cacheCell = %q", got)
	}
	if got := (wrkResult{}).cacheCell(); got != "cache off" {
		t.Errorf("cacheCell without lookups = %q, want cache off", got)
	}
	mix := &ratesmix.Data{Routes: [][2]string{{"CNSHA", "NLRTM"}}, Regions: []string{"china"},
		First: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Last: time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)}
	path, err := wrkScript(scenario{name: "mix", mix: mix})
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(path)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// 30 days before the data to its last day, plus 60 days of length: the day table.
	for _, want := range []string{`{"CNSHA", "NLRTM"}`, `"2025-12-02"`, `"2026-03-31"`, "math.random(61)", "math.random(60)", `args[1] == "warm"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("script lacks %s:\n%.500s", want, b)
		}
	}
}

// The 304 scenario sends each path with its own tag; rows give the share of the limit.
func TestRevalidationScriptAndShare(t *testing.T) {
	path, err := wrkScript(scenario{name: "304", paths: []string{"/rates?a=1", "/rates?b=2"}, etags: []string{`"t1"`, `"t2"`}})
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(path)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`local paths = {"/rates?a=1", "/rates?b=2"}`, `local etags = {"\"t1\"", "\"t2\""}`, `["If-None-Match"] = etags[i]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("script lacks %s:\n%s", want, b)
		}
	}
	limit := wrkResult{Requests: 4000, DurationUS: 1_000_000}
	if row := (wrkResult{Requests: 3000, DurationUS: 1_000_000}).row("x", 64, limit); !strings.Contains(row, "| 3000 | 75% |") {
		t.Errorf("row = %s, want 3000 requests/s at 75%% of the limit", row)
	}
}
