output "bucket_name" {
  description = "Name of the state bucket."
  value       = aws_s3_bucket.state.bucket
}

output "bucket_arn" {
  description = "ARN of the state bucket."
  value       = aws_s3_bucket.state.arn
}

output "kms_key_arn" {
  description = "ARN of the KMS key encrypting the state objects."
  value       = aws_kms_key.state.arn
}

output "backend_config" {
  description = "Contents of ../backend.hcl for `terraform init -backend-config=backend.hcl` in the root module."
  value       = <<-EOT
    bucket               = "${aws_s3_bucket.state.bucket}"
    key                  = "${var.state_key}"
    workspace_key_prefix = "${var.workspace_key_prefix}"
    region               = "${var.region}"
    encrypt              = true
    kms_key_id           = "${aws_kms_key.state.arn}"
    use_lockfile         = true
  EOT
}
