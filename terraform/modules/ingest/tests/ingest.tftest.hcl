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

override_resource {
  target          = module.task.aws_cloudwatch_log_group.this
  override_during = plan
  values = {
    arn = "arn:aws:logs:eu-central-1:123456789012:log-group:/ecs/rates-test-worker"
  }
}

variables {
  name           = "rates-test"
  service_name   = "rates-test-worker"
  task_family    = "rates-test-worker"
  log_group_name = "/ecs/rates-test-worker"
  image          = "123456789012.dkr.ecr.eu-central-1.amazonaws.com/rates-test:bootstrap"
  cluster_arn    = "arn:aws:ecs:eu-central-1:123456789012:cluster/rates-test"
  cluster_name   = "rates-test"

  db_host                    = "rates-test.abcdefghijkl.eu-central-1.rds.amazonaws.com"
  db_name                    = "rates"
  db_user                    = "rates"
  db_password_parameter_name = "/rates/test/db/password"
  db_password_parameter_arn  = "arn:aws:ssm:eu-central-1:123456789012:parameter/rates/test/db/password"
  db_password_kms_key_arn    = "arn:aws:kms:eu-central-1:123456789012:key/00000000-0000-0000-0000-000000000000"
  database_security_group_id = "sg-0database000000000"

  vpc_id             = "vpc-0123456789abcdef0"
  subnet_ids         = ["subnet-0000000000000000a", "subnet-0000000000000000b"]
  ecr_repository_arn = "arn:aws:ecr:eu-central-1:123456789012:repository/rates-test"

  permissions_boundary_arn = "arn:aws:iam::123456789012:policy/rates-ci/rates-test-boundary"
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
    incoming_expiration_days               = 14
    reports_expiration_days                = 60
    noncurrent_version_expiration_days     = 10
    abort_incomplete_multipart_upload_days = 3
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
    ] == [[10, 3, true]]
    error_message = "Noncurrent versions, expired delete markers and incomplete uploads must be cleaned up across the bucket."
  }
}

run "queue_has_a_dead_letter_queue_and_encryption" {
  command = plan

  variables {
    max_receive_count          = 7
    max_batch_duration_seconds = 1200
    visibility_timeout_seconds = 1800
  }

  assert {
    condition = jsondecode(aws_sqs_queue.this.redrive_policy) == {
      deadLetterTargetArn = "arn:aws:sqs:eu-central-1:123456789012:rates-test-ingest-dlq"
      maxReceiveCount     = 7
    }
    error_message = "Messages must move to the DLQ after max_receive_count receives."
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
    error_message = "Visibility timeout, long polling and retention (4 days, DLQ 14 days) must be set."
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

run "worker_runs_privately_without_load_balancer" {
  command = plan

  assert {
    condition     = aws_ecs_service.worker.network_configuration[0].assign_public_ip == false
    error_message = "Worker tasks must not get a public IP."
  }

  assert {
    condition     = aws_ecs_service.worker.network_configuration[0].subnets == toset(["subnet-0000000000000000a", "subnet-0000000000000000b"])
    error_message = "Worker tasks must run in the given private subnets."
  }

  assert {
    condition     = length(aws_ecs_service.worker.load_balancer) == 0
    error_message = "The worker has no load balancer."
  }

  assert {
    condition = (
      aws_ecs_service.worker.cluster == "arn:aws:ecs:eu-central-1:123456789012:cluster/rates-test" &&
      aws_ecs_service.worker.name == "rates-test-worker" &&
      module.task.task_definition_family == "rates-test-worker" &&
      aws_ecs_service.worker.launch_type == "FARGATE"
    )
    error_message = "The worker is a Fargate service of its own family in the given cluster."
  }

  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.metrics) == 0
    error_message = "Nothing may connect to the worker by default."
  }

  assert {
    condition = (
      aws_vpc_security_group_egress_rule.database.referenced_security_group_id == "sg-0database000000000" &&
      aws_vpc_security_group_egress_rule.database.from_port == 5432
    )
    error_message = "The worker may open connections to the database's security group on 5432."
  }

  assert {
    condition     = aws_ecs_service.worker.deployment_circuit_breaker[0].enable && aws_ecs_service.worker.deployment_circuit_breaker[0].rollback
    error_message = "The deployment circuit breaker must be on, with rollback."
  }

  assert {
    condition     = aws_ecs_service.worker.availability_zone_rebalancing == "DISABLED"
    error_message = "Zone rebalancing must not stop busy workers."
  }
}

