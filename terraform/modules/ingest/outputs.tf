################################################################################
# Bucket and queues
################################################################################

output "bucket_name" {
  description = "Name of the ingestion bucket: upload batches to `s3://<bucket>/<incoming_prefix>`."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the ingestion bucket."
  value       = aws_s3_bucket.this.arn
}

output "kms_key_arn" {
  description = "ARN of the KMS key encrypting the bucket's objects (uploaders need kms:GenerateDataKey on it)."
  value       = aws_kms_key.bucket.arn
}

output "incoming_prefix" {
  description = "Key prefix whose new objects are announced on the queue."
  value       = var.incoming_prefix
}

output "reports_prefix" {
  description = "Key prefix of the reports of rejected batches."
  value       = var.reports_prefix
}

output "queue_name" {
  description = "Name of the ingestion queue."
  value       = aws_sqs_queue.this.name
}

output "queue_url" {
  description = "URL of the ingestion queue (INGEST_QUEUE_URL of the worker)."
  value       = aws_sqs_queue.this.url
}

output "queue_arn" {
  description = "ARN of the ingestion queue."
  value       = aws_sqs_queue.this.arn
}

output "dlq_name" {
  description = "Name of the dead-letter queue."
  value       = aws_sqs_queue.dlq.name
}

output "dlq_url" {
  description = "URL of the dead-letter queue."
  value       = aws_sqs_queue.dlq.url
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue (source of a message move task back to the queue)."
  value       = aws_sqs_queue.dlq.arn
}

output "queue_settings" {
  description = "Settings of the ingestion queue as planned (for reviews and tests)."
  value = {
    visibility_timeout_seconds    = aws_sqs_queue.this.visibility_timeout_seconds
    message_retention_seconds     = aws_sqs_queue.this.message_retention_seconds
    receive_wait_time_seconds     = aws_sqs_queue.this.receive_wait_time_seconds
    sqs_managed_sse_enabled       = aws_sqs_queue.this.sqs_managed_sse_enabled
    max_receive_count             = var.max_receive_count
    dlq_message_retention_seconds = aws_sqs_queue.dlq.message_retention_seconds
  }
}

output "queue_policy" {
  description = "Access policy of the ingestion queue (JSON): S3 may send the notifications of this bucket only."
  value       = aws_sqs_queue_policy.this.policy
}

output "bucket_policy" {
  description = "Bucket policy (JSON): TLS 1.2 or later only."
  value       = aws_s3_bucket_policy.this.policy
}

################################################################################
# Worker
################################################################################

output "worker_service_name" {
  description = "Name of the worker's ECS service."
  value       = aws_ecs_service.worker.name
}

output "worker_service_arn" {
  description = "ARN of the worker's ECS service."
  value       = aws_ecs_service.worker.id
}

output "worker_task_definition_family" {
  description = "Family of the worker's task definition; the deploy workflow registers new revisions in it."
  value       = module.task.task_definition_family
}

output "worker_task_definition_arn" {
  description = "ARN of the revision of the worker's task definition Terraform registered (the deploy role may run one-off tasks of this family: the worker's start check)."
  value       = module.task.task_definition_arn
}

output "worker_container_name" {
  description = "Name of the container in the worker's task definition."
  value       = var.container_name
}

output "worker_log_group_name" {
  description = "Name of the worker's log group."
  value       = module.task.log_group_name
}

output "worker_log_group_arn" {
  description = "ARN of the worker's log group."
  value       = module.task.log_group_arn
}

output "worker_security_group_id" {
  description = "ID of the worker tasks' security group (the database must admit it)."
  value       = aws_security_group.worker.id
}

output "worker_execution_role_arn" {
  description = "ARN of the worker's task execution role."
  value       = module.task.execution_role_arn
}

output "worker_task_role_arn" {
  description = "ARN of the worker's task role."
  value       = module.task.task_role_arn
}

output "worker_task_role_policy" {
  description = "Inline policy of the worker's task role (JSON)."
  value       = module.task.task_role_policy
}

output "worker_execution_role_policy" {
  description = "Inline policy of the worker's task execution role (JSON)."
  value       = module.task.execution_role_policy
}

output "worker_assign_public_ip" {
  description = "Whether worker tasks get a public IP (always false: they run in private subnets)."
  value       = one(aws_ecs_service.worker.network_configuration).assign_public_ip
}

output "worker_desired_count" {
  description = "Number of worker tasks the service was created with (min_capacity; autoscaling changes it afterwards)."
  value       = aws_ecs_service.worker.desired_count
}

output "worker_autoscaling_min_capacity" {
  description = "Fewest worker tasks autoscaling keeps."
  value       = aws_appautoscaling_target.worker.min_capacity
}

output "worker_autoscaling_max_capacity" {
  description = "Most worker tasks autoscaling allows."
  value       = aws_appautoscaling_target.worker.max_capacity
}

output "worker_container_environment" {
  description = "Environment of the worker's container as registered (the module's variables plus what modules/ecs_task adds)."
  value       = module.task.environment
}

output "worker_execute_command_enabled" {
  description = "Whether the worker service runs with ECS Exec (as set on the service)."
  value       = aws_ecs_service.worker.enable_execute_command
}

output "worker_writable_paths" {
  description = "Worker container paths on writable task volumes; with ECS Exec they include the SSM agent's /var/lib/amazon and /var/log/amazon."
  value       = module.task.writable_paths
}
