package store

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The roles of the schema, all NOLOGIN. The owner owns every object of the schema: `rates
// migrate` runs the migration files as it (SET ROLE), so they run without the rights of the
// user that connects (on RDS the master user, a member of rds_superuser). The group roles get
// the grants of rates_grant_roles() (see the baseline); login roles become their members.
const (
	OwnerRole  = "rates_owner"  // the schema's objects; only migrations act as it
	ReaderRole = "rates_reader" // the API: SELECT on what GET /rates needs
	LoaderRole = "rates_loader" // the worker: what ingestion needs
)

// LoginRole is a role a service connects as, with the password kept in its own SSM parameter.
type LoginRole struct {
	Name     string
	Password string
	Group    string // ReaderRole or LoaderRole
}

var roleName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// SyncRoles creates or updates the login roles, sets their passwords and group memberships,
// and re-applies the grants of the group roles (rates_grant_roles, see the baseline) as the
// owner role, in one transaction. Creating login roles needs CREATEROLE, which the owner role
// lacks: the migration task runs it as the user it connects as (the master user), after every
// `migrate up` (which makes that user a member of the owner role), so a password rotated in
// SSM and a table added by a migration both take effect with the deploy. Passwords travel as
// SCRAM-SHA-256 verifiers, so the clear text never reaches the server's statement log.
func SyncRoles(ctx context.Context, pool *pgxpool.Pool, roles []LoginRole) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("sync database roles: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	for _, r := range roles {
		if !roleName.MatchString(r.Name) {
			return fmt.Errorf("sync database roles: %q is not a role name (lower-case letters, digits, _)", r.Name)
		}
		if r.Group != ReaderRole && r.Group != LoaderRole {
			return fmt.Errorf("sync database roles: role %s: unknown group %q", r.Name, r.Group)
		}
		if r.Password == "" {
			return fmt.Errorf("sync database roles: role %s has no password", r.Name)
		}
		verifier, err := scramVerifier(r.Password)
		if err != nil {
			return fmt.Errorf("sync database roles: role %s: %w", r.Name, err)
		}
		var exists, super bool
		if err := tx.QueryRow(ctx, "SELECT count(*) > 0, coalesce(bool_or(rolsuper), false) FROM pg_roles WHERE rolname = $1",
			r.Name).Scan(&exists, &super); err != nil {
			return fmt.Errorf("sync database roles: look up %s: %w", r.Name, err)
		}
		if super {
			return fmt.Errorf("sync database roles: role %s is a superuser; a service's login role must not be", r.Name)
		}
		ident := pgx.Identifier{r.Name}.Sanitize()
		// A utility statement takes no parameters; the verifier holds only base64 and $:*.
		// ALTER leaves SUPERUSER out: only a superuser may name that attribute at all, and
		// the master user of RDS is none (the role is checked above instead).
		verb, stmt := "ALTER", fmt.Sprintf("ALTER ROLE %s WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD '%s'", ident, verifier)
		if !exists {
			verb, stmt = "CREATE", fmt.Sprintf("CREATE ROLE %s WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '%s'", ident, verifier)
		}
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("sync database roles: %s role %s: %w", strings.ToLower(verb), r.Name, err)
		}
		other := ReaderRole
		if r.Group == ReaderRole {
			other = LoaderRole
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf("GRANT %s TO %s", r.Group, ident)); err != nil {
			return fmt.Errorf("sync database roles: grant %s to %s: %w", r.Group, r.Name, err)
		}
		// A role moved from one group to the other keeps only the new one.
		if _, err := tx.Exec(ctx, fmt.Sprintf("REVOKE %s FROM %s", other, ident)); err != nil {
			return fmt.Errorf("sync database roles: revoke %s from %s: %w", other, r.Name, err)
		}
	}
	// The grants are the owner's, as when a migration applies them, so a migration going down
	// (as the owner) revokes them.
	if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+OwnerRole+"; SELECT rates_grant_roles()"); err != nil {
		return fmt.Errorf("sync database roles: re-apply grants: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("sync database roles: commit: %w", err)
	}
	return nil
}

