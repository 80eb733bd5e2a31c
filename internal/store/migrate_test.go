package store_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"rates/db"
	"rates/internal/store"
	"rates/internal/testing/dbtest"
	"rates/internal/testing/pgserver"
)

func newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), pgserver.NewDatabase(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func migrateUp(ctx context.Context, t *testing.T, pool *pgxpool.Pool, files fs.FS) error {
	t.Helper()
	var m *store.Migrator
	var err error
	if files == nil {
		m, err = store.NewMigrator(ctx, pool, dbtest.Discard)
	} else {
		m, err = store.NewMigratorFrom(ctx, pool, dbtest.Discard, files)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	return m.Up(ctx)
}

func schemaVersion(t *testing.T, pool *pgxpool.Pool) (uint, bool) {
	t.Helper()
	v, dirty, err := store.SchemaVersion(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	return v, dirty
}

func relations(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(),
		"SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		out = append(out, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// The embedded migrations up to and including version upTo, as a file system of their own.
func embeddedUpTo(t *testing.T, upTo uint) fstest.MapFS {
	t.Helper()
	out := fstest.MapFS{}
	paths, err := fs.Glob(db.Migrations, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		var v uint
		if _, err := fmt.Sscanf(path.Base(p), "%d_", &v); err != nil {
			t.Fatal(err)
		}
		if v <= upTo {
			b, err := fs.ReadFile(db.Migrations, p)
			if err != nil {
				t.Fatal(err)
			}
			out[p] = &fstest.MapFile{Data: b}
		}
	}
	return out
}

// A migration that fails on a real database (the one that creates price_daily, on a database
// where a table of that name is in the way) is rolled back whole: the recorded version stays
// the one before it, not dirty, nothing of the file remains, and the error names the file and
// PostgreSQL's error without the file's text. Once the cause is gone, the next `up` applies it
// and the rest without `force`, as does the migration task of an older release in between.
func TestFailedMigrationKeepsTheVersionAndRetriesWithoutForce(t *testing.T) {
	ctx := context.Background()
	var failing string
	var before uint
	paths, err := fs.Glob(db.Migrations, "migrations/*.up.sql")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(paths)
	for _, p := range paths {
		b, err := fs.ReadFile(db.Migrations, p)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "CREATE TABLE price_daily") {
			failing = path.Base(p)
			break
		}
		if _, err := fmt.Sscanf(path.Base(p), "%d_", &before); err != nil {
			t.Fatal(err)
		}
	}
	if failing == "" {
		t.Fatal("no embedded migration creates price_daily")
	}
	text, err := fs.ReadFile(db.Migrations, "migrations/"+failing)
	if err != nil {
		t.Fatal(err)
	}

	pool := newPool(t)
	mustExec(t, pool, "CREATE TABLE price_daily (conflicting int)")
	err = migrateUp(ctx, t, pool, nil)
	var me *store.MigrationError
	if !errors.As(err, &me) || me.File != failing || me.Version != before || me.Dirty {
		t.Fatalf("up = %#v (%v), want a MigrationError of %s at version %d, not dirty", me, err, failing, before)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42P07" {
		t.Fatalf("up = %v, want PostgreSQL's duplicate_table error inside", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, failing) || !strings.Contains(msg, `relation "price_daily" already exists`) {
		t.Fatalf("error %q does not name the file and PostgreSQL's error", msg)
	}
	for _, line := range strings.Split(string(text), "\n") {
		if line = strings.TrimSpace(line); len(line) > 12 && strings.Contains(msg, line) {
			t.Fatalf("error carries the file's text (%q):\n%s", line, msg)
		}
	}
	if v, dirty := schemaVersion(t, pool); v != before || dirty {
		t.Fatalf("after the failure: version %d dirty %t, want %d, not dirty", v, dirty, before)
	}
	// Nothing of the failed file stays: the relations are those of the versions before it.
	want := newPool(t)
	mustExec(t, want, "CREATE TABLE price_daily (conflicting int)")
	m, err := store.NewMigrator(ctx, want, dbtest.Discard) // creates schema_migrations
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if before > 0 {
		if err := migrateUp(ctx, t, want, embeddedUpTo(t, before)); err != nil {
			t.Fatal(err)
		}
	}
	if got, exp := relations(t, pool), relations(t, want); !slices.Equal(got, exp) {
		t.Fatalf("relations after the failed migration:\n%v\nwant those of version %d:\n%v", got, before, exp)
	}

	// The services refuse to start on it as on any older schema, naming the version, not "dirty".
	if _, err := store.CheckSchema(ctx, pool); !errors.As(err, new(*store.SchemaTooOldError)) {
		t.Fatalf("CheckSchema after the failure = %v, want SchemaTooOldError", err)
	}

	mustExec(t, pool, "DROP TABLE price_daily")
	if err := migrateUp(ctx, t, pool, nil); err != nil {
		t.Fatalf("up after the cause is fixed: %v", err)
	}
	need, err := store.RequiredVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v, dirty := schemaVersion(t, pool); v != need || dirty {
		t.Fatalf("after the retry: version %d dirty %t, want %d", v, dirty, need)
	}
}

// Each file runs in one transaction with the record of its version; files that manage their
// own transaction, and files marked to run outside one, behave as documented.
func TestMigrationFilesAndTheirVersion(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	base := fstest.MapFS{
		"migrations/000001_a.up.sql":   file("CREATE TABLE a (id int);\n"),
		"migrations/000001_a.down.sql": file("DROP TABLE a;\n"),
	}
	with := func(name, up string) fstest.MapFS {
		fsys := fstest.MapFS{}
		for k, v := range base {
			fsys[k] = v
		}
		fsys["migrations/"+name+".up.sql"] = file(up)
		fsys["migrations/"+name+".down.sql"] = file("SELECT 1;\n")
		return fsys
	}
	tests := []struct {
		name      string
		files     fstest.MapFS
		wantErr   string // in the error; "" for success
		wantLine  int
		wantVer   uint
		wantDirty bool
		wantRels  []string
	}{
		{
			name:    "statements before a failing one are rolled back, later ones never run",
			files:   with("000002_b", "CREATE TABLE b (id int);\nINSERT INTO b VALUES (1);\nSELECT 1/0;\nCREATE TABLE c (id int);\n"),
			wantErr: "000002_b.up.sql failed and was rolled back: the schema stays at version 1, not dirty",
			wantVer: 1, wantRels: []string{"a", "schema_migrations", "schema_migrations_pkey"},
		},
		{
			name:     "a syntax error names its line",
			files:    with("000002_b", "CREATE TABLE b (id int);\n\nCREAT TABLE c (id int);\n"),
			wantErr:  `000002_b.up.sql, line 3 failed and was rolled back: the schema stays at version 1, not dirty: ERROR: syntax error at or near "CREAT"`,
			wantLine: 3, wantVer: 1, wantRels: []string{"a", "schema_migrations", "schema_migrations_pkey"},
		},
		{
			name:    "a file with its own BEGIN and COMMIT is rolled back too",
			files:   with("000002_b", "BEGIN;\nSET LOCAL lock_timeout = '5s';\nCREATE TABLE b (id int);\nCREATE TABLE a (id int);\nCOMMIT;\n"),
			wantErr: `relation "a" already exists`, wantVer: 1,
			wantRels: []string{"a", "schema_migrations", "schema_migrations_pkey"},
		},
		{
			name:     "a file with its own BEGIN and COMMIT records its version",
			files:    with("000002_b", "BEGIN;\nSET LOCAL lock_timeout = '5s';\nCREATE TABLE b (id int);\nCOMMIT;\n"),
			wantVer:  2,
			wantRels: []string{"a", "b", "schema_migrations", "schema_migrations_pkey"},
		},
		{
			name:     "a no-transaction file may build an index concurrently",
			files:    with("000002_b", "-- migrate: no-transaction\nSET lock_timeout = '2s';\nCREATE INDEX CONCURRENTLY a_id ON a (id)"),
			wantVer:  2,
			wantRels: []string{"a", "a_id", "schema_migrations", "schema_migrations_pkey"},
		},
		{
			name:      "a failed no-transaction file stays dirty",
			files:     with("000002_b", "-- migrate: no-transaction\nCREATE INDEX CONCURRENTLY a_id ON missing (id)"),
			wantErr:   "version 2 is recorded dirty",
			wantVer:   2,
			wantDirty: true,
			wantRels:  []string{"a", "schema_migrations", "schema_migrations_pkey"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := newPool(t)
			err := migrateUp(t.Context(), t, pool, tt.files)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("up: %v", err)
				}
			} else {
				var me *store.MigrationError
				if !errors.As(err, &me) || !strings.Contains(err.Error(), tt.wantErr) || me.Line != tt.wantLine ||
					me.Dirty != tt.wantDirty || me.Version != tt.wantVer {
					t.Fatalf("up = %#v %v, want an error containing %q at line %d, version %d, dirty %t",
						me, err, tt.wantErr, tt.wantLine, tt.wantVer, tt.wantDirty)
				}
			}
			if v, dirty := schemaVersion(t, pool); v != tt.wantVer || dirty != tt.wantDirty {
				t.Fatalf("version %d dirty %t, want %d %t", v, dirty, tt.wantVer, tt.wantDirty)
			}
			if got := relations(t, pool); !slices.Equal(got, tt.wantRels) {
				t.Fatalf("relations %v, want %v", got, tt.wantRels)
			}
			// Only a dirty version stops the next run; otherwise a repeat is a no-op or a retry.
			err = migrateUp(t.Context(), t, pool, tt.files)
			if tt.wantDirty != errors.As(err, new(*store.SchemaDirtyError)) {
				t.Fatalf("second up = %v, want a dirty-schema refusal: %t", err, tt.wantDirty)
			}
		})
	}
}

// A migration's lock_timeout works under the runner: a file that waits for a lock another
// session holds fails after its timeout, and the version stays where it was.
func TestMigrationLockTimeoutEndsTheWait(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	files := fstest.MapFS{
		"migrations/000001_a.up.sql":   {Data: []byte("CREATE TABLE a (id int);")},
		"migrations/000001_a.down.sql": {Data: []byte("DROP TABLE a;")},
	}
	if err := migrateUp(ctx, t, pool, files); err != nil {
		t.Fatal(err)
	}
	files["migrations/000002_b.up.sql"] = &fstest.MapFile{Data: []byte("SET LOCAL lock_timeout = '200ms';\nALTER TABLE a ADD COLUMN b int;\n")}
	files["migrations/000002_b.down.sql"] = &fstest.MapFile{Data: []byte("ALTER TABLE a DROP COLUMN b;")}

	holder, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(ctx) //nolint:errcheck // the test's own lock
	if _, err := holder.Exec(ctx, "LOCK TABLE a IN ACCESS SHARE MODE"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = migrateUp(ctx, t, pool, files)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "55P03" {
		t.Fatalf("up while a reader holds the table = %v, want lock_not_available", err)
	}
	if waited := time.Since(start); waited > 10*time.Second {
		t.Fatalf("the migration waited %s for its lock", waited)
	}
	if v, dirty := schemaVersion(t, pool); v != 1 || dirty {
		t.Fatalf("version %d dirty %t, want 1", v, dirty)
	}
	if err := holder.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := migrateUp(ctx, t, pool, files); err != nil {
		t.Fatalf("retry once the lock is free: %v", err)
	}
}
