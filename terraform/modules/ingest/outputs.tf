output "bucket_name" {
  description = "Name of the ingestion bucket: upload batches to `s3://<bucket>/incoming/`."
  value       = aws_s3_bucket.this.id
}

output "kms_key_arn" {
  description = "ARN of the KMS key encrypting the bucket's objects (uploaders need kms:GenerateDataKey on it)."
  value       = aws_kms_key.bucket.arn
}

output "queue_name" {
  description = "Name of the ingestion queue (its depth scales the worker)."
  value       = aws_sqs_queue.this.name
}

output "queue_url" {
  description = "URL of the ingestion queue."
  value       = aws_sqs_queue.this.url
}

output "queue_arn" {
  description = "ARN of the ingestion queue (destination of a message move task back from the DLQ)."
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

output "worker_environment" {
  description = "The worker's INGEST_* variables (queue URL, reports prefix, visibility timeout, long-poll wait, batch deadline)."
  value       = local.worker_environment
}

output "worker_policy_statements" {
  description = "Statements of the worker's task role on the bucket, its key and the queue (JSON array, for modules/ecs_task task_policy_statements)."
  value       = jsonencode(local.worker_policy_statements)
}
