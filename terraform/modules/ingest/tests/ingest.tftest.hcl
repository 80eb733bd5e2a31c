# Plan-level tests of the ingest module with a mocked AWS provider. ARNs and URLs that AWS
# assigns are overridden during plan so that the policies can be checked.

mock_provider "aws" {
  mock_data "aws_region" {
    defaults = {
      name = "eu-central-1"
    }
  }

  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
    }
  }

  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }
}

override_resource {
  target          = aws_s3_bucket.this
  override_during = plan
  values = {
    id  = "rates-test-ingest-123456789012-eu-central-1"
    arn = "arn:aws:s3:::rates-test-ingest-123456789012-eu-central-1"
  }
}

override_resource {
  target          = aws_kms_key.bucket
  override_during = plan
  values = {
    arn = "arn:aws:kms:eu-central-1:123456789012:key/11111111-1111-1111-1111-111111111111"
  }
}

override_resource {
  target          = aws_sqs_queue.this
  override_during = plan
  values = {
    id  = "https://sqs.eu-central-1.amazonaws.com/123456789012/rates-test-ingest"
    url = "https://sqs.eu-central-1.amazonaws.com/123456789012/rates-test-ingest"
    arn = "arn:aws:sqs:eu-central-1:123456789012:rates-test-ingest"
  }
}

override_resource {
  target          = aws_sqs_queue.dlq
  override_during = plan
  values = {
    id  = "https://sqs.eu-central-1.amazonaws.com/123456789012/rates-test-ingest-dlq"
    url = "https://sqs.eu-central-1.amazonaws.com/123456789012/rates-test-ingest-dlq"
    arn = "arn:aws:sqs:eu-central-1:123456789012:rates-test-ingest-dlq"
  }
}

variables {
  name                               = "rates-test"
  max_batch_duration_seconds         = 600
  incoming_expiration_days           = 30
  reports_expiration_days            = 90
  noncurrent_version_expiration_days = 30
}

run "bucket_is_private_encrypted_versioned_and_tls_only" {
  command = plan

  assert {
    condition     = aws_s3_bucket.this.bucket == "rates-test-ingest-123456789012-eu-central-1" && aws_s3_bucket.this.force_destroy == false
    error_message = "The default bucket name carries the account and region; force_destroy is off by default."
  }

  assert {
    condition = (
      aws_s3_bucket_public_access_block.this.block_public_acls &&
      aws_s3_bucket_public_access_block.this.block_public_policy &&
      aws_s3_bucket_public_access_block.this.ignore_public_acls &&
      aws_s3_bucket_public_access_block.this.restrict_public_buckets
    )
    error_message = "Every public access setting must be blocked."
  }

  assert {
    condition     = one(aws_s3_bucket_ownership_controls.this.rule).object_ownership == "BucketOwnerEnforced"
    error_message = "ACLs must be disabled (bucket owner enforced)."
  }

  assert {
    condition     = one(aws_s3_bucket_versioning.this.versioning_configuration).status == "Enabled"
    error_message = "The bucket must be versioned."
  }

  assert {
    condition = [
      for r in aws_s3_bucket_server_side_encryption_configuration.this.rule : [
        for d in r.apply_server_side_encryption_by_default : [d.sse_algorithm, d.kms_master_key_id]
      ]
    ] == [[["aws:kms", "arn:aws:kms:eu-central-1:123456789012:key/11111111-1111-1111-1111-111111111111"]]]
    error_message = "Objects must be encrypted with the module's customer-managed key."
  }

  assert {
    condition     = aws_kms_key.bucket.enable_key_rotation == true
    error_message = "The bucket's key must rotate."
  }

  assert {
    condition = [
      for s in jsondecode(aws_s3_bucket_policy.this.policy).Statement : [s.Effect, s.Condition]
      ] == [
      ["Deny", { Bool = { "aws:SecureTransport" = "false" } }],
      ["Deny", { NumericLessThan = { "s3:TlsVersion" = "1.2" } }],
    ]
    error_message = "The bucket policy must only deny plain HTTP and TLS below 1.2."
  }

  assert {
    condition = alltrue([
      for s in jsondecode(aws_s3_bucket_policy.this.policy).Statement :
      s.Resource == ["arn:aws:s3:::rates-test-ingest-123456789012-eu-central-1", "arn:aws:s3:::rates-test-ingest-123456789012-eu-central-1/*"]
    ])
    error_message = "The TLS statements must cover the bucket and its objects."
  }
}

