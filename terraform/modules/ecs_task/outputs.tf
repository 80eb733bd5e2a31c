output "task_definition_family" {
  description = "Family of the task definition; the deploy workflow registers new revisions in it."
  value       = aws_ecs_task_definition.this.family
}

output "task_definition_arn" {
  description = "ARN of the revision Terraform registered (not necessarily the one running: deployments register newer ones)."
  value       = aws_ecs_task_definition.this.arn
}

output "container_definitions" {
  description = "Container definitions of the revision Terraform registered (JSON, for reviews and tests)."
  value       = aws_ecs_task_definition.this.container_definitions
}

output "environment" {
  description = "Environment variables of the container (the caller's map with METRICS_EMF_NAMESPACE and METRICS_EMF_SERVICE from metrics_namespace, and AWS_REGION, DB_SSLMODE and DB_SSLROOTCERT, which win over it), known at plan time."
  value       = local.environment
}

output "log_group_name" {
  description = "Name of the container log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "log_group_arn" {
  description = "ARN of the container log group."
  value       = aws_cloudwatch_log_group.this.arn
}

output "execution_role_arn" {
  description = "ARN of the task execution role (the deploy workflow passes it when it registers revisions)."
  value       = aws_iam_role.execution.arn
}

output "execution_role_name" {
  description = "Name of the task execution role."
  value       = aws_iam_role.execution.name
}

output "task_role_arn" {
  description = "ARN of the task role (the deploy workflow passes it when it registers revisions)."
  value       = aws_iam_role.task.arn
}

output "task_role_name" {
  description = "Name of the task role."
  value       = aws_iam_role.task.name
}

output "execution_role_policy" {
  description = "Inline policy of the task execution role (JSON)."
  value       = aws_iam_role_policy.execution.policy
}

output "task_role_policy" {
  description = "Inline policy of the task role (JSON)."
  value       = aws_iam_role_policy.task.policy
}

output "writable_paths" {
  description = "Paths of the container backed by writable task volumes (the root filesystem is read-only): /tmp, and with ECS Exec the SSM agent's /var/lib/amazon and /var/log/amazon."
  value       = [for v in local.writable_volumes : v.path]
}
