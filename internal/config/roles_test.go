package config

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"rates/internal/testing/ssmfake"
)

func TestMigrateOnStartAndRootCert(t *testing.T) {
	cfg, err := Load(lookupFrom(map[string]string{"DB_HOST": "h"}))
	if err != nil || cfg.Migrate.OnStart {
		t.Fatalf("MIGRATE_ON_START must default to false (AWS never migrates at start): %+v %v", cfg.Migrate, err)
	}
	cfg, err = Load(lookupFrom(map[string]string{
		"DB_HOST": "h", "MIGRATE_ON_START": "true", "DB_SSLMODE": "verify-full", "DB_SSLROOTCERT": "/usr/share/rates/rds-ca.pem",
	}))
	if err != nil || !cfg.Migrate.OnStart {
		t.Fatalf("MIGRATE_ON_START=true: %+v %v", cfg.Migrate, err)
	}
	// pgx reads the bundle while parsing the settings: a missing file is reported by name.
	if _, err := cfg.DB.PoolConfig(); err == nil {
		t.Fatal("PoolConfig with a missing DB_SSLROOTCERT file succeeded")
	}
	// With the bundle in place the connection verifies the server against it, by host name.
	cfg.DB.SSLRootCert = writeTestCA(t)
	pc, err := cfg.DB.PoolConfig()
	if err != nil {
		t.Fatal(err)
	}
	tls := pc.ConnConfig.TLSConfig
	if tls == nil || tls.RootCAs == nil || tls.InsecureSkipVerify || tls.ServerName != "h" {
		t.Fatalf("verify-full TLS settings: %+v", tls)
	}
	if _, err := Load(lookupFrom(map[string]string{"DB_HOST": "h", "MIGRATE_ON_START": "yes please"})); err == nil ||
		!strings.Contains(err.Error(), "MIGRATE_ON_START") {
		t.Fatalf("bad MIGRATE_ON_START: %v", err)
	}
}

func TestLoadRoles(t *testing.T) {
	roles, err := LoadRoles(lookupFrom(map[string]string{}))
	if err != nil || roles.Any() {
		t.Fatalf("no role settings: %+v %v", roles, err)
	}
	roles, err = LoadRoles(lookupFrom(map[string]string{
		"DB_API_ROLE": "rates_api", "DB_API_PASSWORD_SSM_PARAMETER": "/rates/dev/db/api-password",
		"DB_WORKER_ROLE": "rates_worker", "DB_WORKER_PASSWORD": "local",
	}))
	if err != nil || roles.API.Name != "rates_api" || roles.Worker.Password != "local" {
		t.Fatalf("roles: %+v %v", roles, err)
	}
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"DB_API_PASSWORD": "x"}, "DB_API_ROLE: required"},
		{map[string]string{"DB_API_ROLE": "a"}, "DB_API_PASSWORD_SSM_PARAMETER: set exactly one"},
		{map[string]string{"DB_API_ROLE": "a", "DB_API_PASSWORD": "x", "DB_API_PASSWORD_SSM_PARAMETER": "/p"}, "set exactly one"},
		{map[string]string{"DB_WORKER_ROLE": "w", "DB_WORKER_PASSWORD_SSM_PARAMETER": "has space"}, "DB_WORKER_PASSWORD_SSM_PARAMETER: not an SSM"},
		{map[string]string{"DB_API_ROLE": "same", "DB_API_PASSWORD": "x", "DB_WORKER_ROLE": "same", "DB_WORKER_PASSWORD": "y"}, "DB_WORKER_ROLE: must differ"},
	}
	for _, tt := range tests {
		if _, err := LoadRoles(lookupFrom(tt.env)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("LoadRoles(%v) = %v, want %q", tt.env, err, tt.want)
		}
	}

	fake := ssmfake.New(map[string]string{"/rates/dev/db/api-password": "from-ssm"})
	defer fake.Close()
	for k, v := range fake.Env() {
		t.Setenv(k, v)
	}
	client, err := NewSSMClient(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := ResolveRolePasswords(context.Background(), &roles, client); err != nil {
		t.Fatal(err)
	}
	if roles.API.Password != "from-ssm" || roles.Worker.Password != "local" {
		t.Fatalf("resolved: %+v", roles)
	}
}

// writeTestCA writes a self-signed CA certificate, standing in for the RDS bundle.
func writeTestCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