// scramVerifier is what PostgreSQL stores for a SCRAM-SHA-256 password (RFC 5802, RFC 7677),
// in the form ALTER ROLE ... PASSWORD accepts as already hashed.
func scramVerifier(password string) (string, error) {
	const iterations = 4096 // PostgreSQL's default scram_iterations
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("derive key: %w", err)
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	stored := sha256.Sum256(mac(salted, "Client Key"))
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(stored[:]), b64(mac(salted, "Server Key"))), nil
}

// OwnerRoleError is a user that cannot create the schema's roles or act as the owner role.
type OwnerRoleError struct {
	User string // the user `rates migrate` connected as
	Err  error
}

func (e *OwnerRoleError) Error() string {
	return fmt.Sprintf("user %s cannot act as the owner role %s: %v", e.User, OwnerRole, e.Err)
}

func (e *OwnerRoleError) Unwrap() error { return e.Err }

// prepareOwner makes sure, as the user cfg connects as, that the owner and group roles exist,
// that this user may act as the owner, and that the schema of the database belongs to the
// owner (adoptSchema). It runs before anything connects as the owner role.
func prepareOwner(ctx context.Context, cfg *pgx.ConnConfig, log *slog.Logger) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("prepare the owner role: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := ensureRoles(ctx, conn); err != nil {
		return err
	}
	return adoptSchema(ctx, conn, log)
}

// ensureRoles creates the owner and group roles where they are missing and makes the
// connected user a member of the owner role that may SET ROLE to it and inherits its rights
// (so the login-role grants, `rates seed` and an earlier release's migration task, which run
// as that user, still reach the owner's tables). Roles belong to the whole cluster, and the
// databases of one cluster may migrate at once: a role or a membership another session
// created meanwhile counts as created.
//
// The user needs CREATEROLE (or SUPERUSER) the first time. Up to PostgreSQL 15 CREATEROLE may
// grant any role that is not a superuser's; from 16 on only a role it holds ADMIN OPTION on,
// which its creator gets, without INHERIT and SET unless createrole_self_grant says so (set
// here for the owner role). A user that did not create the owner role on 16+ therefore needs
// an administrator to grant it once (docs/operations.md).
func ensureRoles(ctx context.Context, conn *pgx.Conn) error {
	var user string
	var version int
	if err := conn.QueryRow(ctx, "SELECT current_user, current_setting('server_version_num')::int").Scan(&user, &version); err != nil {
		return fmt.Errorf("prepare the owner role: %w", err)
	}
	v16 := version >= 160000
	for _, name := range []string{OwnerRole, ReaderRole, LoaderRole} {
		if err := ensureRole(ctx, conn, name, v16 && name == OwnerRole); err != nil {
			return &OwnerRoleError{User: user, Err: err}
		}
	}
	// USAGE: the owner's rights are the user's without SET ROLE. SET exists from 16 on; up to
	// 15 membership alone allows SET ROLE.
	check := "SELECT pg_has_role($1, 'USAGE')"
	if v16 {
		check += " AND pg_has_role($1, 'SET')"
	}
	var ok bool
	if err := conn.QueryRow(ctx, check, OwnerRole).Scan(&ok); err != nil {
		return fmt.Errorf("prepare the owner role: %w", err)
	}
	if ok {
		return nil
	}
	grant := "GRANT " + OwnerRole + " TO CURRENT_USER"
	if v16 {
		grant += " WITH INHERIT TRUE, SET TRUE"
	}
	if _, err := conn.Exec(ctx, grant); err != nil && !createdMeanwhile(err) {
		return &OwnerRoleError{User: user, Err: fmt.Errorf("become a member: %w", err)}
	}
	return nil
}

