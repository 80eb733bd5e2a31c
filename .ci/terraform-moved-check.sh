#!/usr/bin/env bash
# Proves that a change of the Terraform layout keeps an applied workspace's resources: the stack
# of an earlier commit is applied with the mocked AWS provider (terraform test, command = apply),
# then the stack of the work tree is planned against that state, for dev and prod. The plan must
# neither destroy nor create any resource the earlier state holds (a resource that moved keeps its
# object through its `moved` block); resources new in the work tree may be created. Updates are
# listed with the attributes they change, for review: a mocked provider cannot tell an update in
# place from a replacement, so an attribute AWS cannot change in place (a name, a name prefix, a
# security group's description) in that list means a replacement. Nothing talks to AWS.
#
#   .ci/terraform-moved-check.sh <earlier commit>     (needs the commit in the local history)
#
# Environment: TERRAFORM, TF_PLUGIN_DIR as for .ci/terraform-checks.sh.
set -euo pipefail

[[ $# -eq 1 ]] || { echo "usage: $0 <earlier commit>" >&2; exit 2; }
earlier="$1"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TERRAFORM="${TERRAFORM:-terraform}"
TF_PLUGIN_DIR="${TF_PLUGIN_DIR-/opt/tf-plugins}"
command -v jq >/dev/null || { echo "jq not found" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf -- "${work}"' EXIT
export TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1 TF_DATA_DIR="${work}/tfdata"
if [[ -n "${TF_PLUGIN_DIR}" && -d "${TF_PLUGIN_DIR}" ]]; then
  printf 'provider_installation {\n  filesystem_mirror {\n    path = "%s"\n  }\n}\n' "${TF_PLUGIN_DIR}" >"${work}/terraformrc"
  export TF_CLI_CONFIG_FILE="${work}/terraformrc"
fi

mkdir -p "${work}/earlier"
git -C "${repo_root}" archive "${earlier}" terraform | tar -x -C "${work}/earlier"
tar -C "${repo_root}" --exclude=.terraform --exclude='*.tfstate*' -cf - terraform | tar -C "${work}" -xf -
stack="${work}/terraform/stack"
ln -s "${work}/earlier" "${stack}/earlier"
rm -f "${stack}"/tests/*.tftest.hcl

# Every mocked ARN is shaped like one (the provider validates them when the earlier stack is
# applied); data sources answer the same on both runs.
mock() { printf '  mock_resource "%s" {\n    defaults = {\n' "$1"; shift; printf '      %s\n' "$@"; printf '    }\n  }\n'; }
{
  echo 'mock_provider "aws" {'
  mock aws_kms_key 'arn = "arn:aws:kms:eu-central-1:123456789012:key/00000000-0000-0000-0000-000000000000"' 'key_id = "00000000-0000-0000-0000-000000000000"'
  mock aws_sns_topic 'arn = "arn:aws:sns:eu-central-1:123456789012:mock"'
  mock aws_iam_role 'arn = "arn:aws:iam::123456789012:role/mock"'
  mock aws_cloudwatch_log_group 'arn = "arn:aws:logs:eu-central-1:123456789012:log-group:/mock"'
  mock aws_lb 'arn = "arn:aws:elasticloadbalancing:eu-central-1:123456789012:loadbalancer/app/mock/0123456789abcdef"' 'arn_suffix = "app/mock/0123456789abcdef"' 'dns_name = "mock.eu-central-1.elb.amazonaws.com"'
  mock aws_lb_target_group 'arn = "arn:aws:elasticloadbalancing:eu-central-1:123456789012:targetgroup/mock/0123456789abcdef"' 'arn_suffix = "targetgroup/mock/0123456789abcdef"'
  mock aws_lb_listener 'arn = "arn:aws:elasticloadbalancing:eu-central-1:123456789012:listener/app/mock/0123456789abcdef/0123456789abcdef"'
  mock aws_ecs_cluster 'arn = "arn:aws:ecs:eu-central-1:123456789012:cluster/mock"'
  mock aws_ecs_task_definition 'arn = "arn:aws:ecs:eu-central-1:123456789012:task-definition/mock:1"'
  mock aws_ecs_service 'id = "arn:aws:ecs:eu-central-1:123456789012:service/mock/mock"'
  mock aws_appautoscaling_policy 'arn = "arn:aws:autoscaling:eu-central-1:123456789012:scalingPolicy:00000000-0000-0000-0000-000000000000:resource/ecs/service/mock/mock:policyName/mock"'
  mock aws_s3_bucket 'arn = "arn:aws:s3:::mock"' 'id = "mock"'
  mock aws_sqs_queue 'arn = "arn:aws:sqs:eu-central-1:123456789012:mock"' 'id = "https://sqs.eu-central-1.amazonaws.com/123456789012/mock"' 'url = "https://sqs.eu-central-1.amazonaws.com/123456789012/mock"'
  mock aws_ssm_parameter 'arn = "arn:aws:ssm:eu-central-1:123456789012:parameter/mock"'
  mock aws_ecr_repository 'arn = "arn:aws:ecr:eu-central-1:123456789012:repository/mock"' 'repository_url = "123456789012.dkr.ecr.eu-central-1.amazonaws.com/mock"'
  mock aws_wafv2_web_acl 'arn = "arn:aws:wafv2:eu-central-1:123456789012:regional/webacl/mock/00000000-0000-0000-0000-000000000000"'
  mock aws_vpc_endpoint 'prefix_list_id = "pl-6ea54007"'
  mock aws_db_instance 'arn = "arn:aws:rds:eu-central-1:123456789012:db:mock"' 'address = "mock.abc.eu-central-1.rds.amazonaws.com"'
  cat <<'EOF'
  mock_data "aws_availability_zones" {
    defaults = { names = ["eu-central-1a", "eu-central-1b", "eu-central-1c"] }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-central-1" }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
  mock_data "aws_iam_openid_connect_provider" {
    defaults = { arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com" }
  }
  mock_data "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/rates-ci/rates-deploy", name = "rates-deploy" }
  }
  mock_data "aws_vpc_endpoint_service" {
    defaults = { service_name = "com.amazonaws.eu-central-1.service" }
  }
}

variables {
  db_master_password = "Password0123456789abcdef"
  db_api_password    = "Password0123456789api"
  db_worker_password = "Password0123456789worker"
  environments = {
    dev  = { region = "eu-central-1", account_id = "123456789012" }
    prod = { region = "eu-central-1", account_id = "123456789012" }
  }
  certificate_arn = "arn:aws:acm:eu-central-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
  api_domain      = "rates.example.com"
}
EOF
  for ws in dev prod; do
    cat <<EOF

run "${ws}_earlier" {
  command   = apply
  state_key = "${ws}"
  variables {
    environment = "${ws}"
  }
  module {
    source = "./earlier/terraform/stack"
  }
}

run "${ws}_now" {
  command   = plan
  state_key = "${ws}"
  variables {
    environment = "${ws}"
  }
}
EOF
  done
} >"${stack}/tests/moved.tftest.hcl"

"${TERRAFORM}" -chdir="${stack}" init -backend=false -input=false >"${work}/init.log" 2>&1 || { cat "${work}/init.log"; exit 1; }
if ! "${TERRAFORM}" -chdir="${stack}" test -json -verbose >"${work}/test.json" 2>"${work}/test.err"; then
  jq -r 'select(.type == "diagnostic") | .["@message"]' "${work}/test.json" | sort -u | head -n 20
  cat "${work}/test.err"
  exit 1
fi

status=0
for ws in dev prod; do
  plan="$(jq -c --arg run "${ws}_now" 'select(.type == "test_plan" and .["@testrun"] == $run) | .test_plan' "${work}/test.json")"
  moved="$(jq '[.resource_changes[] | select(.previous_address != null)] | length' <<<"${plan}")"
  replaced="$(jq -r '.resource_changes[] | select(.change.actions | index("delete")) | .address' <<<"${plan}")"
  created="$(jq -r '.resource_changes[] | select(.change.actions == ["create"]) | "  \(.address)"' <<<"${plan}")"
  printf '%s: %s resources moved\n' "${ws}" "${moved}"
  if [[ -n "${replaced}" ]]; then
    printf '%s: DESTROYED (or replaced):\n%s\n' "${ws}" "${replaced}"
    status=1
  fi
  [[ -z "${created}" ]] || printf '%s: created (new in the work tree):\n%s\n' "${ws}" "${created}"
  # Updates in place, with what they change; `tags = {}` of the earlier modules and an absent tags
  # argument are the same to the provider (no tags), so they are left out.
  jq -r '
    def flat: [paths(scalars) as $p | {key: ($p | map(tostring) | join(".")), value: getpath($p)}] | from_entries;
    .resource_changes[] | select(.change.actions == ["update"])
    | (.change.before | del(.tags, .tags_all) | flat) as $b
    | (.change.after | del(.tags, .tags_all) | flat) as $a
    | (.change.after_unknown // {} | flat) as $u
    | [($b + $a) | keys[] | select($b[.] != $a[.] and ($u[.] | not))] as $changed
    | select($changed | length > 0)
    | "  updated: \(.address) (\($changed | join(", ")))"' <<<"${plan}"
done
exit "${status}"
