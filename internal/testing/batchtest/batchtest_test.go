package batchtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"testing"

	"rates/internal/batchstore"
)

func checkedOf(t *testing.T, csv string) (batchstore.Checked, string) {
	t.Helper()
	p := NewPart(io.NopCloser(strings.NewReader(csv)), 5)
	rows, err := io.ReadAll(p)
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Checked()
	if err != nil {
		t.Fatal(err)
	}
	return c, string(rows)
}

// The identity of a batch depends on its rows, not on their order or their split into parts.
func TestIdentityIgnoresOrderAndParts(t *testing.T) {
	rows := []string{"AAAAA,BBBBB,2026-01-01,100", "AAAAA,BBBBB,2026-01-01,100", "CCCCC,DDDDD,2026-01-02,200", "BBBBB,AAAAA,2026-01-03,300"}
	digest := func(parts ...[]string) string {
		var ds []batchstore.Digest
		for _, p := range parts {
			c, _ := checkedOf(t, Header+"\n"+strings.Join(p, "\n")+"\n")
			ds = append(ds, c.Digest)
		}
		return Identity(ds)
	}
	whole := digest(rows)
	for name, got := range map[string]string{
		"reversed":          digest([]string{rows[3], rows[2], rows[1], rows[0]}),
		"in two parts":      digest(rows[:1], rows[1:]),
		"in parts reversed": digest(rows[2:], rows[:2]),
	} {
		if got != whole {
			t.Errorf("%s: %s, want %s", name, got, whole)
		}
	}
	for name, got := range map[string]string{
		"a row less":     digest(rows[1:]),
		"a row once":     digest(rows[1:], rows[2:]),
		"another price":  digest(append([]string{"AAAAA,BBBBB,2026-01-01,101"}, rows[1:]...)),
		"an empty batch": digest(nil),
	} {
		if got == whole {
			t.Errorf("%s: the same identity as the batch", name)
		}
	}
}

func TestPartChecksRows(t *testing.T) {
	csv := Header + "\nAAAAA,BBBBB,2026-01-01,100\naaaaa,BBBBB,2026-02-30,0\nAAAAA,BBBBB\n"
	c, rows := checkedOf(t, csv)
	var got []string
	for _, p := range c.Problems {
		got = append(got, fmt.Sprintf("%d:%s", p.Line, p.Column))
	}
	if c.Rows != 3 || c.BadRows != 2 || strings.Join(got, " ") != "3:orig_code 3:day 3:price 4:" {
		t.Errorf("checked %+v, problems %v", c, got)
	}
	wantRows := "2\tAAAAA\tBBBBB\t2026-01-01\t100\n3\t\\N\tBBBBB\t\\N\t\\N\n4\t\\N\t\\N\t\\N\t\\N\n"
	if rows != wantRows {
		t.Errorf("COPY rows %q, want %q", rows, wantRows)
	}
	sum := sha256.Sum256([]byte(csv))
	if c.Bytes != int64(len(csv)) || c.SHA256 != hex.EncodeToString(sum[:]) || strings.Join(c.Codes, ",") != "AAAAA,BBBBB" {
		t.Errorf("bytes %d, sha256 %s, codes %v", c.Bytes, c.SHA256, c.Codes)
	}
	for _, bad := range []string{"", "price,day\n"} {
		if c, _ := checkedOf(t, bad); !c.Unreadable || len(c.Problems) != 1 {
			t.Errorf("%q: %+v, want unreadable", bad, c)
		}
	}
}
