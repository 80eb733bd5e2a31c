output "json" {
  description = "The bucket policy (JSON), for aws_s3_bucket_policy.policy."
  value       = local.policy
}
