# Batch ingestion: an encrypted, versioned S3 bucket whose `incoming/` uploads are announced on an
# SQS queue (with a dead-letter queue), and the worker that loads them (worker.tf; its task
# definition, log group and IAM roles come from modules/ecs_task).
#
#   upload to s3://<bucket>/incoming/... -> S3 event notification -> SQS queue -> `rates worker`
#   (ECS service) -> COPY into PostgreSQL in one transaction; a rejected batch gets a report under
#   reports/; a message that fails max_receive_count times moves to the DLQ.

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

locals {
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id

  # Globally unique: the account and the region are part of the default name.
  bucket_name = coalesce(var.bucket_name, "${var.name}-ingest-${local.account_id}-${local.region}")

  queue_name = "${var.name}-ingest"
  dlq_name   = "${var.name}-ingest-dlq"

  # SQS keeps a message at most 14 days; the dead-letter queue keeps its messages that long so an
  # operator has the most time to look at them and move them back.
  dlq_message_retention_seconds = 1209600
}

################################################################################
# Encryption key of the bucket
################################################################################

# The default key policy (the account's IAM policies decide) is enough: the worker's task role
# gets kms:Decrypt / kms:GenerateDataKey on this key through S3 only (worker.tf), and whoever uploads
# batches needs kms:GenerateDataKey on it as well.
resource "aws_kms_key" "bucket" {
  description             = "${local.bucket_name}: objects of the ingestion bucket"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_key_deletion_window_in_days

  tags = merge(var.tags, { Name = "${var.name}-ingest" })
}

resource "aws_kms_alias" "bucket" {
  name          = "alias/${var.name}-ingest"
  target_key_id = aws_kms_key.bucket.key_id
}

################################################################################
# Bucket
################################################################################

resource "aws_s3_bucket" "this" {
  bucket        = local.bucket_name
  force_destroy = var.force_destroy

  tags = merge(var.tags, { Name = local.bucket_name })

  lifecycle {
    precondition {
      condition     = length(local.bucket_name) >= 3 && length(local.bucket_name) <= 63 && can(regex("^[a-z0-9][a-z0-9.-]*[a-z0-9]$", local.bucket_name))
      error_message = "The bucket name \"${local.bucket_name}\" is not a valid S3 bucket name (3-63 lowercase letters, digits, dots or hyphens); set bucket_name."
    }
  }
}

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket = aws_s3_bucket.this.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    # S3 Bucket Keys: one data key per bucket and period instead of one KMS call per object.
    bucket_key_enabled = true

    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.bucket.arn
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    id     = "expire-incoming"
    status = "Enabled"

    filter {
      prefix = var.incoming_prefix
    }

    expiration {
      days = var.incoming_expiration_days
    }
  }

  rule {
    id     = "expire-reports"
    status = "Enabled"

    filter {
      prefix = var.reports_prefix
    }

    expiration {
      days = var.reports_expiration_days
    }
  }

  # Whole bucket: old versions (overwritten or expired objects), the delete markers left once their
  # versions are gone, and uploads that were never completed.
  rule {
    id     = "clean-up-versions-and-uploads"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    expiration {
      expired_object_delete_marker = true
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_upload_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = local.bucket_policy

  # The public access block must exist first, or a policy could briefly make the bucket public.
  depends_on = [aws_s3_bucket_public_access_block.this]
}

locals {
  bucket_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "DenyInsecureTransport"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]
        Condition = {
          Bool = { "aws:SecureTransport" = "false" }
        }
      },
      {
        Sid       = "DenyOutdatedTls"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]
        Condition = {
          NumericLessThan = { "s3:TlsVersion" = "1.2" }
        }
      },
    ]
  })
}

################################################################################
# Queues
################################################################################

# SSE-SQS (keys owned by SQS): S3 event notifications can be delivered to it without a KMS key
# policy for the S3 service principal, which a customer-managed key would need.
resource "aws_sqs_queue" "dlq" {
  name                      = local.dlq_name
  message_retention_seconds = local.dlq_message_retention_seconds
  sqs_managed_sse_enabled   = true

  tags = merge(var.tags, { Name = local.dlq_name })
}

resource "aws_sqs_queue" "this" {
  name                       = local.queue_name
  visibility_timeout_seconds = var.visibility_timeout_seconds
  message_retention_seconds  = var.message_retention_seconds
  receive_wait_time_seconds  = var.receive_wait_time_seconds
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })

  tags = merge(var.tags, { Name = local.queue_name })
}

# Only the ingestion queue may move its failed messages to the DLQ.
resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.this.arn]
  })
}

locals {
  deny_insecure_transport_sqs = {
    Sid       = "DenyInsecureTransport"
    Effect    = "Deny"
    Principal = "*"
    Action    = "sqs:*"
    Condition = {
      Bool = { "aws:SecureTransport" = "false" }
    }
  }

  # S3 may send the notifications of this bucket, in this account, and nothing else. The worker's
  # rights come from its IAM role (same account), so they need no statement here.
  queue_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AllowNotificationsOfTheIngestBucket"
        Effect    = "Allow"
        Principal = { Service = "s3.amazonaws.com" }
        Action    = "sqs:SendMessage"
        Resource  = aws_sqs_queue.this.arn
        Condition = {
          ArnEquals    = { "aws:SourceArn" = aws_s3_bucket.this.arn }
          StringEquals = { "aws:SourceAccount" = local.account_id }
        }
      },
      merge(local.deny_insecure_transport_sqs, { Resource = aws_sqs_queue.this.arn }),
    ]
  })

  dlq_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [merge(local.deny_insecure_transport_sqs, { Resource = aws_sqs_queue.dlq.arn })]
  })
}

resource "aws_sqs_queue_policy" "this" {
  queue_url = aws_sqs_queue.this.id
  policy    = local.queue_policy
}

resource "aws_sqs_queue_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  policy    = local.dlq_policy
}

################################################################################
# Notification: new objects under incoming/ -> queue
################################################################################

resource "aws_s3_bucket_notification" "this" {
  bucket = aws_s3_bucket.this.id

  queue {
    id            = "incoming-batches"
    queue_arn     = aws_sqs_queue.this.arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = var.incoming_prefix
  }

  # S3 checks that it may send to the queue when the configuration is written.
  depends_on = [aws_sqs_queue_policy.this]
}