run "worker_container_matches_the_binary_contract" {
  command = plan

  assert {
    condition     = jsondecode(module.task.container_definitions)[0].command == ["worker"]
    error_message = "The container must run `rates worker`."
  }

  assert {
    condition = (
      jsondecode(module.task.container_definitions)[0].name == "rates" &&
      jsondecode(module.task.container_definitions)[0].image == "123456789012.dkr.ecr.eu-central-1.amazonaws.com/rates-test:bootstrap"
    )
    error_message = "The worker runs the API's image in a container named rates."
  }

  assert {
    condition     = jsondecode(module.task.container_definitions)[0].stopTimeout == 120
    error_message = "The worker must get 120 s after SIGTERM to finish or roll back its batch."
  }

  assert {
    condition = (
      jsondecode(module.task.container_definitions)[0].readonlyRootFilesystem == true &&
      !contains(["0", "root", "0:0"], jsondecode(module.task.container_definitions)[0].user)
    )
    error_message = "The worker runs as non-root with a read-only root filesystem."
  }

  assert {
    condition = {
      for e in jsondecode(module.task.container_definitions)[0].environment : e.name => e.value
      } == {
      AWS_REGION                = "eu-central-1"
      DB_HOST                   = "rates-test.abcdefghijkl.eu-central-1.rds.amazonaws.com"
      DB_NAME                   = "rates"
      DB_PASSWORD_SSM_PARAMETER = "/rates/test/db/password"
      DB_PORT                   = "5432"
      DB_SSLMODE                = "verify-full"
      DB_SSLROOTCERT            = "/usr/share/rates/rds-ca.pem"
      DB_USER                   = "rates"
      INGEST_QUEUE_URL          = "https://sqs.eu-central-1.amazonaws.com/123456789012/rates-test-ingest"
      INGEST_REPORTS_PREFIX     = "reports/"
      INGEST_VISIBILITY_TIMEOUT = "15m"
      INGEST_WAIT_TIME          = "20"
      INGEST_MAX_BATCH_DURATION = "600s"
      LOG_FORMAT                = "json"
      LOG_LEVEL                 = "info"
      METRICS_ADDR              = ":9090"
      SHUTDOWN_TIMEOUT          = "110s"
    }
    error_message = "The environment must match the worker's variables."
  }

  assert {
    condition     = jsondecode(module.task.container_definitions)[0].logConfiguration.options["awslogs-group"] == "/ecs/rates-test-worker"
    error_message = "The worker must log to its own log group."
  }

  assert {
    condition     = module.task.log_group_name == "/ecs/rates-test-worker"
    error_message = "The worker has its own log group."
  }
}

run "extra_environment_cannot_override_the_contract" {
  command = plan

  variables {
    extra_environment = {
      INGEST_QUEUE_URL = "https://example.com/other"
      EXTRA            = "1"
    }
    visibility_timeout_seconds = 650
  }

  assert {
    condition = (
      { for e in jsondecode(module.task.container_definitions)[0].environment : e.name => e.value }["INGEST_QUEUE_URL"] == "https://sqs.eu-central-1.amazonaws.com/123456789012/rates-test-ingest" &&
      { for e in jsondecode(module.task.container_definitions)[0].environment : e.name => e.value }["EXTRA"] == "1"
    )
    error_message = "extra_environment adds variables but cannot replace the module's."
  }

  assert {
    condition     = { for e in jsondecode(module.task.container_definitions)[0].environment : e.name => e.value }["INGEST_VISIBILITY_TIMEOUT"] == "650s"
    error_message = "A visibility timeout that is not whole minutes is passed in seconds."
  }
}

