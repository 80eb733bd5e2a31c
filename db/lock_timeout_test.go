package db

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

// baseline is the version every later migration builds on; the files up to it predate the rule
// below.
const baseline = 33

// setLockTimeout is the first statement a migration must run (after an optional BEGIN): a lock
// it cannot get then fails the migration, and the deploy, instead of queueing every reader and
// writer of the table behind its wait.
var setLockTimeout = regexp.MustCompile(`(?is)^SET\s+(?:LOCAL\s+|SESSION\s+)?lock_timeout\s*(?:=|\bTO\b)\s*'?\s*(\d+)\s*(ms|s|min)?\s*'?$`)

// checkLockTimeout reports why body does not set a positive lock_timeout before anything else.
func checkLockTimeout(body string) error {
	var stmts []string
	for _, s := range strings.Split(stripComments(body), ";") {
		if s = strings.TrimSpace(s); s != "" {
			stmts = append(stmts, s)
		}
	}
	if len(stmts) > 0 && regexp.MustCompile(`(?i)^(BEGIN|START\s+TRANSACTION)\b`).MatchString(stmts[0]) {
		stmts = stmts[1:]
	}
	if len(stmts) == 0 {
		return fmt.Errorf("no statement")
	}
	m := setLockTimeout.FindStringSubmatch(stmts[0])
	if m == nil {
		return fmt.Errorf("the first statement is %q; set lock_timeout first (SET LOCAL lock_timeout = '5s';)", firstLine(stmts[0]))
	}
	if n, err := strconv.Atoi(m[1]); err != nil || n <= 0 {
		return fmt.Errorf("lock_timeout %s disables the timeout; give it a positive duration", m[1])
	}
	return nil
}

// stripComments removes -- and /* */ comments (the statements this test reads hold no strings
// with such sequences).
func stripComments(s string) string {
	s = regexp.MustCompile(`(?s)/\*.*?\*/`).ReplaceAllString(s, " ")
	return regexp.MustCompile(`--[^\n]*`).ReplaceAllString(s, " ")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// lockTimeoutProblems checks every migration file of fsys numbered above baseline, up and down.
func lockTimeoutProblems(fsys fs.FS) (problems []string, checked int, err error) {
	files, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, 0, err
	}
	for _, f := range files {
		v, _, _ := strings.Cut(path.Base(f), "_")
		version, err := strconv.Atoi(v)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: no version number", f)
		}
		if version <= baseline {
			continue
		}
		body, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, 0, err
		}
		if err := checkLockTimeout(string(body)); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", f, err))
		}
		checked++
	}
	return problems, checked, nil
}

// Every migration file after the baseline, up and down, sets lock_timeout before it takes a lock.
func TestMigrationsAfterTheBaselineSetLockTimeout(t *testing.T) {
	problems, checked, err := lockTimeoutProblems(Migrations)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("%d migration files after %06d checked", checked, baseline)
}

// The selection: files up to the baseline are left alone, every later up and down file is
// checked, and one without lock_timeout is reported.
func TestLockTimeoutRuleAppliesAfterTheBaseline(t *testing.T) {
	without := &fstest.MapFile{Data: []byte("ALTER TABLE prices ADD COLUMN currency text;\n")}
	with := &fstest.MapFile{Data: []byte("SET LOCAL lock_timeout = '5s';\nALTER TABLE prices DROP COLUMN currency;\n")}
	fsys := fstest.MapFS{
		"migrations/000033_baseline.up.sql":   without,
		"migrations/000033_baseline.down.sql": without,
		"migrations/000034_currency.up.sql":   without,
		"migrations/000034_currency.down.sql": with,
		"migrations/000035_other.up.sql":      with,
		"migrations/000035_other.down.sql":    with,
	}
	problems, checked, err := lockTimeoutProblems(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if checked != 4 || len(problems) != 1 || !strings.HasPrefix(problems[0], "migrations/000034_currency.up.sql: ") {
		t.Fatalf("checked %d, problems %q; want 4 checked and 000034's up file reported", checked, problems)
	}
}

// testdata holds the fixtures of the check.
var testdata = os.DirFS(".")

// The check itself, on fixtures: it accepts the three documented forms and refuses a file that
// sets no lock_timeout, sets it too late, sets it to 0 or only mentions it in a comment.
func TestLockTimeoutCheck(t *testing.T) {
	files, err := fs.Glob(testdata, "testdata/lock_timeout/*.sql")
	if err != nil || len(files) < 4 {
		t.Fatalf("fixtures: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(path.Base(f), func(t *testing.T) {
			body, err := fs.ReadFile(testdata, f)
			if err != nil {
				t.Fatal(err)
			}
			err = checkLockTimeout(string(body))
			if wantOK := strings.HasPrefix(path.Base(f), "ok_"); (err == nil) != wantOK {
				t.Fatalf("check = %v, want ok %t", err, wantOK)
			}
		})
	}
}
