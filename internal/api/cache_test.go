package api

import (
	"fmt"
	"testing"
	"time"

	"rates/internal/store"
)

// Answers asked once must not push out the months that later queries over the same pair are
// built from, and the other way round: each kind stays within its own share of the budget.
func TestCacheKindsKeepTheirOwnShare(t *testing.T) {
	gen := store.Generation{Epoch: store.Epoch{Table: 1}, Data: 7}
	month := func(i int) (string, cacheEntry) {
		days := make([]store.DayStat, 31)
		for d := range days {
			days[d] = store.DayStat{Day: time.Date(2026, 1, d+1, 0, 0, 0, 0, time.UTC), Count: 3, Sum: int64(300 + i)}
		}
		return fmt.Sprintf("p:AAAAA\x00p:BBBBB\x00%04d-01", 2000+i), cacheEntry{days: days}
	}
	answer := func(i int) (string, cacheEntry) {
		return fmt.Sprintf("2026-01-01\x002026-01-%02d\x00AAAAA\x00Q%04d", 1+i%28, i), cacheEntry{status: 200, body: make([]byte, 900)}
	}
	for _, tc := range []struct {
		name         string
		keep, flood  func(int) (string, cacheEntry)
		answersFlood bool
	}{
		{"answers flood, months stay", month, answer, true},
		{"months flood, answers stay", answer, month, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const budget = 256 << 10
			answers, months := newCaches(budget)
			keepIn, floodIn := answers, months
			if tc.answersFlood {
				keepIn, floodIn = months, answers
			}
			for _, c := range []*answerCache{answers, months} {
				c.advance(gen)
			}
			var kept []string
			for i := range 8 {
				k, e := tc.keep(i)
				keepIn.put([]byte(k), gen, e)
				kept = append(kept, k)
			}
			for i := range 2000 {
				k, e := tc.flood(i)
				floodIn.put([]byte(k), gen, e)
			}
			for _, k := range kept {
				if _, ok := keepIn.get([]byte(k), gen); !ok {
					t.Fatalf("entry %q was pushed out by the other kind", k)
				}
			}
			for kind, c := range []*answerCache{answers, months} {
				if c.bytes > c.maxBytes {
					t.Errorf("kind %d holds %d bytes, more than its share %d", kind, c.bytes, c.maxBytes)
				}
			}
			if got := answers.maxBytes + months.maxBytes; got != budget {
				t.Errorf("shares add up to %d, want the budget %d", got, budget)
			}
			if floodIn.bytes < floodIn.maxBytes/2 {
				t.Errorf("the flooding kind holds only %d of its %d bytes: eviction dropped too much", floodIn.bytes, floodIn.maxBytes)
			}
			if _, ok := keepIn.get([]byte(kept[0]), store.Generation{Epoch: store.Epoch{Table: 1}, Data: 8}); ok {
				t.Fatal("an entry was served for another generation")
			}
		})
	}
}

// Answers enter the cache the second time they are asked, months the first.
func TestAnswersAreAdmittedOnTheirSecondRequest(t *testing.T) {
	answers, months := newCaches(1 << 20)
	for i, want := range []bool{false, true, true} {
		if got := answers.admit([]byte("q1")); got != want {
			t.Fatalf("request %d of q1: admitted %t, want %t", i+1, got, want)
		}
	}
	if answers.admit([]byte("q2")) {
		t.Fatal("q2 admitted on its first request")
	}
	if !months.admit([]byte("m1")) {
		t.Fatal("a month was not admitted at once")
	}
}