run "lifecycle_rules_expire_batches_reports_versions_and_uploads" {
  command = plan

  variables {
    incoming_expiration_days           = 14
    reports_expiration_days            = 60
    noncurrent_version_expiration_days = 10
  }

  assert {
    condition = [
      for r in aws_s3_bucket_lifecycle_configuration.this.rule : r.id if r.status == "Enabled"
    ] == ["expire-incoming", "expire-reports", "clean-up-versions-and-uploads"]
    error_message = "The three lifecycle rules must be enabled."
  }

  assert {
    condition = {
      for r in aws_s3_bucket_lifecycle_configuration.this.rule : r.id => [one(r.filter).prefix, one(r.expiration).days]
      if r.id != "clean-up-versions-and-uploads"
      } == {
      "expire-incoming" = ["incoming/", 14]
      "expire-reports"  = ["reports/", 60]
    }
    error_message = "incoming/ and reports/ must expire after their own number of days."
  }

  assert {
    condition = [
      for r in aws_s3_bucket_lifecycle_configuration.this.rule : [
        one(r.noncurrent_version_expiration).noncurrent_days,
        one(r.abort_incomplete_multipart_upload).days_after_initiation,
        one(r.expiration).expired_object_delete_marker,
      ] if r.id == "clean-up-versions-and-uploads"
    ] == [[10, 7, true]]
    error_message = "Noncurrent versions, expired delete markers and incomplete uploads must be cleaned up across the bucket."
  }
}

run "queue_has_a_dead_letter_queue_and_encryption" {
  command = plan

  variables {
    max_batch_duration_seconds = 1500
  }

  assert {
    condition = jsondecode(aws_sqs_queue.this.redrive_policy) == {
      deadLetterTargetArn = "arn:aws:sqs:eu-central-1:123456789012:rates-test-ingest-dlq"
      maxReceiveCount     = 5
    }
    error_message = "Messages must move to the DLQ after 5 receives."
  }

  assert {
    condition = jsondecode(aws_sqs_queue_redrive_allow_policy.dlq.redrive_allow_policy) == {
      redrivePermission = "byQueue"
      sourceQueueArns   = ["arn:aws:sqs:eu-central-1:123456789012:rates-test-ingest"]
    }
    error_message = "Only the ingestion queue may use the DLQ."
  }

  assert {
    condition     = aws_sqs_queue.this.sqs_managed_sse_enabled && aws_sqs_queue.dlq.sqs_managed_sse_enabled
    error_message = "Both queues must be encrypted at rest."
  }

  assert {
    condition = (
      aws_sqs_queue.this.visibility_timeout_seconds == 1800 &&
      aws_sqs_queue.this.receive_wait_time_seconds == 20 &&
      aws_sqs_queue.this.message_retention_seconds == 345600 &&
      aws_sqs_queue.dlq.message_retention_seconds == 1209600
    )
    error_message = "Visibility timeout (the batch deadline plus 5 minutes), long polling and retention (4 days, DLQ 14 days) must be set."
  }

  assert {
    condition     = aws_sqs_queue.this.name == "rates-test-ingest" && aws_sqs_queue.dlq.name == "rates-test-ingest-dlq"
    error_message = "The queues are named <name>-ingest and <name>-ingest-dlq."
  }
}

