# The worker: a second ECS service in the API's cluster, from the same image, running
# `rates worker` (the entry point passes `worker` straight to the binary). No load balancer, no
# inbound traffic except the optional metrics port; scaled on the queue's depth.

locals {
  # INGEST_VISIBILITY_TIMEOUT as a Go duration: whole minutes when possible (900 -> 15m).
  visibility_timeout_duration = (
    var.visibility_timeout_seconds % 60 == 0
    ? "${floor(var.visibility_timeout_seconds / 60)}m"
    : "${var.visibility_timeout_seconds}s"
  )

  # The environment contract of `rates worker`.
  worker_app_environment = {
    DB_HOST                   = var.db_host
    DB_PORT                   = tostring(var.db_port)
    DB_NAME                   = var.db_name
    DB_USER                   = var.db_user
    DB_PASSWORD_SSM_PARAMETER = var.db_password_parameter_name
    LOG_FORMAT                = "json"
    LOG_LEVEL                 = var.log_level
    SHUTDOWN_TIMEOUT          = "${var.shutdown_timeout_seconds}s"
    AWS_REGION                = local.region
    INGEST_QUEUE_URL          = aws_sqs_queue.this.url
    INGEST_REPORTS_PREFIX     = var.reports_prefix
    INGEST_VISIBILITY_TIMEOUT = local.visibility_timeout_duration
    INGEST_WAIT_TIME          = tostring(var.receive_wait_time_seconds)
    INGEST_MAX_BATCH_DURATION = "${var.max_batch_duration_seconds}s"
    METRICS_ADDR              = ":${var.metrics_port}"
  }

  # Module-set variables win over extra_environment.
  worker_environment = merge(var.extra_environment, local.worker_app_environment)
}

################################################################################
# Task definition, log group and IAM roles (modules/ecs_task)
################################################################################

# As for the API: Terraform registers the first revision of the family, the deploy workflow the
# later ones (new images), so the service ignores its task_definition after creation. The task
# role reads batches under incoming/, writes reports under reports/, consumes the one queue and
# uses the bucket's key through S3 only; modules/ecs_task adds the password parameter.
module "task" {
  source = "../ecs_task"

  name           = "${var.name}-worker"
  service_name   = var.service_name
  task_family    = var.task_family
  container_name = var.container_name
  log_group_name = var.log_group_name

  image            = var.image
  command          = ["worker"]
  environment      = local.worker_environment
  cpu              = var.cpu
  memory           = var.memory
  cpu_architecture = var.cpu_architecture
  container_user   = var.container_user
  # SIGTERM stops the polling; the batch in hand then has shutdown_timeout_seconds to commit or
  # roll back before ECS kills the container after stop_timeout.
  stop_timeout  = var.stop_timeout
  port_mappings = [{ name = "metrics", port = var.metrics_port }]

  log_retention_days        = var.log_retention_days
  ecr_repository_arn        = var.ecr_repository_arn
  db_password_parameter_arn = var.db_password_parameter_arn
  db_password_kms_key_arn   = var.db_password_kms_key_arn
  enable_execute_command    = var.enable_execute_command
  metrics_namespace         = var.metrics_namespace