run "task_role_is_least_privilege" {
  command = plan

  assert {
    condition = {
      for s in jsondecode(module.task.task_role_policy).Statement : s.Sid => [s.Action, s.Resource]
      } == {
      ReadIncomingBatches               = [["s3:GetObject", "s3:GetObjectVersion"], "arn:aws:s3:::rates-test-ingest-123456789012-eu-central-1/incoming/*"]
      ListIncomingBatches               = [["s3:ListBucket"], "arn:aws:s3:::rates-test-ingest-123456789012-eu-central-1"]
      WriteBatchReports                 = [["s3:PutObject"], "arn:aws:s3:::rates-test-ingest-123456789012-eu-central-1/reports/*"]
      UseBucketKeyThroughS3             = [["kms:Decrypt", "kms:GenerateDataKey"], "arn:aws:kms:eu-central-1:123456789012:key/11111111-1111-1111-1111-111111111111"]
      ConsumeIngestQueue                = [["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"], "arn:aws:sqs:eu-central-1:123456789012:rates-test-ingest"]
      ReadDatabasePassword              = [["ssm:GetParameter"], "arn:aws:ssm:eu-central-1:123456789012:parameter/rates/test/db/password"]
      DecryptDatabasePasswordThroughSsm = [["kms:Decrypt"], "arn:aws:kms:eu-central-1:123456789012:key/00000000-0000-0000-0000-000000000000"]
    }
    error_message = "The task role must hold exactly these actions on exactly these resources."
  }

  assert {
    condition = {
      for s in jsondecode(module.task.task_role_policy).Statement : s.Sid => s.Condition if can(s.Condition)
      } == {
      UseBucketKeyThroughS3             = { StringEquals = { "kms:ViaService" = "s3.eu-central-1.amazonaws.com" } }
      ListIncomingBatches               = { StringLike = { "s3:prefix" = ["incoming/*"] } }
      DecryptDatabasePasswordThroughSsm = { StringEquals = { "kms:ViaService" = "ssm.eu-central-1.amazonaws.com" } }
    }
    error_message = "The keys may only be used through S3 and SSM."
  }

  assert {
    condition     = alltrue([for s in jsondecode(module.task.task_role_policy).Statement : s.Resource != "*" && alltrue([for a in s.Action : !strcontains(a, "*")])])
    error_message = "Without ECS Exec the task role has no wildcard action or resource."
  }

  assert {
    condition     = [for s in jsondecode(module.task.execution_role_policy).Statement : s.Sid if s.Resource == "*"] == ["EcrLogin"]
    error_message = "Only ecr:GetAuthorizationToken (no resource-level permissions) may use a wildcard in the execution role."
  }

  assert {
    condition = [
      for s in jsondecode(module.task.execution_role_policy).Statement : s.Resource if s.Sid == "WriteLogGroup"
    ] == ["arn:aws:logs:eu-central-1:123456789012:log-group:/ecs/rates-test-worker:log-stream:*"]
    error_message = "The execution role writes the worker's log group only."
  }
}

run "scales_on_queue_depth_from_zero" {
  command = plan

  assert {
    condition = (
      aws_ecs_service.worker.desired_count == 0 &&
      aws_appautoscaling_target.worker.min_capacity == 0 &&
      aws_appautoscaling_target.worker.max_capacity == 2 &&
      aws_appautoscaling_target.worker.resource_id == "service/rates-test/rates-test-worker"
    )
    error_message = "By default the worker scales between 0 and 2 tasks."
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.backlog.metric_name == "ApproximateNumberOfMessagesVisible" &&
      aws_cloudwatch_metric_alarm.backlog.dimensions == tomap({ QueueName = "rates-test-ingest" }) &&
      aws_cloudwatch_metric_alarm.backlog.comparison_operator == "GreaterThanOrEqualToThreshold" &&
      aws_cloudwatch_metric_alarm.backlog.threshold == 1
    )
    error_message = "Scale-out must react to one visible message on the ingestion queue."
  }

  assert {
    condition = (
      one(aws_appautoscaling_policy.scale_out.step_scaling_policy_configuration).adjustment_type == "ChangeInCapacity" &&
      alltrue([for s in one(aws_appautoscaling_policy.scale_out.step_scaling_policy_configuration).step_adjustment : s.scaling_adjustment > 0])
    )
    error_message = "The scale-out policy only adds tasks."
  }

  assert {
    condition = (
      one(aws_appautoscaling_policy.scale_in.step_scaling_policy_configuration).adjustment_type == "ExactCapacity" &&
      [for s in one(aws_appautoscaling_policy.scale_in.step_scaling_policy_configuration).step_adjustment : s.scaling_adjustment] == [0] &&
      aws_cloudwatch_metric_alarm.idle.evaluation_periods == 15
    )
    error_message = "After 15 idle minutes the worker goes back to its minimum."
  }

  assert {
    condition = toset([
      for q in aws_cloudwatch_metric_alarm.idle.metric_query : one(q.metric).metric_name if length(q.metric) > 0
    ]) == toset(["ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible"])
    error_message = "Idle means no message waiting and none in flight."
  }
}

