#!/usr/bin/env bash
# Lints an OpenAPI document (default: api/openapi.yaml) with Redocly's recommended rules and
# fails on any problem. redocly itself exits non-zero on errors only; here a warning fails too.
#
# Environment:
#   TOOLS_DIR  folder of the built tools (default: ${HOME}/.cache/rates-tools)
#   REDOCLY    redocly binary (default: ${TOOLS_DIR}/bin/redocly, which make tools installs)
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS_DIR="${TOOLS_DIR:-${HOME}/.cache/rates-tools}"
REDOCLY="${REDOCLY:-${TOOLS_DIR}/bin/redocly}"
spec="${1:-api/openapi.yaml}"
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
if [[ ! -x "${REDOCLY}" ]]; then
  echo "no redocly at ${REDOCLY}: make tools installs it (npm install of @redocly/cli)" >&2
  exit 1
fi

lint() { "${REDOCLY}" lint --extends=recommended "$@" "${spec}"; }

# The JSON report's totals count both kinds; a report that does not parse fails as well.
report=$(lint --format=json 2>/dev/null) || true
problems=$(node -e 'const t = JSON.parse(require("fs").readFileSync(0, "utf8")).totals; console.log(t.errors + t.warnings)' <<<"${report}")
if [[ "${problems}" != 0 ]]; then
  lint --format=stylish || true
  echo "${spec}: ${problems} problems under Redocly's recommended rules (errors and warnings both fail)" >&2
  exit 1
fi
echo "${spec}: no errors, no warnings (Redocly $("${REDOCLY}" --version), recommended rules)"
