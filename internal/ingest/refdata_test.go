package ingest

import (
	"bytes"
	"strings"
	"testing"

	"rates/internal/domain"
)

func noSourceErr() error { return nil }

func TestParseReference(t *testing.T) {
	for _, tc := range []struct {
		name    string
		kind    DataKind
		in      string
		rows    int
		bad     int64
		fatal   bool
		reason  string
		errLine int64
	}{
		{"ports", DataPorts, "code,name,parent_slug\nAAAAA,A,north\nBBBBB,\"B, quoted\",north\n", 2, 0, false, "", 0},
		{"root region", DataRegions, "slug,name,parent_slug\ntop,Top,\n", 1, 0, false, "", 0},
		{"bom header", DataPorts, "\uFEFFcode,name,parent_slug\nAAAAA,A,north\n", 1, 0, false, "", 0},
		{"empty", DataPorts, "", 0, 0, true, "batch is empty", 1},
		{"wrong header", DataRegions, "code,name,parent_slug\n", 0, 0, true, "header must be slug,name,parent_slug", 1},
		{"field count", DataPorts, "code,name,parent_slug\nAAAAA,A\n", 0, 1, false, "expected 3 fields, got 2", 2},
		{"empty name", DataPorts, "code,name,parent_slug\nAAAAA, ,north\n", 0, 1, false, "name is empty", 2},
		{"control char", DataPorts, "code,name,parent_slug\nAAAAA,a\x01b,north\n", 0, 1, false, "control character", 2},
		{"self parent", DataRegions, "slug,name,parent_slug\nab,A,ab\n", 0, 1, false, "its own parent", 2},
		{"duplicate", DataRegions, "slug,name,parent_slug\nab,A,\nab,B,\n", 1, 1, false, "already on line 2", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := parseReference(tc.kind, strings.NewReader(tc.in), 10, noSourceErr)
			if err != nil {
				t.Fatal(err)
			}
			if len(set.rows) != tc.rows || set.badRows != tc.bad || set.fatal != tc.fatal {
				t.Fatalf("rows %d, bad %d, fatal %t; want %d, %d, %t (%+v)", len(set.rows), set.badRows, set.fatal, tc.rows, tc.bad, tc.fatal, set.errs)
			}
			if tc.reason != "" && (len(set.errs) == 0 || !strings.Contains(set.errs[0].Reason, tc.reason) || set.errs[0].Line != tc.errLine) {
				t.Fatalf("errors %+v, want line %d mentioning %q", set.errs, tc.errLine, tc.reason)
			}
		})
	}
}

// FuzzParseReference: whatever the input, parsing ends without panic, and every row it accepts
// has the shapes the database requires.
func FuzzParseReference(f *testing.F) {
	f.Add([]byte("code,name,parent_slug\nAAAAA,A,north\n"), false)
	f.Add([]byte("slug,name,parent_slug\ntop,Top,\nsub,Sub,top\n"), true)
	f.Add([]byte("slug,name,parent_slug\n\"a\nb\",x,\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, regions bool) {
		kind := DataPorts
		if regions {
			kind = DataRegions
		}
		set, err := parseReference(kind, bytes.NewReader(data), 5, noSourceErr)
		if err != nil {
			t.Fatal(err)
		}
		if len(set.errs) > 5 {
			t.Fatalf("%d errors listed, limit 5", len(set.errs))
		}
		seen := map[string]bool{}
		for _, r := range set.rows {
			okKey := kind == DataPorts && domain.IsPortCode(r.key) || kind == DataRegions && domain.IsRegionSlug(r.key)
			okParent := r.parent == "" && kind == DataRegions || domain.IsRegionSlug(r.parent)
			if !okKey || !okParent || checkName(r.name) != "" || seen[r.key] {
				t.Fatalf("accepted row %+v", r)
			}
			seen[r.key] = true
		}
	})
}
