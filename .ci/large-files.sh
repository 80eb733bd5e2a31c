#!/usr/bin/env bash
# Fails on any file tracked by the git repository of the current directory that is larger than
# MAX_TRACKED_BYTES (default 2 MiB), except the SQL dumps (*.sql): every clone carries every
# tracked file, so build outputs and data files belong in .gitignore, not in the history.
# Sizes are those of the blobs in the index: what is committed or about to be.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"

max="${MAX_TRACKED_BYTES:-2097152}"
too_big=$(git ls-files --stage |
  awk -F '\t' '{ split($1, f, " "); print f[2], $2 }' |
  git cat-file --batch-check='%(objectsize) %(rest)' |
  awk -v max="${max}" '$1 > max && $0 !~ /\.sql$/')
if [[ -n "${too_big}" ]]; then
  echo "tracked files over ${max} bytes (only SQL dumps may be; untrack and ignore the others):" >&2
  echo "${too_big}" >&2
  exit 1
fi
echo "no tracked file over ${max} bytes but the SQL dumps"
