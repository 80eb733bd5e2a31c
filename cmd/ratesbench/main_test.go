package main

import (
	"testing"
	"time"
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
}
