package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"rates/internal/seed"
	"rates/internal/store"
)

// The libraries' errors say what failed; the command adds what fixes it, and keeps the error
// matchable.
func TestAdvise(t *testing.T) {
	diff := fmt.Errorf("seed a.sql: %w: it holds the dump with sha256 x", seed.ErrDataDiffers)
	tests := []struct {
		name   string
		cmd    string
		err    error
		advice string // "" : the error passes unchanged
	}{
		{"schema too old", "serve", &store.SchemaTooOldError{Have: 0, Need: 33}, "`rates migrate up`"},
		{"schema too old, worker", "worker", fmt.Errorf("open: %w", &store.SchemaTooOldError{Have: 32, Need: 33}), "MIGRATE_ON_START=true"},
		{"dirty schema", "seed", &store.SchemaDirtyError{Version: 33}, "`rates migrate force VERSION`"},
		{"failed migration", "migrate", fmt.Errorf("up: %w", &store.MigrationError{File: "000034_x.up.sql", Version: 33, Err: errors.New("ERROR: x")}), "run `rates migrate up` again (no `migrate force`"},
		{"failed no-transaction migration", "migrate", &store.MigrationError{File: "000034_x.up.sql", Version: 34, Dirty: true, Err: errors.New("ERROR: x")}, "`rates migrate force VERSION`, then run `rates migrate up`"},
		{"batches present", "seed", fmt.Errorf("seed a.sql: %w: replacing", seed.ErrBatchesPresent), "pass --discard-batches"},
		{"other dump, seed", "seed", diff, "pass --replace"},
		{"other dump, serve", "serve", diff, "`rates seed --file PATH --replace`, or leave SEED_FILE empty"},
		{"anything else", "serve", errors.New("listen on :3000: address in use"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := advise(tt.cmd, tt.err)
			if tt.advice == "" {
				if got.Error() != tt.err.Error() {
					t.Fatalf("advise changed %v into %v", tt.err, got)
				}
				return
			}
			if strings.Contains(tt.err.Error(), tt.advice) {
				t.Fatalf("the library's error already gives the advice: %v", tt.err)
			}
			if !strings.HasPrefix(got.Error(), tt.err.Error()) || !strings.Contains(got.Error(), tt.advice) {
				t.Fatalf("advise = %v, want %v followed by %q", got, tt.err, tt.advice)
			}
			if !errors.Is(got, tt.err) {
				t.Fatalf("advise = %v no longer wraps %v", got, tt.err)
			}
		})
	}
}
