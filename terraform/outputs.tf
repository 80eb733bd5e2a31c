output "environment" {
  description = "Workspace (environment) of this state."
  value       = module.stack.environment
}

output "region" {
  description = "AWS region of the environment (GitHub variable AWS_REGION)."
  value       = module.stack.region
}

output "names" {
  description = "Naming contract: ECS cluster, API and worker services and task definition families, container, ECR repository, log groups, SSM parameter, queues, alarm topic, dashboard, deploy role."
  value       = module.stack.names
}

output "api_url" {
  description = "Base URL of the API: https://<api_domain> with a domain, otherwise http://<load balancer's DNS name>. The deploy's smoke test calls it, connecting to alb_dns_name."
  value       = module.stack.api_url
}

output "alb_url" {
  description = "The load balancer's own URL (http:// without a certificate, https:// with one, which no certificate of the API's domain matches: clients use api_url)."
  value       = module.stack.alb_url
}

output "alb_dns_name" {
  description = "DNS name of the load balancer."
  value       = module.stack.alb_dns_name
}

output "alb_zone_id" {
  description = "Route 53 hosted zone ID of the load balancer: an alias record of api_domain points at alb_dns_name in this zone."
  value       = module.stack.alb_zone_id
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

output "ingest_bucket_name" {
  description = "Bucket of the price batches: upload to `s3://<bucket>/incoming/`; reports of rejected batches appear under `reports/`."
  value       = module.stack.ingest_bucket_name
}

output "ingest_bucket_kms_key_arn" {
  description = "KMS key of the ingestion bucket: uploaders need kms:GenerateDataKey on it besides s3:PutObject on `incoming/*`."
  value       = module.stack.ingest_bucket_kms_key_arn
}

output "ingest_queue_url" {
  description = "URL of the ingestion queue the worker polls (INGEST_QUEUE_URL)."
  value       = module.stack.ingest_queue_url
}

output "ingest_queue_arn" {
  description = "ARN of the ingestion queue (destination ARN of aws sqs start-message-move-task)."
  value       = module.stack.ingest_queue_arn
}

output "ingest_dlq_url" {
  description = "URL of the ingestion queue's dead-letter queue."
  value       = module.stack.ingest_dlq_url
}

output "ingest_dlq_arn" {
  description = "ARN of the dead-letter queue (source ARN of aws sqs start-message-move-task)."
  value       = module.stack.ingest_dlq_arn
}

output "worker_service_name" {
  description = "Name of the ingest worker's ECS service."
  value       = module.stack.worker_service_name
}

output "worker_task_definition_family" {
  description = "Family of the worker's task definition the deploy workflow registers revisions in."
  value       = module.stack.worker_task_definition_family
}

output "worker_log_group_name" {
  description = "CloudWatch log group of the worker."
  value       = module.stack.worker_log_group_name
}

output "github_deploy_role_arn" {
  description = "ARN of the role the deploy workflow assumes through GitHub OIDC (created by bootstrap/; GitHub variable AWS_DEPLOY_ROLE_ARN)."
  value       = module.stack.github_deploy_role_arn
}

output "github_oidc_provider_arn" {
  description = "ARN of the account's GitHub OIDC provider (created by bootstrap/, looked up by the workspace)."
  value       = module.stack.github_oidc_provider_arn
}

output "alarm_topic_arn" {
  description = "ARN of the SNS topic every alarm notifies."
  value       = module.stack.alarm_topic_arn
}

output "dashboard_name" {
  description = "Name of the environment's CloudWatch dashboard."
  value       = module.stack.dashboard_name
}

output "account_id" {
  description = "AWS account of the environment."
  value       = module.stack.account_id
}