  task_policy_name  = "ingest-batches"
  task_role_purpose = "reads incoming batches, writes reports, consumes the ingestion queue"
  task_policy_statements = jsonencode([
    {
      Sid      = "ReadIncomingBatches"
      Effect   = "Allow"
      Action   = ["s3:GetObject", "s3:GetObjectVersion"]
      Resource = "${aws_s3_bucket.this.arn}/${var.incoming_prefix}*"
    },
    {
      # Listing the incoming prefix makes S3 answer 404 (NoSuchKey) for an object deleted
      # before the worker read it, instead of 403: the worker then writes a report and deletes
      # the message instead of retrying it into the dead-letter queue.
      Sid      = "ListIncomingBatches"
      Effect   = "Allow"
      Action   = ["s3:ListBucket"]
      Resource = aws_s3_bucket.this.arn
      Condition = {
        StringLike = { "s3:prefix" = ["${var.incoming_prefix}*"] }
      }
    },
    {
      Sid      = "WriteBatchReports"
      Effect   = "Allow"
      Action   = ["s3:PutObject"]
      Resource = "${aws_s3_bucket.this.arn}/${var.reports_prefix}*"
    },
    {
      # Objects are encrypted with the bucket's key: reading needs Decrypt, writing a report
      # GenerateDataKey, and only S3 may use the key on the worker's behalf.
      Sid      = "UseBucketKeyThroughS3"
      Effect   = "Allow"
      Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
      Resource = aws_kms_key.bucket.arn
      Condition = {
        StringEquals = { "kms:ViaService" = "s3.${local.region}.amazonaws.com" }
      }
    },
    {
      Sid      = "ConsumeIngestQueue"
      Effect   = "Allow"
      Action   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
      Resource = aws_sqs_queue.this.arn
    },
  ])

  permissions_boundary_arn = var.permissions_boundary_arn
  tags                     = var.tags
}

################################################################################
# Security group of the worker tasks
################################################################################

resource "aws_security_group" "worker" {
  name_prefix = "${var.name}-worker-"
  description = "Tasks of ${var.service_name}: no inbound traffic except metrics from the VPC"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-worker" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "metrics" {
  for_each = toset(var.metrics_ingress_cidr_blocks)

  security_group_id = aws_security_group.worker.id
  description       = "Prometheus metrics from inside the VPC"
  ip_protocol       = "tcp"
  from_port         = var.metrics_port
  to_port           = var.metrics_port
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "database" {
  security_group_id            = aws_security_group.worker.id
  description                  = "PostgreSQL"
  ip_protocol                  = "tcp"
  from_port                    = var.db_port
  to_port                      = var.db_port
  referenced_security_group_id = var.database_security_group_id
}

#trivy:ignore:AVD-AWS-0104 Without VPC endpoints (dev, staging) the worker reaches SQS, S3, SSM, ECR and CloudWatch Logs over HTTPS through the NAT gateway; these AWS endpoints have no fixed addresses. With endpoints (prod) the rule names the VPC only.
resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.worker.id
  description       = "HTTPS to AWS APIs (SQS, S3, SSM, ECR, CloudWatch Logs)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = var.https_egress_cidr_block
}

resource "aws_vpc_security_group_egress_rule" "https_prefix_list" {
  count = length(var.https_egress_prefix_list_ids)

  security_group_id = aws_security_group.worker.id
  description       = "HTTPS to S3 through its gateway endpoint"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = var.https_egress_prefix_list_ids[count.index]
}

################################################################################
# Service
################################################################################

resource "aws_ecs_service" "worker" {
  name             = var.service_name
  cluster          = var.cluster_arn
  task_definition  = module.task.task_definition_arn
  desired_count    = var.min_capacity
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  # New tasks start before old ones are stopped; a stopped worker finishes or rolls back its batch
  # within stop_timeout, and the message comes back for the next one.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  # Rebalancing would stop busy workers only to move them to another zone.
  availability_zone_rebalancing = "DISABLED"

  enable_execute_command  = var.enable_execute_command
  enable_ecs_managed_tags = true
  propagate_tags          = "SERVICE"
  wait_for_steady_state   = false

  deployment_controller {
    type = "ECS"
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.worker.id]
    assign_public_ip = false
  }

  tags = merge(var.tags, { Name = var.service_name })

  lifecycle {
    # task_definition: the deploy workflow owns the running revision.
    # desired_count: autoscaling owns the number of tasks once the service exists.
    ignore_changes = [task_definition, desired_count]
  }
}

################################################################################
# Autoscaling on the queue's depth
################################################################################