// ensureRole creates the NOLOGIN role name unless it exists; selfGrant (PostgreSQL 16+) has
// the creator granted the role with INHERIT and SET as it creates it.
func ensureRole(ctx context.Context, conn *pgx.Conn, name string, selfGrant bool) error {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("look up role %s: %w", name, err)
	}
	if exists {
		return nil
	}
	create := "CREATE ROLE " + pgx.Identifier{name}.Sanitize() + " NOLOGIN"
	if selfGrant {
		// One implicit transaction: the setting ends with the statement.
		create = "SET LOCAL createrole_self_grant = 'set, inherit'; " + create
	}
	if _, err := conn.Exec(ctx, create); err != nil && !createdMeanwhile(err) {
		return fmt.Errorf("create role %s: %w", name, err)
	}
	return nil
}

// createdMeanwhile is the error of creating a role or a membership that a concurrent
// transaction created first: its insert into the catalog waited for that one and then found
// the unique key taken (unique_violation), or found the object itself (duplicate_object).
func createdMeanwhile(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "23505" || pgErr.Code == "42710")
}

// adoptSchema hands the schema public of the connected database to the owner role, in one
// transaction: the owner may create in it and grant the database's CONNECT and TEMPORARY (as
// rates_grant_roles does); every object of the schema the connected user owns (a database
// migrated before the owner role existed, the bookkeeping table golang-migrate creates, an
// object an earlier release's migration task created) becomes the owner's, with its grants;
// and the default privileges that user set in the schema (the loader's on new tables and
// sequences) are set for the owner too, since they apply only to objects their role creates.
// Nothing is changed where nothing is missing, so a repeat takes no lock. Objects of other
// roles stay theirs and are logged. ALTER ... OWNER takes an ACCESS EXCLUSIVE lock: a
// lock_timeout of its own bounds the wait, and a timeout leaves everything as it was.
func adoptSchema(ctx context.Context, conn *pgx.Conn, log *slog.Logger) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("hand the schema to %s: %w", OwnerRole, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '5s'"); err != nil {
		return fmt.Errorf("hand the schema to %s: %w", OwnerRole, err)
	}
	var stmts []string
	for _, q := range []string{schemaGrantsSQL, adoptObjectsSQL, adoptDefaultsSQL} {
		more, err := collectStrings(ctx, tx, q)
		if err != nil {
			return fmt.Errorf("hand the schema to %s: %w", OwnerRole, err)
		}
		if q == adoptDefaultsSQL && len(more) > 0 {
			// Without FOR ROLE: PostgreSQL 16 asks for more than membership to use it.
			stmts = append(stmts, "SET LOCAL ROLE "+OwnerRole)
		}
		stmts = append(stmts, more...)
	}
	for _, stmt := range stmts {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("hand the schema to %s: %s: %w", OwnerRole, stmt, err)
		}
	}
	others, err := collectStrings(ctx, tx, otherOwnersSQL)
	if err != nil {
		return fmt.Errorf("hand the schema to %s: %w", OwnerRole, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("hand the schema to %s: commit: %w", OwnerRole, err)
	}
	if len(stmts) > 0 {
		log.Info("schema handed to the owner role", "owner", OwnerRole, "statements", len(stmts))
	}
	if len(others) > 0 {
		log.Warn("objects of the schema owned by other roles stay theirs, out of the migrations' reach",
			"owner", OwnerRole, "objects", strings.Join(others, "; "))
	}
	return nil
}

// collectStrings runs query with the owner role as $1 and returns its one text column.
func collectStrings(ctx context.Context, tx pgx.Tx, query string) ([]string, error) {
	rows, _ := tx.Query(ctx, query, OwnerRole) // the error comes back from CollectRows
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list what is missing: %w", err)
	}
	return out, nil
}

// schemaGrantsSQL: the grants on the schema and the database the owner role ($1) lacks. With
// GRANT OPTION, since rates_grant_roles, run as the owner, passes them on to the group roles.
const schemaGrantsSQL = `
SELECT stmt FROM (VALUES
    (1, NOT (has_schema_privilege($1::name, 'public', 'USAGE WITH GRANT OPTION')
             AND has_schema_privilege($1::name, 'public', 'CREATE WITH GRANT OPTION')),
        format('GRANT USAGE, CREATE ON SCHEMA public TO %I WITH GRANT OPTION', $1::text)),
    (2, NOT (has_database_privilege($1::name, current_database(), 'CONNECT WITH GRANT OPTION')
             AND has_database_privilege($1::name, current_database(), 'TEMPORARY WITH GRANT OPTION')),
        format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I WITH GRANT OPTION', current_database(), $1::text))
) AS g (n, missing, stmt)
WHERE missing ORDER BY n`

