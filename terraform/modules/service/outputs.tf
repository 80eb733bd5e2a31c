output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster."
  value       = aws_ecs_cluster.this.arn
}

output "service_name" {
  description = "Name of the ECS service."
  value       = aws_ecs_service.this.name
}

output "service_id" {
  description = "ID (ARN) of the ECS service."
  value       = aws_ecs_service.this.id
}

output "task_definition_family" {
  description = "Family of the task definition; the deploy workflow registers new revisions in it."
  value       = module.task.task_definition_family
}

output "task_definition_arn" {
  description = "ARN of the revision Terraform registered (not necessarily the one running: deployments register newer ones)."
  value       = module.task.task_definition_arn
}

output "container_name" {
  description = "Name of the application container."
  value       = var.container_name
}

output "container_port" {
  description = "Port of the HTTP API in the container."
  value       = var.container_port
}

output "log_group_name" {
  description = "Name of the container log group."
  value       = module.task.log_group_name
}

output "log_group_arn" {
  description = "ARN of the container log group."
  value       = module.task.log_group_arn
}

output "security_group_id" {
  description = "ID of the tasks' security group (for example the source the database admits)."
  value       = aws_security_group.this.id
}

output "execution_role_arn" {
  description = "ARN of the task execution role (the deploy workflow passes it when it registers revisions)."
  value       = module.task.execution_role_arn
}

output "execution_role_name" {
  description = "Name of the task execution role."
  value       = module.task.execution_role_name
}

output "task_role_arn" {
  description = "ARN of the task role (the deploy workflow passes it when it registers revisions)."
  value       = module.task.task_role_arn
}

output "task_role_name" {
  description = "Name of the task role."
  value       = module.task.task_role_name
}

output "autoscaling_min_capacity" {
  description = "Lowest number of tasks autoscaling keeps."
  value       = aws_appautoscaling_target.this.min_capacity
}

output "autoscaling_max_capacity" {
  description = "Highest number of tasks autoscaling allows."
  value       = aws_appautoscaling_target.this.max_capacity
}

output "desired_count" {
  description = "Number of tasks the service was created with (autoscaling changes it afterwards; Terraform ignores that drift)."
  value       = aws_ecs_service.this.desired_count
}

output "assign_public_ip" {
  description = "Whether tasks get a public IP (always false: they run in private subnets)."
  value       = one(aws_ecs_service.this.network_configuration).assign_public_ip
}

output "task_role_policy" {
  description = "Inline policy of the task role (JSON)."
  value       = module.task.task_role_policy
}

output "execution_role_policy" {
  description = "Inline policy of the task execution role (JSON)."
  value       = module.task.execution_role_policy
}

output "container_environment" {
  description = "Environment of the API's container as registered, a map of name to value (the module's variables plus what modules/ecs_task adds; no secret is among them: the password is read from SSM at start)."
  value       = module.task.environment
}

output "execute_command_enabled" {
  description = "Whether the API service runs with ECS Exec (as set on the service)."
  value       = aws_ecs_service.this.enable_execute_command
}

output "writable_paths" {
  description = "Container paths on writable task volumes (the root filesystem is read-only); with ECS Exec they include the SSM agent's /var/lib/amazon and /var/log/amazon."
  value       = module.task.writable_paths
}
