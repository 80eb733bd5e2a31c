// Package reference locates the public dump that the API this service replaces served. Tests
// and benchmarks compare against it; it is read from ../shared beside the repository and never
// copied into the project.
package reference

import (
	"os"
	"path/filepath"
)

// SHA256 of the reference dump, so a test notices if it is handed another file.
const SHA256 = "727f1a7f9ca0635e26e69fe4f712efdb2a6ab181a19e9c6cef41f5969128306f"

// Find returns the path of ../shared/reference/rates.sql next to the repository root, or ""
// when it is absent. RATES_REFERENCE_DUMP overrides the location; a file missing there counts
// as absent too, so pointing it nowhere runs the tests as a clone without ../shared does.
func Find() string {
	if p := os.Getenv("RATES_REFERENCE_DUMP"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return ""
		}
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "..", "shared", "reference", "rates.sql")
			if _, err := os.Stat(p); err == nil {
				return p
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}
