package main

import (
	"errors"
	"fmt"

	"rates/internal/seed"
	"rates/internal/store"
)

// advise adds to the error of command cmd what the operator can do about it. The libraries say
// what failed; which command, flag or setting fixes it is for the command line to say.
func advise(cmd string, err error) error {
	var tooOld *store.SchemaTooOldError
	var dirty *store.SchemaDirtyError
	var failed *store.MigrationError
	switch {
	case errors.As(err, &failed) && failed.Dirty:
		return fmt.Errorf("%w; undo or complete what it did, record the version that matches with "+
			"`rates migrate force VERSION`, then run `rates migrate up` (docs/operations.md, \"A failed migration\")", err)
	case errors.As(err, &failed):
		return fmt.Errorf("%w; fix the cause and run `rates migrate up` again (no `migrate force`: the version did not move)", err)
	case errors.As(err, &tooOld):
		return fmt.Errorf("%w: apply the migrations with `rates migrate up` "+
			"(in AWS the deploy's migration task runs it; locally set MIGRATE_ON_START=true)", err)
	case errors.As(err, &dirty):
		return fmt.Errorf("%w: repair what it left, then record the last complete version with "+
			"`rates migrate force VERSION` and run `rates migrate up`", err)
	case errors.Is(err, seed.ErrBatchesPresent):
		return fmt.Errorf("%w; revert them (`rates batches revert ID`) or pass --discard-batches to discard them", err)
	case errors.Is(err, seed.ErrDataDiffers) && cmd == "seed":
		return fmt.Errorf("%w; pass --replace to replace it", err)
	case errors.Is(err, seed.ErrDataDiffers):
		return fmt.Errorf("%w; replace it with `rates seed --file PATH --replace`, or leave SEED_FILE empty", err)
	}
	return err
}
