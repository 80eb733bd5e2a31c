output "topic_arn" {
  description = "ARN of the SNS topic every alarm notifies (subscribe further endpoints to it)."
  value       = aws_sns_topic.alarms.arn
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}
