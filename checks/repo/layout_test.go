package repo

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The layout in docs/development.md is how a reader finds a package: every directory of Go
// code under cmd/ and internal/ (internal/testing's by its parent) is named there, and every
// path the layout names exists.
func TestLayoutNamesEveryPackage(t *testing.T) {
	doc := readFile(t, "docs/development.md")
	_, after, ok := strings.Cut(doc, "## Layout")
	if !ok {
		t.Fatal("docs/development.md has no Layout section")
	}
	block := regexp.MustCompile("(?s)```\n(.*?)```").FindStringSubmatch(after)
	if block == nil {
		t.Fatal("the Layout section has no code block")
	}
	named := map[string]bool{}
	for _, line := range strings.Split(block[1], "\n") {
		if f := strings.Fields(line); len(f) > 0 && !strings.HasPrefix(line, " ") {
			named[strings.TrimSuffix(strings.TrimSuffix(f[0], "/..."), "/")] = true
		}
	}
	for _, parent := range []string{"cmd", "internal"} {
		err := filepath.WalkDir(filepath.Join(root, parent), func(path string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			rel = filepath.ToSlash(rel)
			if rel == parent || strings.HasPrefix(rel, "internal/testing/") || strings.Contains(rel, "/testdata") {
				return nil
			}
			if !hasGo(t, path) || named[rel] || named[filepath.ToSlash(filepath.Dir(rel))] {
				return nil
			}
			t.Errorf("docs/development.md's layout does not name %s", rel)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for p := range named {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("docs/development.md's layout names %s, which does not exist", p)
		}
	}
}

func hasGo(t *testing.T, dir string) bool {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".go") {
			return true
		}
	}
	return false
}
