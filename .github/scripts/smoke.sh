#!/usr/bin/env bash
# Smoke test of one environment through its load balancer, after its deploy:
#
#   smoke.sh BASE_URL [ADDRESS]
#
# BASE_URL is the API's URL as clients use it (Terraform output api_url: https://<api_domain>
# where the workspace has a domain). ADDRESS (output alb_dns_name) is where the connections go:
# the load balancer, whatever the domain's DNS says yet, while TLS still verifies the
# certificate against the domain of BASE_URL, as a client's does. Without ADDRESS, BASE_URL's
# host is resolved as usual.
#
# GET /readyz answers ready, GET / the greeting, and one GET /rates query whose answer the
# environment's data determines: SMOKE_RATES_QUERY (default: a route and three days of the
# synthetic dump) must answer 200 with one item per day, and, when SMOKE_RATES_EXPECT is set (dev:
# the dump's known answer), exactly that body. Retries for SMOKE_WAIT_SECONDS (default 60) while
# the load balancer drains the old tasks; exits non-zero naming the first check that failed.
set -euo pipefail

base=${1%/}
address=${2:-}
query=${SMOKE_RATES_QUERY:-date_from=2026-01-01&date_to=2026-01-03&orig_code=CNSHA&dest_code=NLRTM}
expect=${SMOKE_RATES_EXPECT:-}
wait_seconds=${SMOKE_WAIT_SECONDS:-60}

# The connection goes to ADDRESS, on the port of BASE_URL; Host, SNI and the certificate check
# keep BASE_URL's host.
connect=()
if [[ -n "$address" ]]; then
  [[ "$base" =~ ^(https?)://([^/:]+)(:([0-9]+))?$ ]] || { echo "::error::smoke test: not a base URL: ${base}"; exit 1; }
  host=${BASH_REMATCH[2]} port=${BASH_REMATCH[4]}
  [[ -n "$port" ]] || { [[ ${BASH_REMATCH[1]} == https ]] && port=443 || port=80; }
  connect=(--connect-to "${host}:${port}:${address}:${port}")
fi

# fetch PATH: prints "STATUS BODY".
fetch() {
  local body status
  body="$(curl -sS --max-time 10 "${connect[@]}" -w '\n%{http_code}' "${base}$1")" || return 1
  status="${body##*$'\n'}"
  printf '%s %s' "$status" "${body%$'\n'*}"
}

check() {
  local out status body
  out="$(fetch /readyz 2>"${errors}")" || { echo "GET /readyz: no answer ($(tr '\n' ' ' <"${errors}"))"; return 1; }
  [[ "$out" == '200 {"status":"ready"}' ]] || { echo "GET /readyz: ${out}"; return 1; }
  out="$(fetch /)" || { echo "GET /: no answer"; return 1; }
  [[ "$out" == '200 {"message":"Hello world!"}' ]] || { echo "GET /: ${out}"; return 1; }
  out="$(fetch "/rates?${query}")" || { echo "GET /rates: no answer"; return 1; }
  status=${out%% *} body=${out#* }
  [[ "$status" == 200 ]] || { echo "GET /rates?${query}: ${out}"; return 1; }
  if [[ -n "$expect" ]]; then
    [[ "$body" == "$expect" ]] || { echo "GET /rates?${query}: ${body}, want ${expect}"; return 1; }
  else
    jq -e '(.rates | length) > 0 and all(.rates[]; has("day") and has("count") and has("price"))' <<<"$body" >/dev/null ||
      { echo "GET /rates?${query}: not a list of days: ${body}"; return 1; }
  fi
}

errors="$(mktemp)"
trap 'rm -f "${errors}"' EXIT

deadline=$((SECONDS + wait_seconds))
until problem="$(check)"; do
  if ((SECONDS >= deadline)); then
    echo "::error::smoke test of ${base}${address:+ (through ${address})} failed: ${problem}"
    exit 1
  fi
  sleep 5
done
echo "smoke test of ${base}${address:+ (through ${address})} passed"
