// Command rates serves the freight rates API and prepares its database.
//
//	rates serve                       check the schema (MIGRATE_ON_START: migrate), seed (SEED_FILE), serve HTTP
//	rates migrate [up|down N|version|force V]
//	rates seed --file PATH [--replace [--discard-batches]]
//	rates ingest --file PATH [--kind K] [--mode M] [--json] | --manifest PATH [--json]
//	rates batches list|show ID|revert ID [--json]
//	rates check [--repair]
//	rates worker [--check]
//	rates version
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time: -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		os.Exit(1)
	}
}
