#!/bin/sh
# Container entry point for the rates image.
#
#   serve, or no arguments    migrate when MIGRATE_ON_START=true (otherwise `rates serve` only
#   or flags only             checks the schema), seed SEED_FILE (empty: skip), then exec
#                             `rates serve "$@"`
#   any other subcommand      a one-off job (migrate, seed, check, batches, ...): exec
#                             `rates <subcommand> ...` directly, without the start-up steps
#
# Every step logs a JSON line; a failing step stops the container with its exit status before
# anything listens. The server replaces this shell (exec), so it receives SIGTERM directly.
set -eu

log() {
	printf '{"time":"%s","level":"%s","msg":"%s","component":"entrypoint"}\n' \
		"$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" "$2" >&2
}

case "${1:-}" in
serve)
	shift
	;;
"" | -*) ;;
*)
	exec rates "$@"
	;;
esac

# While a step runs this shell is PID 1: pass SIGTERM/SIGINT on so the step rolls back and ends.
child=""
forward() {
	if [ -n "$child" ]; then
		kill -TERM "$child" 2>/dev/null || true
	fi
}
trap forward TERM INT

run_step() {
	step=$1
	shift
	log info "$step: starting"
	rates "$@" &
	child=$!
	status=0
	wait "$child" || status=$?
	# A trapped signal interrupts wait; wait again until the step has really finished.
	while kill -0 "$child" 2>/dev/null; do
		wait "$child" || status=$?
	done
	child=""
	if [ "$status" -ne 0 ]; then
		log error "$step failed (exit status $status); the container stops"
		exit "$status"
	fi
	log info "$step: done"
}

if [ "${MIGRATE_ON_START:-false}" = true ]; then
	run_step migrate migrate up
else
	log info "migrate: MIGRATE_ON_START is not true, the deploy migrates; serve checks the schema"
fi
if [ -n "${SEED_FILE:-}" ]; then
	run_step seed seed --file "$SEED_FILE"
else
	log info "seed: SEED_FILE is empty, skipping"
fi

trap - TERM INT
# The dump is in place; serve need not hash it again.
export SEED_FILE=""
exec rates serve "$@"
