package store

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The group roles migration 000009 creates and grants to; login roles become their members.
const (
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
// and re-applies the grants of the group roles (rates_grant_roles, see migration 000009), in
// one transaction. The migration task runs it as the owner after every `migrate up`, so a
// password rotated in SSM and a table added by a migration both take effect with the deploy.
// Passwords travel as SCRAM-SHA-256 verifiers, so the clear text never reaches the server's
// statement log.
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
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", r.Name).Scan(&exists); err != nil {
			return fmt.Errorf("sync database roles: look up %s: %w", r.Name, err)
		}
		verb := "ALTER"
		if !exists {
			verb = "CREATE"
		}
		ident := pgx.Identifier{r.Name}.Sanitize()
		// A utility statement takes no parameters; the verifier holds only base64 and $:*.
		stmt := fmt.Sprintf("%s ROLE %s WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '%s'", verb, ident, verifier)
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
	if _, err := tx.Exec(ctx, "SELECT rates_grant_roles()"); err != nil {
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
