# Batch ingestion: an encrypted, versioned S3 bucket whose `incoming/` uploads are announced on an
# SQS queue (with a dead-letter queue), and what the worker needs of them: its environment and the
# statements of its task role (outputs worker_environment and worker_policy_statements; the stack
# runs the worker with modules/ecs_task and modules/ecs_service).
#
#   upload to s3://<bucket>/incoming/... -> S3 event notification -> SQS queue -> `rates worker`
#   -> COPY into PostgreSQL in one transaction; a rejected batch gets a report under reports/; a
#   multi-part manifest fans out into one message per part on the same queue, sent by the worker;
#   a message that fails max_receive_count times moves to the DLQ.

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

locals {
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id

  # Globally unique: the account and the region are part of the name.
  bucket_name = "${var.name}-ingest-${local.account_id}-${local.region}"
  queue_name  = "${var.name}-ingest"
  dlq_name    = "${var.name}-ingest-dlq"

  # Every object created under incoming/ is announced on the queue; the worker's role reads only
  # there and writes reports only under reports/ (never under incoming/, or they would be
  # announced as batches).
  incoming_prefix = "incoming/"
  reports_prefix  = "reports/"

  # How long a received message stays hidden: longer than a batch may take, so a batch that is
  # still loading is not handed to a second worker; it also bounds how soon the message of a
  # crashed worker is retried.
  visibility_timeout_seconds = var.max_batch_duration_seconds + 300
  # An unprocessed message is kept 4 days; the dead-letter queue keeps its messages the 14 days
  # SQS allows (counted from the original enqueue), the most time to look at them and move them
  # back. A message received 5 times without being deleted moves there: transient errors
  # (database down, S3 timeout) are retried, within bounds.
  message_retention_seconds     = 345600
  dlq_message_retention_seconds = 1209600
  max_receive_count             = 5
  # Long polling: an idle worker makes one request per 20 s wait.
  receive_wait_time_seconds = 20
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

  tags = { Name = "${var.name}-ingest" }
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

  tags = { Name = local.bucket_name }

  lifecycle {
    precondition {
      condition     = length(local.bucket_name) <= 63
      error_message = "The bucket name \"${local.bucket_name}\" is longer than the 63 characters S3 allows: shorten name."
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
      prefix = local.incoming_prefix
    }

    expiration {
      days = var.incoming_expiration_days
    }
  }

  rule {
    id     = "expire-reports"
    status = "Enabled"

    filter {
      prefix = local.reports_prefix
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
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = module.bucket_policy.json

  # The public access block must exist first, or a policy could briefly make the bucket public.
  depends_on = [aws_s3_bucket_public_access_block.this]
}

module "bucket_policy" {
  source = "../tls_only_bucket_policy"

  bucket_arn = aws_s3_bucket.this.arn
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

  tags = { Name = local.dlq_name }
}

resource "aws_sqs_queue" "this" {
  name                       = local.queue_name
  visibility_timeout_seconds = local.visibility_timeout_seconds
  message_retention_seconds  = local.message_retention_seconds
  receive_wait_time_seconds  = local.receive_wait_time_seconds
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = local.max_receive_count
  })

  tags = { Name = local.queue_name }
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
    filter_prefix = local.incoming_prefix
  }

  # S3 checks that it may send to the queue when the configuration is written.
  depends_on = [aws_sqs_queue_policy.this]
}

################################################################################
# What the worker needs: its environment and its task role's statements
################################################################################

locals {
  # Whole minutes when possible (900 -> 15m): INGEST_VISIBILITY_TIMEOUT is a Go duration.
  visibility_timeout_duration = (
    local.visibility_timeout_seconds % 60 == 0
    ? "${floor(local.visibility_timeout_seconds / 60)}m"
    : "${local.visibility_timeout_seconds}s"
  )

  worker_environment = {
    INGEST_QUEUE_URL          = aws_sqs_queue.this.url
    INGEST_REPORTS_PREFIX     = local.reports_prefix
    INGEST_VISIBILITY_TIMEOUT = local.visibility_timeout_duration
    INGEST_WAIT_TIME          = tostring(local.receive_wait_time_seconds)
    INGEST_MAX_BATCH_DURATION = "${var.max_batch_duration_seconds}s"
  }

  # Reads batches under incoming/, writes reports under reports/, consumes the one queue and fans
  # multi-part batches out on it, and uses the bucket's key through S3 only. modules/ecs_task adds
  # the password parameter.
  worker_policy_statements = [
    {
      Sid      = "ReadIncomingBatches"
      Effect   = "Allow"
      Action   = ["s3:GetObject", "s3:GetObjectVersion"]
      Resource = "${aws_s3_bucket.this.arn}/${local.incoming_prefix}*"
    },
    {
      # Listing the incoming prefix makes S3 answer 404 (NoSuchKey) for an object deleted before
      # the worker read it, instead of 403: the worker then writes a report and deletes the
      # message instead of retrying it into the dead-letter queue.
      Sid       = "ListIncomingBatches"
      Effect    = "Allow"
      Action    = ["s3:ListBucket"]
      Resource  = aws_s3_bucket.this.arn
      Condition = { StringLike = { "s3:prefix" = ["${local.incoming_prefix}*"] } }
    },
    {
      Sid      = "WriteBatchReports"
      Effect   = "Allow"
      Action   = ["s3:PutObject"]
      Resource = "${aws_s3_bucket.this.arn}/${local.reports_prefix}*"
    },
    {
      # Objects are encrypted with the bucket's key: reading needs Decrypt, writing a report
      # GenerateDataKey, and only S3 may use the key on the worker's behalf.
      Sid       = "UseBucketKeyThroughS3"
      Effect    = "Allow"
      Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
      Resource  = aws_kms_key.bucket.arn
      Condition = { StringEquals = { "kms:ViaService" = "s3.${local.region}.amazonaws.com" } }
    },
    {
      Sid      = "ConsumeIngestQueue"
      Effect   = "Allow"
      Action   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
      Resource = aws_sqs_queue.this.arn
    },
    {
      # A multi-part manifest becomes one message per part on this same queue, which the workers
      # (scaled on its depth) then load like any batch. SendMessage grants SendMessageBatch too.
      Sid      = "SendBatchParts"
      Effect   = "Allow"
      Action   = ["sqs:SendMessage"]
      Resource = aws_sqs_queue.this.arn
    },
  ]
}
