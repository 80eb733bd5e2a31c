package gendump

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"testing"
)

// The default dump's figures, computed from the committed db/seed/rates.sql by tools other
// than this package, so that a change of the generator's output shows here even when the
// committed dump is regenerated with it (TestCommittedDump alone would follow along):
//
//	sha256sum db/seed/rates.sql
//	awk -F'\t' '/^COPY public\./{t=$0; sub(/^COPY public\./,"",t); sub(/ .*/,"",t); next}
//	  /^\\\.$/{t=""; next} t!=""{n[t]++; if(t=="prices"){s+=$4; r[$1">"$2]=1}} END{...}' db/seed/rates.sql
//
// A deliberate change of the generator updates them in the same commit, with these commands.
var golden = struct {
	sha256                 string
	regions, ports, prices int64
	priceSum               int64
	minPrice, maxPrice     int64
	routes                 int
	// The README's first example, CNSHA to NLRTM on 2026-01-01: count and sum.
	exampleCount, exampleSum int64
}{
	sha256:  "b6318c49e77d4930106a3e9ae023bc18317e05fbdc75aef1ba1cf65dff61e627",
	regions: 32, ports: 150, prices: 50000,
	priceSum: 86107006, minPrice: 138, maxPrice: 10069,
	routes:       300,
	exampleCount: 72, exampleSum: 166620,
}

func TestDefaultOutputMatchesGoldenValues(t *testing.T) {
	data, _ := defaultOutput(t)
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != golden.sha256 {
		t.Errorf("sha256 of the default output = %s, golden %s", got, golden.sha256)
	}
	d := parseDump(t, data)
	for table, want := range map[string]int64{"regions": golden.regions, "ports": golden.ports, "prices": golden.prices} {
		if got := int64(len(d[table])); got != want {
			t.Errorf("%s: %d rows, golden %d", table, got, want)
		}
	}
	var total, minP, maxP, exCount, exSum int64
	routes := map[string]bool{}
	for i, p := range d["prices"] {
		v, err := strconv.ParseInt(*p[3], 10, 64)
		if err != nil {
			t.Fatalf("price %d: %v", i+1, err)
		}
		total += v
		if i == 0 || v < minP {
			minP = v
		}
		maxP = max(maxP, v)
		routes[*p[0]+">"+*p[1]] = true
		if *p[0] == "CNSHA" && *p[1] == "NLRTM" && *p[2] == "2026-01-01" {
			exCount++
			exSum += v
		}
	}
	if total != golden.priceSum || minP != golden.minPrice || maxP != golden.maxPrice {
		t.Errorf("prices sum %d, min %d, max %d; golden %d, %d, %d", total, minP, maxP, golden.priceSum, golden.minPrice, golden.maxPrice)
	}
	if len(routes) != golden.routes {
		t.Errorf("%d routes, golden %d", len(routes), golden.routes)
	}
	if exCount != golden.exampleCount || exSum != golden.exampleSum {
		t.Errorf("CNSHA>NLRTM on 2026-01-01: %d prices summing to %d, golden %d and %d", exCount, exSum, golden.exampleCount, golden.exampleSum)
	}
}
