package reference

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFind(t *testing.T) {
	existing := filepath.Join(t.TempDir(), "rates.sql")
	if err := os.WriteFile(existing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ env, want string }{
		{existing, existing},
		{filepath.Join(t.TempDir(), "missing.sql"), ""},
	} {
		t.Setenv("RATES_REFERENCE_DUMP", tt.env)
		if got := Find(); got != tt.want {
			t.Errorf("Find() with RATES_REFERENCE_DUMP=%s = %q, want %q", tt.env, got, tt.want)
		}
	}
}
