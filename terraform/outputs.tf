output "environment" {
  description = "Workspace (environment) of this state."
  value       = module.stack.environment
}

output "region" {
  description = "AWS region of the environment."
  value       = var.region
}

output "names" {
  description = "Naming contract: ECS cluster and service, task definition family, container, ECR repository, log group, SSM parameter."
  value       = module.stack.names
}

output "alb_url" {
  description = "Base URL of the API (http:// without a certificate, https:// with one)."
  value       = module.stack.alb_url
}

output "alb_dns_name" {
  description = "DNS name of the load balancer."
  value       = module.stack.alb_dns_name
}

output "ecr_repository_url" {
  description = "URL of the ECR repository the deploy workflow pushes images to."
  value       = module.stack.ecr_repository_url
}

output "ecs_cluster_name" {
  description = "Name of the ECS cluster."
  value       = module.stack.ecs_cluster_name
}

output "ecs_service_name" {
  description = "Name of the ECS service."
  value       = module.stack.ecs_service_name
}

output "task_definition_family" {
  description = "Family of the task definition the deploy workflow registers revisions in."
  value       = module.stack.task_definition_family
}

output "container_name" {
  description = "Name of the application container in the task definition."
  value       = module.stack.container_name
}

output "log_group_name" {
  description = "CloudWatch log group of the containers."
  value       = module.stack.log_group_name
}

output "db_password_parameter_name" {
  description = "Name of the SSM SecureString holding the database password (DB_PASSWORD_SSM_PARAMETER)."
  value       = module.stack.db_password_parameter_name
}

output "execution_role_arn" {
  description = "ARN of the task execution role."
  value       = module.stack.execution_role_arn
}

output "task_role_arn" {
  description = "ARN of the task role."
  value       = module.stack.task_role_arn
}

output "service_security_group_id" {
  description = "Security group of the tasks (for one-off tasks such as migrations)."
  value       = module.stack.service_security_group_id
}

output "private_subnet_ids" {
  description = "Private subnets of the tasks (for one-off tasks)."
  value       = module.stack.private_subnet_ids
}
