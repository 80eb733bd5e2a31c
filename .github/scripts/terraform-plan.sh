#!/usr/bin/env bash
# Plans one workspace of the root module and saves the plan, for a later job to apply as it is:
#
#   terraform-plan.sh CONFIG_DIR WORKSPACE PLAN_FILE
#
# CONFIG_DIR is the root module (terraform/ of the commit to apply); paths are absolute. Needs BACKEND_CONFIG_FILE
# (backend.hcl) and VAR_FILE (the workspace's extra tfvars, may be empty), and AWS credentials.
# CREATE_WORKSPACE=true: the role may write state (the apply role), so a workspace that does not
# exist yet is created (`workspace select -or-create`). Otherwise (the read-only plan role of pull
# requests, which may only write lock files) a missing workspace is planned against an empty
# local state instead: what its first apply will create, without writing to the state bucket.
#
# Writes PLAN_FILE, PLAN_FILE.txt (terraform show) and, to GITHUB_OUTPUT when set, changes
# (true/false), sha256 (of PLAN_FILE: the apply refuses any other file) and new_workspace.
set -euo pipefail

config=$1 workspace=$2 plan=$3
: "${BACKEND_CONFIG_FILE:?}" "${VAR_FILE:?}"
for p in "$plan" "$BACKEND_CONFIG_FILE" "$VAR_FILE"; do
  [[ "$p" == /* ]] || { echo "::error::terraform-plan.sh: ${p} is not an absolute path (terraform runs in ${config})"; exit 1; }
done
tf() { terraform -chdir="$config" "$@"; }

tf init -input=false -lockfile=readonly -backend-config="$BACKEND_CONFIG_FILE"
new_workspace=false
if [[ "${CREATE_WORKSPACE:-false}" == true ]]; then
  tf workspace select -or-create=true "$workspace"
elif tf workspace list | sed 's/^[* ] *//' | grep -qx -- "$workspace"; then
  tf workspace select "$workspace"
else
  # No state to read: plan what a first apply creates, against an empty state of this runner.
  new_workspace=true
  echo "::notice::workspace ${workspace} does not exist yet: planned against an empty state; its first deploy creates it"
  empty="$(mktemp -d)"
  trap 'rm -f "${config}/zz_empty_state_override.tf"' EXIT
  cat >"${config}/zz_empty_state_override.tf" <<HCL
terraform {
  backend "local" {
    path          = "${empty}/terraform.tfstate"
    workspace_dir = "${empty}/workspaces"
  }
}
HCL
  export TF_DATA_DIR="${empty}/data"
  tf init -input=false -lockfile=readonly
  tf workspace new "$workspace"
fi

mkdir -p "$(dirname "$plan")"
status=0
tf plan -input=false -lock-timeout=10m -detailed-exitcode -var-file="$VAR_FILE" -out="$plan" || status=$?
case "$status" in
  0) changes=false ;;
  2) changes=true ;;
  *) exit "$status" ;;
esac
tf show -no-color "$plan" >"${plan}.txt"
sha="$(sha256sum "$plan" | cut -d' ' -f1)"
echo "plan of ${workspace}: changes ${changes}, sha256 ${sha}"
if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
  {
    echo "changes=${changes}"
    echo "sha256=${sha}"
    echo "new_workspace=${new_workspace}"
  } >>"$GITHUB_OUTPUT"
fi
