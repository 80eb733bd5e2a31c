package gendump

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"rates/internal/pgdump"
)

// TestSeedScannerReadsDump runs the default dump through the seeder's parser.
func TestSeedScannerReadsDump(t *testing.T) {
	data, st := defaultOutput(t)
	sc := pgdump.NewScanner(bytes.NewReader(data))
	rows := map[string]int64{}
	copies := 0
	for {
		stmt, err := sc.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("seed scanner: %v", err)
		}
		switch stmt.Kind {
		case pgdump.KindCopy:
			copies++
			cr := sc.CopyRows(stmt)
			if _, err := io.Copy(io.Discard, cr); err != nil {
				t.Fatalf("COPY %s at line %d: %v", stmt.Table, stmt.Line, err)
			}
			if cr.Err() != nil {
				t.Fatalf("COPY %s at line %d: %v", stmt.Table, stmt.Line, cr.Err())
			}
			rows[stmt.Table] += cr.Rows
		case pgdump.KindInsert:
			t.Errorf("line %d: unexpected INSERT into %s", stmt.Line, stmt.Table)
		}
	}
	if copies != 3 {
		t.Errorf("%d COPY blocks, want 3", copies)
	}
	want := map[string]int64{"regions": st.Regions, "ports": st.Ports, "prices": st.Prices}
	for table, n := range want {
		if rows[table] != n {
			t.Errorf("%s: scanner read %d rows, Stats say %d", table, rows[table], n)
		}
	}
}
