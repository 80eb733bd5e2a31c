package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"rates/internal/testing/gendump"
)

// writeFile puts exactly the generator's output at path, replacing what was there, and leaves
// no temporary file behind.
func TestWriteFileReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rates.sql")
	if err := os.WriteFile(path, []byte("old dump"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := gendump.DefaultOptions()
	opts.Prices = 1000
	st, err := writeFile(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if _, err := gendump.Write(&want, opts); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want.Bytes()) || st.Prices != 1000 {
		t.Fatalf("file holds %d bytes (%v), generator %d; %d prices", len(got), err, want.Len(), st.Prices)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the dump", len(entries))
	}
	if _, err := writeFile(filepath.Join(dir, "missing", "rates.sql"), opts); err == nil {
		t.Fatal("writeFile into a missing directory succeeded")
	}
}
