package config

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"rates/internal/testing/ssmfake"
)

func lookupFrom(env map[string]string) Lookup {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestLoadDefaults(t *testing.T) {
	cfg, err := Load(lookupFrom(map[string]string{"DB_HOST": "db.internal"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Addr != ":3000" || cfg.DB.Port != 5432 || cfg.DB.Name != "rates" || cfg.DB.SSLMode != "prefer" ||
		cfg.API.MaxRangeDays != 3660 || cfg.Shutdown.Timeout != 20*time.Second || cfg.Shutdown.DrainDelay != 0 || cfg.Log.Format != "json" ||
		cfg.Log.Level != slog.LevelInfo || cfg.Seed.File != "" {
		t.Fatalf("defaults: %+v", cfg)
	}
	if cfg.HTTP.ReadHeaderTimeout == 0 || cfg.HTTP.ReadTimeout == 0 || cfg.HTTP.WriteTimeout == 0 || cfg.HTTP.IdleTimeout == 0 {
		t.Fatalf("server timeouts must all be set: %+v", cfg.HTTP)
	}
}

func TestLoadValues(t *testing.T) {
	cfg, err := Load(lookupFrom(map[string]string{
		"HTTP_ADDR": "127.0.0.1:8080", "DB_HOST": "h", "DB_PORT": "6543", "DB_NAME": "n", "DB_USER": "u",
		"DB_PASSWORD_SSM_PARAMETER": "/rates/dev/db/password", "DB_SSLMODE": "require", "SEED_FILE": "/x.sql",
		"LOG_LEVEL": "debug", "LOG_FORMAT": "text", "SHUTDOWN_TIMEOUT": "5s", "MAX_RANGE_DAYS": "31",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Addr != "127.0.0.1:8080" || cfg.DB.Port != 6543 || cfg.DB.SSLMode != "require" || cfg.Seed.File != "/x.sql" ||
		cfg.Log.Level != slog.LevelDebug || cfg.Log.Format != "text" || cfg.Shutdown.Timeout != 5*time.Second || cfg.API.MaxRangeDays != 31 {
		t.Fatalf("values: %+v", cfg)
	}
	pc, err := cfg.DB.PoolConfig()
	if err != nil {
		t.Fatal(err)
	}
	if pc.ConnConfig.Host != "h" || pc.ConnConfig.Port != 6543 || pc.ConnConfig.Database != "n" || pc.ConnConfig.User != "u" || pc.ConnConfig.TLSConfig == nil {
		t.Fatalf("pool config: %+v", pc.ConnConfig)
	}
}

func TestRequestLogAndMetricsSettings(t *testing.T) {
	tests := []struct {
		env       map[string]string
		every     int
		slow      time.Duration
		namespace string
	}{
		{map[string]string{}, 100, 500 * time.Millisecond, ""},
		{map[string]string{"LOG_REQUESTS": "all"}, 1, 500 * time.Millisecond, ""},
		{map[string]string{"LOG_REQUESTS": "ERRORS", "LOG_SLOW_REQUESTS": "2s"}, 0, 2 * time.Second, ""},
		{map[string]string{"LOG_REQUESTS": "sample:7", "METRICS_EMF_NAMESPACE": "rates-dev", "METRICS_EMF_SERVICE": "rates-dev-api"}, 7, 500 * time.Millisecond, "rates-dev"},
	}
	for _, tt := range tests {
		tt.env["DB_HOST"] = "h"
		cfg, err := Load(lookupFrom(tt.env))
		if err != nil {
			t.Fatalf("%v: %v", tt.env, err)
		}
		if cfg.Log.Requests.SampleEvery != tt.every || cfg.Log.Requests.Slow != tt.slow || cfg.Metrics.EMFNamespace != tt.namespace || cfg.Metrics.EMFInterval != time.Minute {
			t.Errorf("%v: got %+v %+v", tt.env, cfg.Log.Requests, cfg.Metrics)
		}
	}
}

func TestLoadErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no database", map[string]string{}, "DATABASE_URL: set DATABASE_URL, or DB_HOST"},
		{"both database forms", map[string]string{"DATABASE_URL": "postgres://h/d", "DB_HOST": "h"}, "DATABASE_URL: set either"},
		{"bad url", map[string]string{"DATABASE_URL": "postgres://u:pw@h:notaport/d"}, "DATABASE_URL: not a valid connection string"},
		{"bad port", map[string]string{"DB_HOST": "h", "DB_PORT": "70000"}, "DB_PORT:"},
		{"bad sslmode", map[string]string{"DB_HOST": "h", "DB_SSLMODE": "sometimes"}, "DB_SSLMODE:"},
		{"bad addr", map[string]string{"DB_HOST": "h", "HTTP_ADDR": "3000"}, "HTTP_ADDR:"},
		{"bad level", map[string]string{"DB_HOST": "h", "LOG_LEVEL": "loud"}, "LOG_LEVEL:"},
		{"bad format", map[string]string{"DB_HOST": "h", "LOG_FORMAT": "xml"}, "LOG_FORMAT:"},
		{"bad timeout", map[string]string{"DB_HOST": "h", "SHUTDOWN_TIMEOUT": "20"}, "SHUTDOWN_TIMEOUT:"},
		{"negative timeout", map[string]string{"DB_HOST": "h", "SHUTDOWN_TIMEOUT": "-1s"}, "SHUTDOWN_TIMEOUT:"},
		{"negative drain", map[string]string{"DB_HOST": "h", "SHUTDOWN_DRAIN_DELAY": "-1s"}, "SHUTDOWN_DRAIN_DELAY:"},
		{"bad max range", map[string]string{"DB_HOST": "h", "MAX_RANGE_DAYS": "0"}, "MAX_RANGE_DAYS:"},
		{"password twice", map[string]string{"DB_HOST": "h", "DB_PASSWORD": "p", "DB_PASSWORD_SSM_PARAMETER": "/p"}, "DB_PASSWORD_SSM_PARAMETER: set either"},
		{"read host without host", map[string]string{"DATABASE_URL": "postgres://h/d", "DB_READ_HOST": "r"}, "DB_READ_HOST: needs DB_HOST"},
		{"bad parameter name", map[string]string{"DB_HOST": "h", "DB_PASSWORD_SSM_PARAMETER": "has space"}, "DB_PASSWORD_SSM_PARAMETER:"},
		{"bad request log", map[string]string{"DB_HOST": "h", "LOG_REQUESTS": "some"}, "LOG_REQUESTS:"},
		{"zero sample", map[string]string{"DB_HOST": "h", "LOG_REQUESTS": "sample:0"}, "LOG_REQUESTS:"},
		{"bad slow", map[string]string{"DB_HOST": "h", "LOG_SLOW_REQUESTS": "0s"}, "LOG_SLOW_REQUESTS:"},
		{"aws namespace", map[string]string{"DB_HOST": "h", "METRICS_EMF_NAMESPACE": "AWS/ECS", "METRICS_EMF_SERVICE": "s"}, "METRICS_EMF_NAMESPACE:"},
		{"namespace without service", map[string]string{"DB_HOST": "h", "METRICS_EMF_NAMESPACE": "rates-dev"}, "METRICS_EMF_SERVICE: required"},
		{"bad interval", map[string]string{"DB_HOST": "h", "METRICS_EMF_INTERVAL": "soon"}, "METRICS_EMF_INTERVAL:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(lookupFrom(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	// Every problem is reported at once.
	_, err := Load(lookupFrom(map[string]string{"DB_HOST": "h", "DB_PORT": "x", "LOG_LEVEL": "loud"}))
	if err == nil || !strings.Contains(err.Error(), "DB_PORT") || !strings.Contains(err.Error(), "LOG_LEVEL") {
		t.Fatalf("want both problems in %v", err)
	}
}

func TestSecretsStayOutOfErrorsAndLogs(t *testing.T) {
	const secret = "hunter2-very-secret"
	_, err := Load(lookupFrom(map[string]string{"DATABASE_URL": "postgres://u:" + secret + "@h:bad/d"}))
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("error %v must exist and not quote the password", err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	for _, env := range []map[string]string{
		{"DATABASE_URL": "postgres://u:" + secret + "@h:5432/d"},
		{"DB_HOST": "h", "DB_PASSWORD": secret},
	} {
		cfg, err := Load(lookupFrom(env))
		if err != nil {
			t.Fatal(err)
		}
		log.Info("config", "db", cfg.DB)
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatalf("password logged: %s", logs.String())
	}
	if !strings.Contains(logs.String(), `"password_set":true`) {
		t.Fatalf("log should say a password is set: %s", logs.String())
	}
}

func TestResolvePasswordFromSSM(t *testing.T) {
	fake := ssmfake.New(map[string]string{"/rates/dev/db/password": "s3cr3t"})
	defer fake.Close()
	for k, v := range fake.Env() {
		t.Setenv(k, v)
	}
	client, err := NewSSMClient(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	db := DB{PasswordSSMParameter: "/rates/dev/db/password"}
	if err := ResolvePassword(context.Background(), &db, client); err != nil {
		t.Fatal(err)
	}
	if db.Password != "s3cr3t" {
		t.Fatalf("password = %q, want the parameter's decrypted value", db.Password)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 || !reqs[0].WithDecryption || !reqs[0].Signed || reqs[0].Name != "/rates/dev/db/password" {
		t.Fatalf("requests = %+v, want one signed GetParameter with decryption", reqs)
	}

	missing := DB{PasswordSSMParameter: "/rates/dev/db/missing"}
	err = ResolvePassword(context.Background(), &missing, client)
	if err == nil || !strings.Contains(err.Error(), "/rates/dev/db/missing") || !strings.Contains(err.Error(), "ParameterNotFound") {
		t.Fatalf("missing parameter: err = %v, want ParameterNotFound naming it", err)
	}
}

func TestReaderSharesEverythingButTheHost(t *testing.T) {
	cfg, err := Load(lookupFrom(map[string]string{
		"DB_HOST": "primary", "DB_READ_HOST": "replica", "DB_PORT": "6543", "DB_NAME": "n", "DB_USER": "u",
		"DB_PASSWORD": "pw", "DB_SSLMODE": "require", "DB_MAX_CONNS": "7",
	}))
	if err != nil {
		t.Fatal(err)
	}
	r, ok := cfg.DB.Reader()
	if !ok {
		t.Fatal("Reader() = false with DB_READ_HOST set")
	}
	want := cfg.DB
	want.Host, want.ReadHost = "replica", ""
	if r != want {
		t.Errorf("Reader() = %+v, want %+v", r, want)
	}
	pc, err := r.PoolConfig()
	if err != nil {
		t.Fatal(err)
	}
	if pc.ConnConfig.Host != "replica" || pc.ConnConfig.Port != 6543 || pc.ConnConfig.Password != "pw" || pc.MaxConns != 7 {
		t.Errorf("reader pool: host %q port %d max %d", pc.ConnConfig.Host, pc.ConnConfig.Port, pc.MaxConns)
	}

	cfg, err = Load(lookupFrom(map[string]string{"DB_HOST": "primary"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg.DB.Reader(); ok {
		t.Error("Reader() = true without DB_READ_HOST")
	}
}