// schemaObjectsSQL: the objects of the schema public that have an owner of their own, each with
// the ALTER command that names it. Indexes, the row types of tables, array types and sequences
// that belong to a column follow their table or type; extensions' objects are the extension's.
const schemaObjectsSQL = `
WITH ext AS (SELECT classid, objid FROM pg_depend WHERE deptype = 'e'),
objects (kind, name, owner) AS (
    SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
               WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
           format('public.%I', c.relname), c.relowner
    FROM pg_class c
    WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      AND (c.oid) NOT IN (SELECT objid FROM ext WHERE classid = 'pg_class'::regclass)
      AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                                           AND d.objid = c.oid AND d.deptype IN ('a', 'i')))
    UNION ALL
    SELECT 'ROUTINE', format('public.%I(%s)', p.proname, pg_get_function_identity_arguments(p.oid)), p.proowner
    FROM pg_proc p
    WHERE p.pronamespace = 'public'::regnamespace
      AND p.oid NOT IN (SELECT objid FROM ext WHERE classid = 'pg_proc'::regclass)
    UNION ALL
    SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, format('public.%I', t.typname), t.typowner
    FROM pg_type t
    WHERE t.typnamespace = 'public'::regnamespace
      AND (t.typtype IN ('d', 'e', 'r')
           OR (t.typtype = 'c' AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind = 'c')))
      AND t.oid NOT IN (SELECT objid FROM ext WHERE classid = 'pg_type'::regclass)
    UNION ALL
    SELECT 'STATISTICS', format('public.%I', s.stxname), s.stxowner
    FROM pg_statistic_ext s
    WHERE s.stxnamespace = 'public'::regnamespace
)`

// adoptObjectsSQL: ALTER ... OWNER TO $1 for each object of the schema the connected user owns.
const adoptObjectsSQL = schemaObjectsSQL + `
SELECT format('ALTER %s %s OWNER TO %I', kind, name, $1::text)
FROM objects WHERE owner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
ORDER BY kind, name`

// otherOwnersSQL: the objects of the schema that neither the owner role ($1) nor the connected
// user owns.
const otherOwnersSQL = schemaObjectsSQL + `
SELECT format('%s %s (%s)', lower(kind), name, pg_get_userbyid(owner))
FROM objects WHERE owner <> (SELECT oid FROM pg_roles WHERE rolname = $1)
ORDER BY kind, name`

// adoptDefaultsSQL: the default privileges the connected user set in the schema public that the
// owner role ($1) lacks, as statements to run as the owner.
const adoptDefaultsSQL = `
WITH acl AS (
    SELECT d.defaclrole AS role, d.defaclobjtype AS objtype, a.privilege_type AS priv, a.grantee, a.is_grantable
    FROM pg_default_acl d, aclexplode(d.defaclacl) a
    WHERE d.defaclnamespace = 'public'::regnamespace
), me AS (SELECT oid FROM pg_roles WHERE rolname = current_user),
   owner AS (SELECT oid FROM pg_roles WHERE rolname = $1)
SELECT format('ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT %s ON %s TO %s%s', m.priv,
              CASE m.objtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS' ELSE 'TYPES' END,
              CASE WHEN m.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(m.grantee)) END,
              CASE WHEN m.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
FROM acl m
WHERE m.role = (SELECT oid FROM me) AND m.objtype IN ('r', 'S', 'f', 'T') AND m.priv ~ '^[A-Z]+$'
  AND m.grantee NOT IN ((SELECT oid FROM me), (SELECT oid FROM owner))
  AND NOT EXISTS (SELECT 1 FROM acl o WHERE o.role = (SELECT oid FROM owner) AND o.objtype = m.objtype
                  AND o.priv = m.priv AND o.grantee = m.grantee AND (o.is_grantable OR NOT m.is_grantable))
ORDER BY 1`
