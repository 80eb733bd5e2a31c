package gendump

import (
	"bytes"
	"os"
	"testing"
)

const (
	committedDump = "../../../db/seed/rates.sql"
	regenerate    = "go run ./cmd/gendump -out db/seed/rates.sql"
)

// TestCommittedDump keeps db/seed/rates.sql equal to what the generator writes by default.
func TestCommittedDump(t *testing.T) {
	want, _ := defaultOutput(t)
	got, err := os.ReadFile(committedDump)
	if err != nil {
		t.Fatalf("%v; regenerate it with `%s` from the repository root", err, regenerate)
	}
	if bytes.Equal(got, want) {
		return
	}
	line := 1
	for i := 0; i < min(len(got), len(want)) && got[i] == want[i]; i++ {
		if got[i] == '\n' {
			line++
		}
	}
	t.Fatalf("db/seed/rates.sql differs from the generator's default output from line %d on "+
		"(%d bytes, generator %d): regenerate it with `%s` from the repository root; never edit it by hand",
		line, len(got), len(want), regenerate)
}
