#!/usr/bin/env bash
# Static checks of the Terraform tree (terraform/). Nothing here talks to AWS: the tests use a
# mocked provider, and no credentials are read.
#
#   1. terraform fmt -check -recursive
#   2. README tables: each README's Inputs and Outputs list exactly the variables and outputs
#   3. terraform init -backend=false + validate: root, bootstrap, stack and every module
#      (the committed lock files of the root and bootstrap are used read-only)
#   4. terraform test (plan-level, mock_provider "aws") wherever a tests/ folder exists, plus a
#      check that the marker password of the tests never shows up in the printed plans, and
#      terraform fmt -check on every environments_tfvars the bootstrap tests render
#   5. the workflows' plan and apply scripts (.github/scripts/terraform-*.sh) with this terraform
#   6. tflint with the bundled terraform ruleset (.tflint.hcl), no findings allowed
#   7. trivy config, offline with its embedded checks (trivy.yaml), no HIGH/CRITICAL allowed
#
# Steps 3 and 4 run on a copy of terraform/ in a temporary folder, so the work tree gets no
# .terraform folders or lock files.
#
# Environment:
#   TF_PLUGIN_DIR  filesystem mirror of the providers. Default: /opt/tf-plugins when it exists,
#                  otherwise empty, which means the public registry (GitHub runners, laptops).
#   TERRAFORM      terraform binary (default: terraform from PATH, >= 1.11)
#   TOOLS_DIR      folder of the built tools (default: ${HOME}/.cache/rates-tools)
#   TFLINT         tflint binary (default: ${TOOLS_DIR}/bin/tflint)
#   TRIVY          trivy binary (default: ${TOOLS_DIR}/bin/trivy)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tf_root="${repo_root}/terraform"

TERRAFORM="${TERRAFORM:-terraform}"
TOOLS_DIR="${TOOLS_DIR:-${HOME}/.cache/rates-tools}"
TFLINT="${TFLINT:-${TOOLS_DIR}/bin/tflint}"
TRIVY="${TRIVY:-${TOOLS_DIR}/bin/trivy}"

default_plugin_dir="/opt/tf-plugins"
if [[ -z "${TF_PLUGIN_DIR+set}" ]]; then
  if [[ -d "${default_plugin_dir}" ]]; then
    TF_PLUGIN_DIR="${default_plugin_dir}"
  else
    TF_PLUGIN_DIR=""
  fi
fi

# The tests' master password. It must never appear in a printed plan.
password_marker="NeverInPlanMarker"

work_dir="$(mktemp -d)"
trap 'rm -rf -- "${work_dir}"' EXIT

section() {
  printf '\n==> %s\n' "$*"
}

fail() {
  printf 'terraform-checks: FAILED: %s\n' "$*" >&2
  exit 1
}

command -v "${TERRAFORM}" >/dev/null 2>&1 || fail "terraform not found (set TERRAFORM)"

export TF_IN_AUTOMATION=1
export TF_INPUT=0
export CHECKPOINT_DISABLE=1

if [[ -n "${TF_PLUGIN_DIR}" ]]; then
  [[ -d "${TF_PLUGIN_DIR}" ]] || fail "TF_PLUGIN_DIR=${TF_PLUGIN_DIR} is not a directory"
  # Providers come from the mirror only; the registry is never contacted.
  cat >"${work_dir}/terraformrc" <<EOF
provider_installation {
  filesystem_mirror {
    path = "${TF_PLUGIN_DIR}"
  }
}
EOF
  export TF_CLI_CONFIG_FILE="${work_dir}/terraformrc"
  provider_source="filesystem mirror ${TF_PLUGIN_DIR}"
else
  # A CLI configuration file that does not exist only produces warnings; drop the reference.
  if [[ -n "${TF_CLI_CONFIG_FILE:-}" && ! -f "${TF_CLI_CONFIG_FILE}" ]]; then
    unset TF_CLI_CONFIG_FILE
  fi
  provider_source="public registry"
fi

printf 'terraform-checks: %s, providers from the %s\n' "$("${TERRAFORM}" version | sed -n '1p')" "${provider_source}"

# init, validate and test run on a copy of the tree: they write lock files and working data, and
# the source tree (possibly in use by someone else) stays untouched.
copy_root="${work_dir}/src"
mkdir -p "${copy_root}"
tar -C "${repo_root}" --exclude=.terraform --exclude='*.tfstate*' -cf - terraform | tar -C "${copy_root}" -xf -

