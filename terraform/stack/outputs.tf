output "environment" {
  description = "Environment (workspace) of this stack."
  value       = local.environment
}

output "names" {
  description = "Naming contract of the environment: cluster, services, task definition families, container, repository, log groups, password parameter, queues, alarm topic, dashboard, deploy role."
  value       = local.names
}

output "api_url" {
  description = "Base URL of the API: https://<api_domain> with a domain, otherwise the load balancer's own URL (plain HTTP)."
  value       = var.api_domain != null ? "https://${var.api_domain}" : module.alb.url
}

output "alb_url" {
  description = "The load balancer's own URL (https:// with a certificate, which never covers the load balancer's name: clients use api_url)."
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
  value       = aws_ecs_cluster.this.name
}

output "ecs_service_name" {
  description = "Name of the ECS service."
  value       = module.service["api"].service_name
}

output "task_definition_family" {
  description = "Family of the task definition the deploy workflow registers revisions in."
  value       = module.task["api"].task_definition_family
}

output "container_name" {
  description = "Name of the application container in the task definition."
  value       = local.names.container
}

output "log_group_name" {
  description = "CloudWatch log group of the containers."
  value       = module.task["api"].log_group_name
}

output "db_password_parameter_name" {
  description = "Name of the SSM SecureString holding the database password."
  value       = module.database.password_parameter_name
}

output "execution_role_arn" {
  description = "ARN of the task execution role."
  value       = module.task["api"].execution_role_arn
}

output "task_role_arn" {
  description = "ARN of the task role."
  value       = module.task["api"].task_role_arn
}

output "service_security_group_id" {
  description = "Security group of the tasks (for one-off tasks such as migrations run by the deploy workflow)."
  value       = module.service["api"].security_group_id
}

output "private_subnet_ids" {
  description = "Private subnets of the tasks (for one-off tasks)."
  value       = module.network.private_subnet_ids
}

output "ingest_bucket_name" {
  description = "Bucket of the price batches: upload to `s3://<bucket>/incoming/` (reports of rejected batches under `reports/`)."
  value       = module.ingest.bucket_name
}

output "ingest_bucket_kms_key_arn" {
  description = "KMS key of the ingestion bucket: uploaders need kms:GenerateDataKey on it besides s3:PutObject on incoming/*."
  value       = module.ingest.kms_key_arn
}

output "ingest_queue_url" {
  description = "URL of the ingestion queue (INGEST_QUEUE_URL of the worker)."
  value       = module.ingest.queue_url
}

output "ingest_queue_arn" {
  description = "ARN of the ingestion queue."
  value       = module.ingest.queue_arn
}

output "ingest_dlq_url" {
  description = "URL of the ingestion queue's dead-letter queue."
  value       = module.ingest.dlq_url
}

output "ingest_dlq_arn" {
  description = "ARN of the dead-letter queue (source of `aws sqs start-message-move-task` once a failure is fixed)."
  value       = module.ingest.dlq_arn
}

output "worker_service_name" {
  description = "Name of the ingest worker's ECS service."
  value       = module.service["worker"].service_name
}

output "worker_task_definition_family" {
  description = "Family of the worker's task definition the deploy workflow registers revisions in."
  value       = module.task["worker"].task_definition_family
}

output "worker_log_group_name" {
  description = "CloudWatch log group of the worker."
  value       = module.task["worker"].log_group_name
}

output "alarm_topic_arn" {
  description = "ARN of the SNS topic of the alarms (subscribe further endpoints to it)."
  value       = module.monitoring.topic_arn
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard of the environment."
  value       = module.monitoring.dashboard_name
}

output "github_deploy_role_arn" {
  description = "ARN of the deploy role GitHub Actions assumes through OIDC (created by terraform/bootstrap; GitHub variable AWS_DEPLOY_ROLE_ARN of the environment)."
  value       = data.aws_iam_role.deploy.arn
}

output "github_oidc_provider_arn" {
  description = "ARN of the account's GitHub OIDC provider (created by terraform/bootstrap, looked up here)."
  value       = data.aws_iam_openid_connect_provider.github.arn
}

output "region" {
  description = "Region of the workspace (from var.environments; the plan refuses any other)."
  value       = try(local.placement.region, null)
}

output "account_id" {
  description = "AWS account of the workspace (from var.environments; the plan refuses any other)."
  value       = try(local.placement.account_id, null)
}