# Step scaling on SQS metrics rather than target tracking: it scales from zero tasks (a backlog
# per task metric divides by zero there), it only ever adds tasks while messages wait, and it
# removes tasks only once the queue is completely idle (no message waiting or in flight), so a
# scale-in never interrupts a batch.
resource "aws_appautoscaling_target" "worker" {
  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = "service/${var.cluster_name}/${aws_ecs_service.worker.name}"
  min_capacity       = var.min_capacity
  max_capacity       = var.max_capacity

  tags = var.tags
}

resource "aws_appautoscaling_policy" "scale_out" {
  name               = "${var.name}-worker-scale-out"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension
  resource_id        = aws_appautoscaling_target.worker.resource_id

  # Steps relative to the alarm threshold of 1 visible message: 1-4 waiting -> +1 task,
  # 5-19 -> +2, 20 or more -> +4. While messages keep waiting, the alarm repeats the step after
  # each cooldown, up to max_capacity.
  step_scaling_policy_configuration {
    adjustment_type         = "ChangeInCapacity"
    cooldown                = var.scale_out_cooldown
    metric_aggregation_type = "Maximum"

    step_adjustment {
      metric_interval_lower_bound = "0"
      metric_interval_upper_bound = "4"
      scaling_adjustment          = 1
    }

    step_adjustment {
      metric_interval_lower_bound = "4"
      metric_interval_upper_bound = "19"
      scaling_adjustment          = 2
    }

    step_adjustment {
      metric_interval_lower_bound = "19"
      scaling_adjustment          = 4
    }
  }
}

resource "aws_appautoscaling_policy" "scale_in" {
  name               = "${var.name}-worker-scale-in"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension
  resource_id        = aws_appautoscaling_target.worker.resource_id

  # Back to min_capacity (0, or 1 in prod) once the queue has been idle.
  step_scaling_policy_configuration {
    adjustment_type         = "ExactCapacity"
    cooldown                = var.scale_in_cooldown
    metric_aggregation_type = "Maximum"

    step_adjustment {
      metric_interval_upper_bound = "0"
      scaling_adjustment          = var.min_capacity
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "backlog" {
  alarm_name        = "${var.name}-worker-backlog"
  alarm_description = "Scaling signal of ${var.service_name} (no notification): batches are waiting in ${local.queue_name}, so the worker service adds tasks up to its maximum."

  namespace   = "AWS/SQS"
  metric_name = "ApproximateNumberOfMessagesVisible"
  dimensions  = { QueueName = aws_sqs_queue.this.name }
  statistic   = "Maximum"
  period      = 60

  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  # SQS stops publishing for a queue idle for hours: no data means nothing is waiting.
  treat_missing_data = "notBreaching"

  alarm_actions = [aws_appautoscaling_policy.scale_out.arn]

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "idle" {
  alarm_name        = "${var.name}-worker-idle"
  alarm_description = "Scaling signal of ${var.service_name} (no notification): ${local.queue_name} has had no message waiting or in flight for ${var.scale_in_idle_minutes} minutes, so the worker service goes back to its minimum."

  evaluation_periods  = var.scale_in_idle_minutes
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  # Without data nothing is known to be idle: keep the workers.
  treat_missing_data = "notBreaching"

  metric_query {
    id          = "messages"
    expression  = "visible + in_flight"
    label       = "Messages waiting or in flight"
    return_data = true
  }

  metric_query {
    id = "visible"

    metric {
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesVisible"
      dimensions  = { QueueName = aws_sqs_queue.this.name }
      stat        = "Maximum"
      period      = 60
    }
  }

  metric_query {
    id = "in_flight"

    metric {
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesNotVisible"
      dimensions  = { QueueName = aws_sqs_queue.this.name }
      stat        = "Maximum"
      period      = 60
    }
  }

  alarm_actions = [aws_appautoscaling_policy.scale_in.arn]

  tags = var.tags
}