run "prod_like_scaling_keeps_one_worker" {
  command = plan

  variables {
    min_capacity = 1
    max_capacity = 6
  }

  assert {
    condition = (
      aws_ecs_service.worker.desired_count == 1 &&
      aws_appautoscaling_target.worker.min_capacity == 1 &&
      aws_appautoscaling_target.worker.max_capacity == 6 &&
      [for s in one(aws_appautoscaling_policy.scale_in.step_scaling_policy_configuration).step_adjustment : s.scaling_adjustment] == [1]
    )
    error_message = "With min_capacity 1 one worker always polls, and scale-in stops at 1."
  }
}

run "ecs_exec_adds_only_the_ssm_messages_channels" {
  command = plan

  variables {
    enable_execute_command = true
  }

  assert {
    condition     = [for s in jsondecode(module.task.task_role_policy).Statement : s.Sid if s.Resource == "*"] == ["EcsExecChannels"]
    error_message = "ECS Exec adds the SSM Messages statement and nothing else."
  }
}

run "rejects_a_visibility_timeout_not_above_the_longest_batch" {
  command = plan

  variables {
    max_batch_duration_seconds = 900
    visibility_timeout_seconds = 900
  }

  expect_failures = [var.visibility_timeout_seconds]
}

run "rejects_a_shutdown_timeout_beyond_the_stop_timeout" {
  command = plan

  variables {
    shutdown_timeout_seconds = 120
  }

  expect_failures = [var.shutdown_timeout_seconds]
}

run "rejects_a_maximum_below_the_minimum" {
  command = plan

  variables {
    min_capacity = 3
    max_capacity = 2
  }

  expect_failures = [var.max_capacity]
}

run "rejects_reports_under_the_incoming_prefix" {
  command = plan

  variables {
    reports_prefix = "incoming/"
  }

  expect_failures = [var.reports_prefix]
}

run "rejects_a_receive_wait_longer_than_sqs_allows" {
  command = plan

  variables {
    receive_wait_time_seconds = 30
  }

  expect_failures = [var.receive_wait_time_seconds]
}

# HTTPS goes anywhere by default (AWS APIs through NAT); with VPC endpoints only to the VPC (the
# interface endpoints) and the S3 gateway endpoint's prefix list.
run "https_egress_follows_the_endpoints" {
  command = plan

  variables {
    https_egress_cidr_block      = "10.30.0.0/16"
    https_egress_prefix_list_ids = ["pl-6ea54007"]
  }

  assert {
    condition = (
      aws_vpc_security_group_egress_rule.https.cidr_ipv4 == "10.30.0.0/16" &&
      aws_vpc_security_group_egress_rule.https.from_port == 443 &&
      length(aws_vpc_security_group_egress_rule.https_prefix_list) == 1 &&
      aws_vpc_security_group_egress_rule.https_prefix_list[0].prefix_list_id == "pl-6ea54007" &&
      aws_vpc_security_group_egress_rule.https_prefix_list[0].from_port == 443 &&
      aws_vpc_security_group_egress_rule.https_prefix_list[0].to_port == 443
    )
    error_message = "With endpoints the worker reach HTTPS in the VPC and S3's prefix list only."
  }
}

run "https_egress_without_endpoints" {
  command = plan

  assert {
    condition     = aws_vpc_security_group_egress_rule.https.cidr_ipv4 == "0.0.0.0/0" && length(aws_vpc_security_group_egress_rule.https_prefix_list) == 0
    error_message = "Without endpoints the worker reach the AWS APIs through NAT, on 443 only."
  }
}
