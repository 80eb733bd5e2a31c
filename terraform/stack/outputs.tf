output "environment" {
  description = "Environment (workspace) of this stack."
  value       = local.environment
}

output "names" {
  description = "Naming contract of the environment: cluster, service, task definition family, container, repository, log group, password parameter."
  value       = local.names
}

output "settings" {
  description = "Settings object applied for this workspace (sizes, counts, protections)."
  value       = local.settings
}

output "alb_url" {
  description = "Base URL of the API."
  value       = module.alb.url
}

output "alb_dns_name" {
  description = "DNS name of the load balancer (target of the API's DNS record)."
  value       = module.alb.dns_name
}

output "alb_zone_id" {
  description = "Route 53 zone ID of the load balancer (for alias records)."
  value       = module.alb.zone_id
}

output "ecr_repository_url" {
  description = "URL of the ECR repository to push images to."
  value       = module.ecr.repository_url
}

output "ecs_cluster_name" {
  description = "Name of the ECS cluster."
  value       = module.service.cluster_name
}

output "ecs_service_name" {
  description = "Name of the ECS service."
  value       = module.service.service_name
}

output "task_definition_family" {
  description = "Family of the task definition the deploy workflow registers revisions in."
  value       = module.service.task_definition_family
}

output "container_name" {
  description = "Name of the application container in the task definition."
  value       = module.service.container_name
}

output "log_group_name" {
  description = "CloudWatch log group of the containers."
  value       = module.service.log_group_name
}

output "db_password_parameter_name" {
  description = "Name of the SSM SecureString holding the database password."
  value       = module.database.password_parameter_name
}

output "db_address" {
  description = "Host name of the PostgreSQL instance (reachable from the service's security group only)."
  value       = module.database.address
}

output "execution_role_arn" {
  description = "ARN of the task execution role."
  value       = module.service.execution_role_arn
}

output "task_role_arn" {
  description = "ARN of the task role."
  value       = module.service.task_role_arn
}

output "service_security_group_id" {
  description = "Security group of the tasks (for one-off tasks such as migrations run by the deploy workflow)."
  value       = module.service.security_group_id
}

output "private_subnet_ids" {
  description = "Private subnets of the tasks (for one-off tasks)."
  value       = module.network.private_subnet_ids
}

output "vpc_id" {
  description = "ID of the VPC."
  value       = module.network.vpc_id
}
