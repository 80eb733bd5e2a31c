#!/usr/bin/env bash
# Runs a one-off ECS task and waits for it: the deploy's migration, seed and worker start check.
#
#   run-one-off-task.sh NAME TASK_DEFINITION_ARN NETWORK_SERVICE [COMMAND_JSON]
#
# NAME labels the output; NETWORK_SERVICE is the ECS service whose subnets and security groups the
# task gets (the database admits them); COMMAND_JSON, for example '["seed"]', overrides the
# container's command. Needs ECS_CLUSTER, CONTAINER_NAME and ONE_OFF_TIMEOUT_SECONDS (default
# 900). Exits 0 only when the container exited 0; a task that outlives the timeout is stopped.
set -euo pipefail

name=$1 task_definition=$2 network_service=$3 command_json=${4:-}
timeout=${ONE_OFF_TIMEOUT_SECONDS:-900}

network="$(aws ecs describe-services --cluster "$ECS_CLUSTER" --services "$network_service" \
  --query 'services[0].networkConfiguration' --output json)"
[[ "$network" != null ]] || { echo "::error::${name}: no network configuration on service ${network_service}"; exit 1; }

overrides='{}'
if [[ -n "$command_json" ]]; then
  overrides="$(jq -nc --arg c "$CONTAINER_NAME" --argjson cmd "$command_json" '{containerOverrides: [{name: $c, command: $cmd}]}')"
fi

task="$(aws ecs run-task --cluster "$ECS_CLUSTER" --task-definition "$task_definition" --launch-type FARGATE \
  --network-configuration "$network" --overrides "$overrides" --started-by "deploy-${name}" \
  --query 'tasks[0].taskArn' --output text)"
[[ -n "$task" && "$task" != None ]] || { echo "::error::${name}: the task did not start"; exit 1; }
echo "${name}: started ${task}"

deadline=$((SECONDS + timeout))
status=""
while ((SECONDS < deadline)); do
  status="$(aws ecs describe-tasks --cluster "$ECS_CLUSTER" --tasks "$task" --query 'tasks[0].lastStatus' --output text)"
  [[ "$status" == STOPPED ]] && break
  sleep 10
done
if [[ "$status" != STOPPED ]]; then
  aws ecs stop-task --cluster "$ECS_CLUSTER" --task "$task" --reason "deploy: ${name} timed out after ${timeout}s" >/dev/null
  echo "::error::${name}: still ${status} after ${timeout}s; stopped it"
  exit 1
fi

read -r exit_code reason < <(aws ecs describe-tasks --cluster "$ECS_CLUSTER" --tasks "$task" --output text \
  --query "tasks[0].[containers[?name=='${CONTAINER_NAME}'] | [0].exitCode, stoppedReason]")

# The container's log stream: <prefix ecs>/<container>/<task id>.
log_group="$(aws ecs describe-task-definition --task-definition "$task_definition" --output text \
  --query "taskDefinition.containerDefinitions[?name=='${CONTAINER_NAME}'] | [0].logConfiguration.options.\"awslogs-group\"")"
aws logs get-log-events --log-group-name "$log_group" --log-stream-name "ecs/${CONTAINER_NAME}/${task##*/}" \
  --start-from-head --query 'events[].message' --output text 2>/dev/null | tr '\t' '\n' || true

if [[ "$exit_code" != 0 ]]; then
  echo "::error::${name}: exit code ${exit_code} (${reason})"
  exit 1
fi
echo "${name}: exit code 0"