# Directories relative to terraform/: the root and bootstrap (committed lock files), the stack,
# then every reusable module.
config_names=(. bootstrap stack)
while IFS= read -r dir; do
  config_names+=("modules/${dir##*/}")
done < <(find "${tf_root}/modules" -mindepth 1 -maxdepth 1 -type d | sort)

label() {
  if [[ "$1" == "." ]]; then printf 'terraform'; else printf 'terraform/%s' "$1"; fi
}

################################################################################
section "terraform fmt -check -recursive terraform"
################################################################################

if ! "${TERRAFORM}" fmt -check -recursive -diff "${tf_root}"; then
  fail "formatting differs; run: terraform fmt -recursive terraform"
fi
echo "ok"

################################################################################
section "README tables: Inputs and Outputs match variables and outputs"
################################################################################

# Names listed in the first column of a README section's table (| `name` | ...).
readme_names() {
  awk -v section="## $2" '
    $0 == section { inside = 1; next }
    /^## / { inside = 0 }
    inside && /^\| `/ { split($0, cell, "`"); print cell[2] }
  ' "$1" | sort
}

declared_names() {
  local kind="$1" dir="$2"
  cat "${dir}"/*.tf | sed -nE "s/^${kind} \"([^\"]+)\".*/\\1/p" | sort
}

for config in "${config_names[@]}"; do
  dir="${tf_root}/${config}"
  name="$(label "${config}")"
  readme="${dir}/README.md"
  [[ -f "${readme}" ]] || fail "${name} has no README.md"
  if ! diff <(declared_names variable "${dir}") <(readme_names "${readme}" Inputs) >"${work_dir}/readme.diff"; then
    cat "${work_dir}/readme.diff"
    fail "the Inputs table of ${name}/README.md differs from its variables (< variables.tf, > README)"
  fi
  if ! diff <(declared_names output "${dir}") <(readme_names "${readme}" Outputs) >"${work_dir}/readme.diff"; then
    cat "${work_dir}/readme.diff"
    fail "the Outputs table of ${name}/README.md differs from its outputs (< outputs.tf, > README)"
  fi
  printf '  %s: %s inputs, %s outputs documented\n' "${name}" \
    "$(declared_names variable "${dir}" | grep -c . || true)" "$(declared_names output "${dir}" | grep -c . || true)"
done

################################################################################
section "terraform init -backend=false + validate"
################################################################################

data_dir_of() {
  local name
  name="$(label "$1")"
  printf '%s/tfdata/%s' "${work_dir}" "${name//\//_}"
}

for config in "${config_names[@]}"; do
  dir="${copy_root}/terraform/${config}"
  name="$(label "${config}")"
  init_args=(-backend=false -input=false -no-color)
  if [[ -f "${dir}/.terraform.lock.hcl" ]]; then
    # A committed lock file must already hold the checksums of what gets installed.
    init_args+=(-lockfile=readonly)
  fi

  if ! TF_DATA_DIR="$(data_dir_of "${config}")" "${TERRAFORM}" -chdir="${dir}" init "${init_args[@]}" >"${work_dir}/init.log" 2>&1; then
    cat "${work_dir}/init.log"
    fail "terraform init in ${name}"
  fi

  if ! TF_DATA_DIR="$(data_dir_of "${config}")" "${TERRAFORM}" -chdir="${dir}" validate -no-color >"${work_dir}/validate.log" 2>&1; then
    cat "${work_dir}/validate.log"
    fail "terraform validate in ${name}"
  fi
  printf '  %s: valid\n' "${name}"
done

################################################################################
section "terraform test (mock_provider \"aws\", plan only)"
################################################################################

total_passed=0
total_failed=0

