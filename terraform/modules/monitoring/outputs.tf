output "topic_arn" {
  description = "ARN of the SNS topic every alarm notifies (subscribe further endpoints to it)."
  value       = aws_sns_topic.alarms.arn
}

output "topic_name" {
  description = "Name of the SNS topic of the alarms."
  value       = aws_sns_topic.alarms.name
}

output "kms_key_arn" {
  description = "ARN of the KMS key encrypting the topic (publishers other than CloudWatch alarms need kms:GenerateDataKey* and kms:Decrypt on it)."
  value       = aws_kms_key.alarms.arn
}

output "email_subscription" {
  description = "Whether an e-mail address is subscribed (it must confirm the subscription first)."
  value       = length(aws_sns_topic_subscription.email) == 1
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "alarm_names" {
  description = "Names of the alarms, by key (alb_5xx, target_5xx_rate, response_time_p99, unhealthy_hosts, healthy_hosts, api_cpu, api_memory, worker_cpu, worker_memory, db_cpu, db_free_storage, db_connections, db_read_latency, db_write_latency, queue_oldest_message, dlq_messages, worker_errors)."
  value       = local.alarm_names
}

output "alarm_arns" {
  description = "ARNs of the alarms, by key."
  value       = local.alarm_arns
}

output "worker_errors_metric" {
  description = "Namespace and name of the custom metric counting the worker's error lines."
  value = {
    namespace = local.metrics_namespace
    name      = local.worker_errors_name
  }
}

output "metrics_namespace" {
  description = "CloudWatch namespace of the application metrics the alarms and the dashboard read."
  value       = var.metrics_namespace
}
