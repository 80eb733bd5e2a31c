package repo

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const root = "../.."

// git runs git in dir and fails the test on an error.
func git(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// largeFiles runs .ci/large-files.sh in dir with a limit of max bytes.
func largeFiles(t *testing.T, dir, limit string) (string, error) {
	t.Helper()
	script, err := filepath.Abs(filepath.Join(root, ".ci", "large-files.sh"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "MAX_TRACKED_BYTES="+limit)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestLargeFilesCheck(t *testing.T) {
	tests := []struct {
		name   string
		files  map[string]int // path -> size in bytes
		staged bool           // added to the index but not committed
		fail   []string       // paths the check must name; none: it passes
	}{
		{"small files", map[string]int{"a.go": 100, "docs/b.md": 1000}, false, nil},
		{"a build output", map[string]int{"rates": 1001, "a.go": 10}, false, []string{"rates"}},
		{"staged, not committed", map[string]int{"bin/tool": 5000}, true, []string{"bin/tool"}},
		{"a path with spaces", map[string]int{"my data/x y.csv": 2000}, false, []string{"my data/x y.csv"}},
		{"SQL dumps may be large", map[string]int{"db/seed/rates.sql": 5000, "small.txt": 3}, false, nil},
		{"exactly the limit", map[string]int{"limit.bin": 1000}, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			git(t, dir, "init", "-q")
			for path, size := range tt.files {
				full := filepath.Join(dir, path)
				if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(full, []byte(strings.Repeat("x", size)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			git(t, dir, "add", "-A")
			if !tt.staged {
				git(t, dir, "commit", "-q", "-m", "files")
			}
			out, err := largeFiles(t, dir, "1000")
			if len(tt.fail) == 0 {
				if err != nil {
					t.Fatalf("check failed: %v\n%s", err, out)
				}
				return
			}
			if err == nil {
				t.Fatalf("check passed, want it to name %v:\n%s", tt.fail, out)
			}
			for _, path := range tt.fail {
				if !strings.Contains(out, path) {
					t.Errorf("output does not name %s:\n%s", path, out)
				}
			}
		})
	}
}

// The repository itself passes the check with the limit make lint uses.
func TestNoLargeTrackedFiles(t *testing.T) {
	if out, err := largeFiles(t, root, "2097152"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}