run "only_the_bucket_may_send_to_the_queue" {
  command = plan

  assert {
    condition = [
      for s in jsondecode(aws_sqs_queue_policy.this.policy).Statement : s if s.Effect == "Allow"
      ] == [{
        Sid       = "AllowNotificationsOfTheIngestBucket"
        Effect    = "Allow"
        Principal = { Service = "s3.amazonaws.com" }
        Action    = "sqs:SendMessage"
        Resource  = "arn:aws:sqs:eu-central-1:123456789012:rates-test-ingest"
        Condition = {
          ArnEquals    = { "aws:SourceArn" = "arn:aws:s3:::rates-test-ingest-123456789012-eu-central-1" }
          StringEquals = { "aws:SourceAccount" = "123456789012" }
        }
    }]
    error_message = "The queue policy must allow S3 to send, for this bucket and account only."
  }

  assert {
    condition = [
      for s in jsondecode(aws_sqs_queue_policy.this.policy).Statement : s.Condition if s.Effect == "Deny"
    ] == [{ Bool = { "aws:SecureTransport" = "false" } }]
    error_message = "The queue must refuse plain HTTP."
  }

  assert {
    condition = [
      for q in aws_s3_bucket_notification.this.queue : [q.queue_arn, q.filter_prefix, q.events == toset(["s3:ObjectCreated:*"])]
    ] == [["arn:aws:sqs:eu-central-1:123456789012:rates-test-ingest", "incoming/", true]]
    error_message = "Every object created under incoming/ must be announced on the queue, and nothing else."
  }

  assert {
    condition     = length(aws_s3_bucket_notification.this.lambda_function) == 0 && length(aws_s3_bucket_notification.this.topic) == 0
    error_message = "The queue is the only destination of the notifications."
  }
}

run "worker_environment_matches_the_queue" {
  command = plan

  assert {
    condition = output.worker_environment == {
      INGEST_QUEUE_URL          = "https://sqs.eu-central-1.amazonaws.com/123456789012/rates-test-ingest"
      INGEST_REPORTS_PREFIX     = "reports/"
      INGEST_VISIBILITY_TIMEOUT = "15m"
      INGEST_WAIT_TIME          = "20"
      INGEST_MAX_BATCH_DURATION = "600s"
    }
    error_message = "The worker polls this queue as long as the queue waits, hides a message as long as the queue does, and writes reports where its role may."
  }
}

run "a_visibility_timeout_of_odd_seconds_is_passed_in_seconds" {
  command = plan

  variables {
    max_batch_duration_seconds = 350
  }

  assert {
    condition     = output.worker_environment.INGEST_VISIBILITY_TIMEOUT == "650s" && aws_sqs_queue.this.visibility_timeout_seconds == 650
    error_message = "A visibility timeout that is not whole minutes is passed in seconds."
  }
}

run "worker_role_is_least_privilege" {
  command = plan

  assert {
    condition = {
      for s in jsondecode(output.worker_policy_statements) : s.Sid => [s.Action, s.Resource]
      } == {
      ReadIncomingBatches   = [["s3:GetObject", "s3:GetObjectVersion"], "arn:aws:s3:::rates-test-ingest-123456789012-eu-central-1/incoming/*"]
      ListIncomingBatches   = [["s3:ListBucket"], "arn:aws:s3:::rates-test-ingest-123456789012-eu-central-1"]
      WriteBatchReports     = [["s3:PutObject"], "arn:aws:s3:::rates-test-ingest-123456789012-eu-central-1/reports/*"]
      UseBucketKeyThroughS3 = [["kms:Decrypt", "kms:GenerateDataKey"], "arn:aws:kms:eu-central-1:123456789012:key/11111111-1111-1111-1111-111111111111"]
      ConsumeIngestQueue    = [["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"], "arn:aws:sqs:eu-central-1:123456789012:rates-test-ingest"]
      SendBatchParts        = [["sqs:SendMessage"], "arn:aws:sqs:eu-central-1:123456789012:rates-test-ingest"]
    }
    error_message = "The worker's role must hold exactly these actions on exactly these resources: sqs:SendMessage on the ingest queue only (the parts of multi-part batches), never on the dead-letter queue."
  }

  assert {
    condition = {
      for s in jsondecode(output.worker_policy_statements) : s.Sid => s.Condition if can(s.Condition)
      } == {
      UseBucketKeyThroughS3 = { StringEquals = { "kms:ViaService" = "s3.eu-central-1.amazonaws.com" } }
      ListIncomingBatches   = { StringLike = { "s3:prefix" = ["incoming/*"] } }
    }
    error_message = "The bucket's key may only be used through S3, and only the incoming prefix listed."
  }

  assert {
    condition     = alltrue([for s in jsondecode(output.worker_policy_statements) : s.Effect == "Allow" && s.Resource != "*" && alltrue([for a in s.Action : !strcontains(a, "*")])])
    error_message = "The worker's statements have no wildcard action or resource."
  }
}

run "rejects_a_deadline_the_queue_cannot_hide_a_message_for" {
  command = plan

  variables {
    max_batch_duration_seconds = 43000
  }

  expect_failures = [var.max_batch_duration_seconds]
}
