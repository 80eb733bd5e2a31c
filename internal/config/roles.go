package config

import (
	"context"
	"errors"
)

// Roles are the login roles `rates migrate up` keeps in step with their passwords: the
// migration task (connected as the schema owner) creates or updates them, so each service can
// connect with no more than it needs. Loaded apart from Config, as only migrate uses them.
type Roles struct {
	API    LoginRole // DB_API_ROLE, DB_API_PASSWORD or DB_API_PASSWORD_SSM_PARAMETER
	Worker LoginRole // DB_WORKER_ROLE, DB_WORKER_PASSWORD or DB_WORKER_PASSWORD_SSM_PARAMETER
}

// LoginRole is one role and where its password comes from. An empty Name means not managed.
type LoginRole struct {
	Name                 string
	Password             string
	PasswordSSMParameter string
}

// Any reports whether some role is to be managed.
func (r Roles) Any() bool { return r.API.Name != "" || r.Worker.Name != "" }

// LoadRoles reads the role settings, returning every invalid setting in one error.
func LoadRoles(lookup Lookup) (Roles, error) {
	r := reader{lookup: lookup}
	roles := Roles{
		API:    r.loginRole("DB_API"),
		Worker: r.loginRole("DB_WORKER"),
	}
	if roles.API.Name != "" && roles.API.Name == roles.Worker.Name {
		r.fail("DB_WORKER_ROLE", "must differ from DB_API_ROLE: the API reads, the worker loads")
	}
	return roles, errors.Join(r.errs...)
}

func (r *reader) loginRole(prefix string) LoginRole {
	l := LoginRole{
		Name:                 r.str(prefix+"_ROLE", ""),
		Password:             r.str(prefix+"_PASSWORD", ""),
		PasswordSSMParameter: r.str(prefix+"_PASSWORD_SSM_PARAMETER", ""),
	}
	switch {
	case l.Name == "" && (l.Password != "" || l.PasswordSSMParameter != ""):
		r.fail(prefix+"_ROLE", "required when its password is set")
	case l.Name != "" && (l.Password == "") == (l.PasswordSSMParameter == ""):
		r.fail(prefix+"_PASSWORD_SSM_PARAMETER", "set exactly one of "+prefix+"_PASSWORD and "+prefix+"_PASSWORD_SSM_PARAMETER")
	case l.PasswordSSMParameter != "" && !validSSMName(l.PasswordSSMParameter):
		r.fail(prefix+"_PASSWORD_SSM_PARAMETER", "not an SSM parameter name or ARN")
	}
	return l
}

// ResolveRolePasswords reads the passwords kept in SSM, decrypting the SecureStrings.
func ResolveRolePasswords(ctx context.Context, roles *Roles, client ParameterGetter) error {
	for _, l := range []*LoginRole{&roles.API, &roles.Worker} {
		if l.Name == "" || l.PasswordSSMParameter == "" {
			continue
		}
		db := DB{PasswordSSMParameter: l.PasswordSSMParameter}
		if err := ResolvePassword(ctx, &db, client); err != nil {
			return err
		}
		l.Password = db.Password
	}
	return nil
}
