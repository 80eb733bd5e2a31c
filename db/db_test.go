package db

import (
	"io/fs"
	"regexp"
	"testing"
)

// Every migration has an up and a down file, versions are unique, and names follow
// golang-migrate's VERSION_title.(up|down).sql.
func TestMigrationFiles(t *testing.T) {
	files, err := fs.Glob(Migrations, "migrations/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("embedded migrations: %v %v", files, err)
	}
	name := regexp.MustCompile(`^migrations/(\d{6})_([a-z0-9_]+)\.(up|down)\.sql$`)
	type pair struct{ title, up, down string }
	versions := map[string]*pair{}
	for _, f := range files {
		m := name.FindStringSubmatch(f)
		if m == nil {
			t.Errorf("%s: not VERSION_title.(up|down).sql", f)
			continue
		}
		p := versions[m[1]]
		if p == nil {
			p = &pair{title: m[2]}
			versions[m[1]] = p
		}
		if p.title != m[2] {
			t.Errorf("version %s has two titles: %s and %s", m[1], p.title, m[2])
		}
		if m[3] == "up" {
			p.up = f
		} else {
			p.down = f
		}
		if body, err := fs.ReadFile(Migrations, f); err != nil || len(body) == 0 {
			t.Errorf("%s: empty or unreadable (%v)", f, err)
		}
	}
	for v, p := range versions {
		if p.up == "" || p.down == "" {
			t.Errorf("version %s: up %q, down %q; both are needed", v, p.up, p.down)
		}
	}
}
