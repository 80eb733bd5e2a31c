package store_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"rates/db"
	"rates/internal/store"
	"rates/internal/testing/dbtest"
	"rates/internal/testing/pgserver"
)

// masterCluster starts a cluster of the test's own, with a login role like the master user of
// RDS: CREATEROLE and CREATEDB but not SUPERUSER. The cluster is the test's own because the
// roles of the schema are cluster-wide, and from PostgreSQL 16 on such a user may only grant
// roles it created itself, as it does on RDS; the shared cluster's were created by postgres.
// It returns the server and a function that creates a database the master owns and returns
// its URL as the master.
func masterCluster(t *testing.T) (*pgserver.Server, func(name string) string) {
	t.Helper()
	ctx := context.Background()
	s, err := pgserver.Start(ctx, pgserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	admin, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE ROLE master LOGIN CREATEROLE CREATEDB NOSUPERUSER"); err != nil {
		t.Fatal(err)
	}
	return s, func(name string) string {
		t.Helper()
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+name+" OWNER master TEMPLATE template0"); err != nil {
			t.Fatal(err)
		}
		return withUser(t, s.URL(name), "master")
	}
}

func withUser(t *testing.T, dbURL, user string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(user)
	return u.String()
}

func poolAt(t *testing.T, dbURL string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// notOwned lists the objects of the schema public that the owner role does not own: every
// relation (indexes and sequences included), routine and type, and the default privileges
// the owner lacks for the loader. It also returns how many objects it looked at.
func notOwned(ctx context.Context, t *testing.T, pool *pgxpool.Pool) (bad []string, objects int) {
	t.Helper()
	const q = `
SELECT kind || ' ' || name || ' owned by ' || owner, owner = $1 FROM (
    SELECT 'relation' AS kind, relname::text AS name, pg_get_userbyid(relowner)::text AS owner
    FROM pg_class WHERE relnamespace = 'public'::regnamespace
    UNION ALL
    SELECT 'routine', oid::regprocedure::text, pg_get_userbyid(proowner)::text
    FROM pg_proc WHERE pronamespace = 'public'::regnamespace
    UNION ALL
    SELECT 'type', typname::text, pg_get_userbyid(typowner)::text
    FROM pg_type WHERE typnamespace = 'public'::regnamespace
) o ORDER BY 1`
	rows, err := pool.Query(ctx, q, store.OwnerRole)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var what string
		var ok bool
		if err := rows.Scan(&what, &ok); err != nil {
			t.Fatal(err)
		}
		objects++
		if !ok {
			bad = append(bad, what)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return bad, objects
}

func assertOwned(ctx context.Context, t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	bad, objects := notOwned(ctx, t, pool)
	if objects < 30 {
		t.Fatalf("only %d objects in the schema: not migrated?", objects)
	}
	if len(bad) > 0 {
		t.Fatalf("%d of %d objects are not the owner role's:\n%s", len(bad), objects, strings.Join(bad, "\n"))
	}
}

// olderReleaseUp migrates the way the releases before the owner role did: golang-migrate with
// the files run as the user that connects, so every object belongs to that user.
func olderReleaseUp(t *testing.T, dbURL string) {
	t.Helper()
	src, err := iofs.New(db.Migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	m, err := migrate.NewWithSourceInstance("iofs", src, strings.Replace(dbURL, "postgres://", "pgx5://", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		t.Fatalf("older release's migrate up: %v", err)
	}
}

// A database migrated by a CREATEROLE user that is not a superuser (the RDS master user): the
// migrations run as the owner role, every object of the schema belongs to it, a database the
// previous releases migrated as the master is handed over, repeats change nothing, and the
// login roles the master then creates read and load.
func TestMigrateAsMasterLeavesEverythingToTheOwner(t *testing.T) {
	ctx := context.Background()
	_, newDatabase := masterCluster(t)

	fresh := poolAt(t, newDatabase("fresh"))
	if err := migrateUp(ctx, t, fresh, nil); err != nil {
		t.Fatalf("migrate up as the master: %v", err)
	}
	assertOwned(ctx, t, fresh)
	var inherits, sets bool
	if err := fresh.QueryRow(ctx, "SELECT pg_has_role('master', $1, 'USAGE'), pg_has_role('master', $1, 'MEMBER')",
		store.OwnerRole).Scan(&inherits, &sets); err != nil || !inherits || !sets {
		t.Fatalf("master inherits the owner's rights %t, may act as it %t (%v)", inherits, sets, err)
	}

	oldURL := newDatabase("old")
	olderReleaseUp(t, oldURL)
	old := poolAt(t, oldURL)
	if bad, _ := notOwned(ctx, t, old); len(bad) == 0 {
		t.Fatal("the older release's migration left nothing to the master: the conversion is not tested")
	}
	for range 2 { // the second run has nothing left to do
		if err := migrateUp(ctx, t, old, nil); err != nil {
			t.Fatalf("migrate up of a database migrated before: %v", err)
		}
		assertOwned(ctx, t, old)
	}

	// An older release's migration task after the conversion (a rollback) still runs: the
	// master reaches the owner's bookkeeping table through its membership.
	olderReleaseUp(t, oldURL)

	for name, pool := range map[string]*pgxpool.Pool{"fresh": fresh, "old": old} {
		t.Run("login roles of "+name, func(t *testing.T) {
			dbURL := pool.Config().ConnString()
			api, worker := name+"_api", name+"_worker"
			roles := []store.LoginRole{
				{Name: api, Password: "api-secret", Group: store.ReaderRole},
				{Name: worker, Password: "worker-secret", Group: store.LoaderRole},
			}
			for range 2 { // as `rates migrate up` does after every run
				if err := store.SyncRoles(ctx, pool, roles); err != nil {
					t.Fatal(err)
				}
				if err := migrateUp(ctx, t, pool, nil); err != nil {
					t.Fatal(err)
				}
			}
			// A table a later migration creates: the owner's default privileges let the
			// worker load it at once, with no new grant.
			laterMigration(ctx, t, pool, "000099_later.up.sql", "CREATE TABLE later_table (id bigint GENERATED ALWAYS AS IDENTITY, note text);\n")
			checks := []struct{ role, sql, want string }{
				{api, "SELECT count(*) FROM price_daily", ""},
				{api, "SELECT version FROM schema_migrations", ""},
				{api, "INSERT INTO prices VALUES ('CNSHA', 'NLRTM', '2026-01-01', 1)", "42501"},
				{worker, "INSERT INTO regions (slug, name) VALUES ('owner_test', 'Owner test')", ""},
				{worker, "INSERT INTO later_table (note) VALUES ('x')", ""},
				{worker, "CREATE TEMP TABLE staging (x int)", ""},
				{worker, "ALTER TABLE prices ADD COLUMN x int", "42501"},
				{worker, "DROP TABLE later_table", "42501"},
			}
			for _, c := range checks {
				conn := connectAs(ctx, t, dbURL, c.role)
				tx, err := conn.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				_, err = tx.Exec(ctx, c.sql)
				_ = tx.Rollback(ctx)
				if got := sqlState(err); got != c.want || (c.want == "" && err != nil) {
					t.Errorf("%s as %s: %v, want SQLSTATE %q", c.sql, c.role, err, c.want)
				}
			}
			assertOwned(ctx, t, pool)
		})
	}

}

// laterMigration applies the embedded migrations plus one more file, as a later release would.
func laterMigration(ctx context.Context, t *testing.T, pool *pgxpool.Pool, name, up string) {
	t.Helper()
	files := embeddedUpTo(t, ^uint(0))
	files["migrations/"+name] = &fstest.MapFile{Data: []byte(up)}
	files["migrations/"+strings.Replace(name, ".up.", ".down.", 1)] = &fstest.MapFile{Data: []byte("SELECT 1;\n")}
	if err := migrateUp(ctx, t, pool, files); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// A migration file runs as the owner role, whichever way it runs, and a RESET ROLE in it
// stays the owner (the session starts as the owner); what a file creates is the owner's.
func TestMigrationFilesRunAsTheOwner(t *testing.T) {
	ctx := context.Background()
	_, newDatabase := masterCluster(t)
	pool := poolAt(t, newDatabase("fixture"))
	record := func(table string) string {
		return fmt.Sprintf("CREATE TABLE %s AS SELECT current_user::text AS current, session_user::text AS session;\n", table)
	}
	files := fstest.MapFS{
		"migrations/000001_a.up.sql":   {Data: []byte(record("in_transaction"))},
		"migrations/000001_a.down.sql": {Data: []byte("DROP TABLE in_transaction;\n")},
		"migrations/000002_b.up.sql":   {Data: []byte("BEGIN;\nRESET ROLE;\n" + record("own_transaction") + "COMMIT;\n")},
		"migrations/000002_b.down.sql": {Data: []byte("DROP TABLE own_transaction;\n")},
		"migrations/000003_c.up.sql":   {Data: []byte(noTransaction + "\n" + record("no_transaction"))},
		"migrations/000003_c.down.sql": {Data: []byte("DROP TABLE no_transaction;\n")},
	}
	if err := migrateUp(ctx, t, pool, files); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"in_transaction", "own_transaction", "no_transaction"} {
		var current, session, owner string
		err := pool.QueryRow(ctx, "SELECT current, session, pg_get_userbyid(relowner) FROM "+table+", pg_class WHERE relname = $1",
			table).Scan(&current, &session, &owner)
		if err != nil {
			t.Fatal(err)
		}
		if current != store.OwnerRole || session != "master" || owner != store.OwnerRole {
			t.Errorf("%s ran as %s (session %s), its table belongs to %s; want %s, master, %s",
				table, current, session, owner, store.OwnerRole, store.OwnerRole)
		}
	}
	// A file cannot use the master's cluster-wide rights: creating a role is refused, and the
	// file is rolled back like any failed migration.
	withRole := fstest.MapFS{}
	for k, v := range files {
		withRole[k] = v
	}
	withRole["migrations/000004_d.up.sql"] = &fstest.MapFile{Data: []byte("CREATE ROLE not_by_a_migration NOLOGIN;\n")}
	withRole["migrations/000004_d.down.sql"] = &fstest.MapFile{Data: []byte("SELECT 1;\n")}
	var me *store.MigrationError
	if err := migrateUp(ctx, t, pool, withRole); !errors.As(err, &me) || sqlState(err) != "42501" || me.Version != 3 {
		t.Fatalf("a file that creates a role: %v, want permission denied at version 3", err)
	}
	// Going down runs as the owner too (golang-migrate's own connection).
	m, err := store.NewMigratorFrom(ctx, pool, dbtest.Discard, files)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Down(ctx, 3); err != nil {
		t.Fatalf("down as the owner: %v", err)
	}
	if rels := relations(t, pool); strings.Join(rels, ",") != "schema_migrations,schema_migrations_pkey" {
		t.Fatalf("after down: %v", rels)
	}
}

// noTransaction is the marker of a file that runs outside a transaction (migrate.go).
const noTransaction = "-- migrate: no-transaction"

// Databases of one cluster migrating at once, while another session is creating the roles:
// the one that loses the race to create a role goes on with the role the other created.
func TestOwnerRoleCreationToleratesRaces(t *testing.T) {
	ctx := context.Background()
	s, newDatabase := masterCluster(t)
	urls := []string{newDatabase("race_a"), newDatabase("race_b"), newDatabase("race_c")}

	// Another master session creates the roles and keeps its transaction open: every
	// migration that starts now finds no role and waits on its CREATE ROLE.
	other, err := pgx.Connect(ctx, withUser(t, s.URL("postgres"), "master"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // committed below
	if _, err := tx.Exec(ctx, "CREATE ROLE "+store.OwnerRole+" NOLOGIN"); err != nil {
		t.Fatal(err)
	}
	if v := serverVersion(t, other); v >= 160000 {
		// Its creator's grant, as `rates migrate` makes it (createrole_self_grant).
		if _, err := tx.Exec(ctx, "GRANT "+store.OwnerRole+" TO master WITH INHERIT TRUE, SET TRUE"); err != nil {
			t.Fatal(err)
		}
	}

	errs := make(chan error, len(urls))
	var wg sync.WaitGroup
	for _, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := pgxpool.New(ctx, u)
			if err != nil {
				errs <- err
				return
			}
			defer pool.Close()
			m, err := store.NewMigrator(ctx, pool, dbtest.Discard)
			if err != nil {
				errs <- err
				return
			}
			defer m.Close()
			errs <- m.Up(ctx)
		}()
	}
	// Its own connection: within a transaction, pg_stat_activity keeps its first snapshot.
	watch, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close(ctx)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var waiting int
		if err := watch.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE '%CREATE ROLE%'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting == len(urls) {
			break
		}
		if time.Now().After(deadline) {
			select {
			case err := <-errs:
				t.Fatalf("%d of %d migrations wait to create the owner role; one ended: %v", waiting, len(urls), err)
			default:
			}
			rows, _ := watch.Query(ctx, "SELECT coalesce(usename,'') || ' ' || coalesce(wait_event_type,'') || ' ' || coalesce(wait_event,'') || ' ' || state || ' ' || query FROM pg_stat_activity WHERE state IS NOT NULL")
			acts, _ := pgx.CollectRows(rows, pgx.RowTo[string])
			t.Fatalf("%d of %d migrations wait to create the owner role:\n%s", waiting, len(urls), strings.Join(acts, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("migrate up during the race: %v", err)
		}
	}
	for _, u := range urls {
		assertOwned(ctx, t, poolAt(t, u))
	}
}

func serverVersion(t *testing.T, conn *pgx.Conn) int {
	t.Helper()
	var v int
	if err := conn.QueryRow(context.Background(), "SELECT current_setting('server_version_num')::int").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}
