# Access logs of the load balancer: one object per node and 5 minutes, in a private bucket of their
# own, encrypted, TLS-only, expired after access_logs_expiration_days.

data "aws_caller_identity" "current" {}

locals {
  access_logs_prefix = "alb"
}

resource "aws_s3_bucket" "access_logs" {
  count = var.enable_access_logs ? 1 : 0

  bucket_prefix = "${var.name}-alb-logs-"
  force_destroy = var.access_logs_force_destroy

  tags = { Name = "${var.name}-alb-logs" }
}

resource "aws_s3_bucket_ownership_controls" "access_logs" {
  count = var.enable_access_logs ? 1 : 0

  bucket = aws_s3_bucket.access_logs[0].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "access_logs" {
  count = var.enable_access_logs ? 1 : 0

  bucket = aws_s3_bucket.access_logs[0].id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# Load balancer access logs can only be written to buckets encrypted with S3-managed keys
# (SSE-S3); a customer-managed KMS key makes the delivery fail.
#trivy:ignore:AVD-AWS-0132 ALB access log delivery supports SSE-S3 only, not a customer-managed KMS key.
resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  count = var.enable_access_logs ? 1 : 0

  bucket = aws_s3_bucket.access_logs[0].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  count = var.enable_access_logs ? 1 : 0

  bucket = aws_s3_bucket.access_logs[0].id

  rule {
    id     = "expire-access-logs"
    status = "Enabled"

    filter {}

    expiration {
      days = var.access_logs_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

# Elastic Load Balancing's log delivery service writes under <prefix>/AWSLogs/<account>/.
module "access_logs_policy" {
  source = "../tls_only_bucket_policy"
  count  = var.enable_access_logs ? 1 : 0

  bucket_arn = aws_s3_bucket.access_logs[0].arn
  statements = jsonencode([{
    Sid       = "LoadBalancerLogDelivery"
    Effect    = "Allow"
    Principal = { Service = "logdelivery.elasticloadbalancing.amazonaws.com" }
    Action    = "s3:PutObject"
    Resource  = "${aws_s3_bucket.access_logs[0].arn}/${local.access_logs_prefix}/AWSLogs/${data.aws_caller_identity.current.account_id}/*"
  }])
}

resource "aws_s3_bucket_policy" "access_logs" {
  count = var.enable_access_logs ? 1 : 0

  bucket = aws_s3_bucket.access_logs[0].id
  policy = module.access_logs_policy[0].json

  depends_on = [aws_s3_bucket_public_access_block.access_logs]
}