for config in "${config_names[@]}"; do
  dir="${copy_root}/terraform/${config}"
  compgen -G "${dir}/tests/*.tftest.hcl" >/dev/null || continue
  name="$(label "${config}")"
  log="${work_dir}/test-${name//\//_}.log"

  status=0
  TF_DATA_DIR="$(data_dir_of "${config}")" "${TERRAFORM}" -chdir="${dir}" test -no-color -verbose >"${log}" 2>&1 || status=$?

  summary="$(grep -E '^(Success|Failure)! [0-9]+ passed, [0-9]+ failed' "${log}" | tail -n 1 || true)"
  if [[ "${status}" -ne 0 || -z "${summary}" ]]; then
    # Without the plans printed by -verbose, the failures are easier to read.
    TF_DATA_DIR="$(data_dir_of "${config}")" "${TERRAFORM}" -chdir="${dir}" test -no-color || true
    fail "terraform test in ${name}"
  fi

  if grep -qF "${password_marker}" "${log}"; then
    grep -nF "${password_marker}" "${log}" | head -n 5
    fail "the test password shows up in the plans of ${name}"
  fi

  passed="$(sed -E 's/.*! ([0-9]+) passed.*/\1/' <<<"${summary}")"
  failed="$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"${summary}")"
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed))
  printf '  %s: %s passed, %s failed; password marker absent from the plans\n' "${name}" "${passed}" "${failed}"
done

[[ "${total_passed}" -gt 0 ]] || fail "no terraform test ran"
[[ "${total_failed}" -eq 0 ]] || fail "${total_failed} terraform test(s) failed"

################################################################################
section "bootstrap's environments_tfvars (committed as terraform/environments.auto.tfvars) is fmt clean"
################################################################################

# Every run of bootstrap's tests plans the output with the mocked provider; each rendering must
# pass the same `terraform fmt -check` that step 1 runs on the committed file.
command -v jq >/dev/null 2>&1 || fail "jq not found (apt-get install jq)"
renderings="${work_dir}/environments_tfvars"
mkdir -p "${renderings}"
if ! TF_DATA_DIR="$(data_dir_of bootstrap)" "${TERRAFORM}" -chdir="${copy_root}/terraform/bootstrap" test -json -verbose >"${work_dir}/bootstrap-test.json" 2>&1; then
  fail "terraform test -json in terraform/bootstrap"
fi
jq -r 'select(.type == "test_plan") | .test_plan.output_changes.environments_tfvars.after // empty | @base64' \
  "${work_dir}/bootstrap-test.json" | sort -u >"${renderings}/all"
count=0
while IFS= read -r encoded; do
  count=$((count + 1))
  base64 -d <<<"${encoded}" >"${renderings}/${count}.tfvars"
  if ! "${TERRAFORM}" fmt -check -diff "${renderings}/${count}.tfvars"; then
    cat "${renderings}/${count}.tfvars"
    fail "the output environments_tfvars of terraform/bootstrap is not terraform fmt clean"
  fi
done <"${renderings}/all"
[[ "${count}" -gt 1 ]] || fail "bootstrap's tests rendered ${count} environments_tfvars; expected several"
printf '  %d renderings checked\n' "${count}"

################################################################################
section "tflint (bundled terraform ruleset, .tflint.hcl)"
################################################################################

if [[ ! -x "${TFLINT}" ]]; then
  fail "tflint not found at ${TFLINT}; build it with: GOBIN=${TOOLS_DIR}/bin go install github.com/terraform-linters/tflint@v0.64.0"
fi
"${TFLINT}" --version | sed -n '1p'
if ! "${TFLINT}" --chdir="${tf_root}" --recursive --config="${repo_root}/.tflint.hcl" --format=compact; then
  fail "tflint reported findings"
fi
echo "ok: no findings"

################################################################################
section "trivy config (offline, HIGH/CRITICAL, trivy.yaml)"
################################################################################

if [[ ! -x "${TRIVY}" ]]; then
  fail "trivy not found at ${TRIVY}; build it with: GOBIN=${TOOLS_DIR}/bin GOEXPERIMENT=jsonv2 go install github.com/aquasecurity/trivy/cmd/trivy@v0.74.0"
fi
"${TRIVY}" --version | sed -n '1p'
echo "(offline: trivy logs that it falls back to its embedded checks; that is expected)"
if ! (cd "${repo_root}" && "${TRIVY}" config \
  --config "${repo_root}/trivy.yaml" \
  --cache-dir "${work_dir}/trivy-cache" \
  --skip-version-check \
  --disable-telemetry \
  terraform); then
  fail "trivy reported HIGH/CRITICAL misconfigurations"
fi
echo "ok: no HIGH/CRITICAL findings"

printf '\nterraform-checks: %d passed, %d failed\n' "${total_passed}" "${total_failed}"
