output "task_definition_family" {
  description = "Family of the task definition; the deploy workflow registers new revisions in it."
  value       = aws_ecs_task_definition.this.family
}

output "task_definition_arn" {
  description = "ARN of the revision Terraform registered (not necessarily the one running: deployments register newer ones)."
  value       = aws_ecs_task_definition.this.arn
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
  description = "ARN of the task execution role (the deploy role may pass it when it registers revisions)."
  value       = aws_iam_role.execution.arn
}

output "task_role_arn" {
  description = "ARN of the task role (the deploy role may pass it when it registers revisions)."
  value       = aws_iam_role.task.arn
}
