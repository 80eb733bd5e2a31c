# Monitoring of one environment: an encrypted SNS topic for the alarms (optional e-mail
# subscription), a metric filter that counts the worker's error lines, the alarms (alarms.tf) and a
# CloudWatch dashboard (dashboard.tf).

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  topic_name     = "${var.name}-alarms"
  dashboard_name = var.name

  # Every alarm of this module is named <name>-<alarm>; CloudWatch may use the topic and its key
  # for those alarms only.
  alarm_arn_pattern = "arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${var.name}-*"

  # Custom metric of the worker's error lines, next to the application's own metrics.
  metrics_namespace  = var.metrics_namespace
  worker_errors_name = "WorkerErrors"

  # Thresholds that hold in every workspace; the stack sets those that differ (database
  # connections and free storage, the freshness objective, the batch deadline).
  threshold = {
    alb_5xx_count             = 10 # 5XX the load balancer answered itself, per 5 minutes
    target_5xx_percent        = 5  # of a minute's requests; 3 minutes out of 5 fire
    target_5xx_min_requests   = 20 # requests a minute below which the rate is not judged
    response_time_p99_seconds = 1
    ecs_cpu_percent           = 85
    ecs_memory_percent        = 85
    db_cpu_percent            = 80
    db_read_latency_seconds   = 0.02
    db_write_latency_seconds  = 0.05
    # Twice the queue's visibility timeout (the deadline plus 5 minutes): one batch retried after
    # a crash does not fire it.
    queue_oldest_message_seconds = 2 * (var.batch_deadline_seconds + 300)
    worker_errors                = 1
    # Percentiles of the API's histogram read as a bucket's upper bound: 0.05, 0.1, 0.25, 0.5, 1.
    rates_p99_seconds          = 0.25
    cache_hit_percent          = 20
    cache_min_lookups          = 300 # answers per 5 minutes below which the ratio is not judged
    db_pool_wait_ms            = 10
    db_pool_saturation_percent = 10
    db_pool_min_acquires       = 300 # acquires per 5 minutes below which the pool is not judged
    # Half the deadline: a batch that slow is close to being rolled back.
    batch_duration_seconds = var.batch_deadline_seconds / 2
    # Half the deadline too: the workers' sweep fails a batch at the deadline, so an alarm there
    # would only fire once sweeps stopped; at half, someone can still help the batch finish.
    staged_batch_age_seconds = var.batch_deadline_seconds / 2
  }
}

################################################################################
# Topic and its key
################################################################################

# A customer-managed key: CloudWatch cannot publish to a topic encrypted with the AWS-managed
# aws/sns key, whose policy cannot be changed.
resource "aws_kms_key" "alarms" {
  description             = "${local.topic_name}: SNS topic of the alarms"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_key_deletion_window_in_days
  policy                  = local.key_policy

  tags = { Name = local.topic_name }
}

resource "aws_kms_alias" "alarms" {
  name          = "alias/${local.topic_name}"
  target_key_id = aws_kms_key.alarms.key_id
}

locals {
  key_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # The default statement of a key policy: the account's IAM policies decide who may use and
        # manage the key. Without it the key could become unmanageable.
        Sid       = "EnableIamPolicies"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "AllowCloudWatchAlarmsOfThisEnvironment"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
        Condition = {
          StringEquals = { "aws:SourceAccount" = local.account_id }
          ArnLike      = { "aws:SourceArn" = local.alarm_arn_pattern }
        }
      },
    ]
  })

  topic_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountManagesTheTopic"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action = [
          "SNS:GetTopicAttributes",
          "SNS:SetTopicAttributes",
          "SNS:AddPermission",
          "SNS:RemovePermission",
          "SNS:DeleteTopic",
          "SNS:Subscribe",
          "SNS:ListSubscriptionsByTopic",
          "SNS:Publish",
        ]
        Resource = aws_sns_topic.alarms.arn
      },
      {
        Sid       = "AllowCloudWatchAlarmsOfThisEnvironment"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = "SNS:Publish"
        Resource  = aws_sns_topic.alarms.arn
        Condition = {
          StringEquals = { "aws:SourceAccount" = local.account_id }
          ArnLike      = { "aws:SourceArn" = local.alarm_arn_pattern }
        }
      },
    ]
  })
}

resource "aws_sns_topic" "alarms" {
  name              = local.topic_name
  display_name      = "${var.name} alarms"
  kms_master_key_id = aws_kms_key.alarms.arn

  tags = { Name = local.topic_name }
}

resource "aws_sns_topic_policy" "alarms" {
  arn    = aws_sns_topic.alarms.arn
  policy = local.topic_policy
}

# AWS sends a confirmation e-mail first; nothing is delivered until the link in it is followed.
resource "aws_sns_topic_subscription" "email" {
  count = var.alarm_email == null ? 0 : 1

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

################################################################################
# Worker errors: JSON log lines with "level":"ERROR" -> custom metric
################################################################################

resource "aws_cloudwatch_log_metric_filter" "worker_errors" {
  name           = "${var.name}-worker-errors"
  log_group_name = var.worker_log_group_name
  # slog writes "ERROR"; the image's entry point writes lower case.
  pattern = "{ ($.level = \"ERROR\") || ($.level = \"error\") }"

  metric_transformation {
    namespace = local.metrics_namespace
    name      = local.worker_errors_name
    value     = "1"
    # Lines that do not match count 0, so the metric exists whenever the worker logs.
    default_value = "0"
    unit          = "Count"
  }
}
