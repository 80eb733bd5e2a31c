#!/usr/bin/env bash
# Applies a plan saved by terraform-plan.sh, and nothing else:
#
#   terraform-apply.sh CONFIG_DIR WORKSPACE PLAN_FILE SHA256
#
# SHA256 is what the plan job reported for the file its reviewers read; a file with another
# digest is refused before Terraform runs. Terraform itself refuses a saved plan whose state
# changed since it was made ("Saved plan is stale"): a plan that changed between the approval
# and the apply is never applied. The workspace was created by the plan (CREATE_WORKSPACE=true)
# and is selected, not created, here: a saved plan applies to whatever workspace is selected.
# Paths are absolute (terraform runs in CONFIG_DIR). Needs BACKEND_CONFIG_FILE and the apply role's AWS credentials.
set -euo pipefail

config=$1 workspace=$2 plan=$3 want=$4
: "${BACKEND_CONFIG_FILE:?}"
for p in "$plan" "$BACKEND_CONFIG_FILE"; do
  [[ "$p" == /* ]] || { echo "::error::terraform-apply.sh: ${p} is not an absolute path (terraform runs in ${config})"; exit 1; }
done

got="$(sha256sum "$plan" | cut -d' ' -f1)"
if [[ ! "$want" =~ ^[0-9a-f]{64}$ || "$got" != "$want" ]]; then
  echo "::error::${plan} has sha256 ${got}, the approved plan ${want}: refusing to apply"
  exit 1
fi
terraform -chdir="$config" init -input=false -lockfile=readonly -backend-config="$BACKEND_CONFIG_FILE"
terraform -chdir="$config" workspace select "$workspace"
terraform -chdir="$config" apply -input=false -lock-timeout=10m "$plan"
