# The alarms, named <name>-<key with hyphens>. Each description says what the alarm means, then
# (after "Do:") what to look at first, and ends with its runbook section ("Runbook:
# docs/operations.md#<section>"). Every alarm notifies the topic when it fires and when it
# recovers. The alarms on the application's own metrics are in app_alarms.tf.
#
# treat_missing_data, per alarm:
# - notBreaching where no data means nothing happened: no requests (error counts and rates,
#   latency), no worker task (ECS metrics of a service scaled to zero), no message (queues), no
#   error line;
# - breaching for the healthy targets: no data there means no target reports healthy;
# - missing for RDS: the instance always reports, so a gap says nothing by itself and the alarm
#   keeps its state.

locals {
  alb_dimensions = { LoadBalancer = var.alb_arn_suffix }
  tg_dimensions  = { LoadBalancer = var.alb_arn_suffix, TargetGroup = var.target_group_arn_suffix }
  api_dimensions = { ClusterName = var.ecs_cluster_name, ServiceName = var.api_service_name }
  wrk_dimensions = { ClusterName = var.ecs_cluster_name, ServiceName = var.worker_service_name }
  db_dimensions  = { DBInstanceIdentifier = var.db_instance_identifier }

  single_metric_alarms = {
    alb_5xx = {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_ELB_5XX_Count"
      dimensions  = local.alb_dimensions
      statistic   = "Sum"
      operator    = "GreaterThanThreshold"
      threshold   = local.threshold.alb_5xx_count
      runbook     = "api-errors"
      description = "The load balancer itself answered 5XX (502/503/504) more than ${local.threshold.alb_5xx_count} times in 5 minutes: no healthy API task, tasks closing connections, or requests timing out. Do: check the healthy-hosts alarm and the events of ECS service ${var.api_service_name}, then its log group for crashes or slow requests; roll back the last deployment if the errors started with it."
    }
    response_time_p99 = {
      namespace   = "AWS/ApplicationELB"
      metric_name = "TargetResponseTime"
      dimensions  = local.tg_dimensions
      percentile  = "p99"
      evaluations = 2
      operator    = "GreaterThanThreshold"
      threshold   = local.threshold.response_time_p99_seconds
      runbook     = "api-latency"
      description = "The 99th percentile of the API's response time has been above ${local.threshold.response_time_p99_seconds} s for 10 minutes. Do: compare with the database alarms (CPU, latency, connections) and the API's CPU; look for slow queries in Performance Insights and for a recent deployment or batch load; scale out the service if CPU bound."
    }
    unhealthy_hosts = {
      namespace   = "AWS/ApplicationELB"
      metric_name = "UnHealthyHostCount"
      dimensions  = local.tg_dimensions
      statistic   = "Maximum"
      period      = 60
      evaluations = 3
      operator    = "GreaterThanThreshold"
      threshold   = 0
      runbook     = "api-tasks"
      description = "At least one API task of the target group has failed the /readyz health check for 3 minutes (its database connection is down, or it is overloaded or crashing). Do: read the task's log lines in the API log group and the ECS service events; check the database alarms; ECS replaces tasks that stay unhealthy."
    }
    healthy_hosts = {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HealthyHostCount"
      dimensions  = local.tg_dimensions
      statistic   = "Minimum"
      period      = 60
      evaluations = 3
      operator    = "LessThanThreshold"
      threshold   = 1
      missing     = "breaching"
      runbook     = "api-tasks"
      description = "The target group has had no healthy API task for 3 minutes: the API is down. Do: open ECS service ${var.api_service_name} (stopped tasks and their reasons, events, deployments); check image pulls, the database password parameter and the database; roll back the last deployment if it caused this."
    }
    api_cpu = {
      namespace   = "AWS/ECS"
      metric_name = "CPUUtilization"
      dimensions  = local.api_dimensions
      statistic   = "Average"
      evaluations = 3
      operator    = "GreaterThanThreshold"
      threshold   = local.threshold.ecs_cpu_percent
      runbook     = "api-tasks"
      description = "The API tasks have used more than ${local.threshold.ecs_cpu_percent} % CPU on average for 15 minutes. Do: check whether autoscaling is at its maximum (then raise max_capacity or the task size) and whether traffic or latency changed; look for a hot route in the request logs."
    }
    api_memory = {
      namespace   = "AWS/ECS"
      metric_name = "MemoryUtilization"
      dimensions  = local.api_dimensions
      statistic   = "Average"
      evaluations = 3
      operator    = "GreaterThanThreshold"
      threshold   = local.threshold.ecs_memory_percent
      runbook     = "api-tasks"
      description = "The API tasks have used more than ${local.threshold.ecs_memory_percent} % of their memory on average for 15 minutes; tasks at the limit are killed. Do: look for stopped tasks with OutOfMemory, compare with the answer cache size and traffic; raise the task memory if the growth is legitimate."
    }
    worker_cpu = {
      namespace   = "AWS/ECS"
      metric_name = "CPUUtilization"
      dimensions  = local.wrk_dimensions
      statistic   = "Average"
      evaluations = 3
      operator    = "GreaterThanThreshold"
      threshold   = local.threshold.ecs_cpu_percent
      runbook     = "batches-and-the-worker"
      description = "The ingest workers have used more than ${local.threshold.ecs_cpu_percent} % CPU on average for 15 minutes: batches parse slower than they arrive. Do: check the queue's oldest-message age; raise the worker's task CPU or its max_capacity (mind the database's connections and CPU)."
    }
    worker_memory = {
      namespace   = "AWS/ECS"
      metric_name = "MemoryUtilization"
      dimensions  = local.wrk_dimensions
      statistic   = "Average"
      evaluations = 3
      operator    = "GreaterThanThreshold"
      threshold   = local.threshold.ecs_memory_percent
      runbook     = "batches-and-the-worker"
      description = "The ingest workers have used more than ${local.threshold.ecs_memory_percent} % of their memory for 15 minutes, although loading streams and should stay flat. Do: look for stopped worker tasks with OutOfMemory and for the batch being loaded in the worker log group; report a leak, or raise the worker's task memory."
    }
    db_cpu = {
      namespace   = "AWS/RDS"
      metric_name = "CPUUtilization"
      dimensions  = local.db_dimensions
      statistic   = "Average"
      evaluations = 3
      operator    = "GreaterThanThreshold"
      threshold   = local.threshold.db_cpu_percent
      missing     = "missing"
      runbook     = "database"
      description = "The database instance ${var.db_instance_identifier} has used more than ${local.threshold.db_cpu_percent} % CPU for 15 minutes. Do: open Performance Insights for the top queries; check whether a batch load or a traffic peak is running; on burstable classes check the CPU credit balance; move to a larger instance class if it persists."
    }
    db_free_storage = {
      namespace   = "AWS/RDS"
      metric_name = "FreeStorageSpace"
      dimensions  = local.db_dimensions
      statistic   = "Minimum"
      operator    = "LessThanThreshold"
      threshold   = var.db_free_storage_threshold_bytes
      missing     = "missing"
      runbook     = "database"
      description = "The database instance ${var.db_instance_identifier} has less than ${floor(var.db_free_storage_threshold_bytes / 1073741824)} GiB of free storage; a full disk stops every write. Do: check whether storage autoscaling has reached its limit (max_allocated_storage) and raise it; look for bloat or a runaway ingest."
    }
    db_connections = {
      namespace   = "AWS/RDS"
      metric_name = "DatabaseConnections"
      dimensions  = local.db_dimensions
      statistic   = "Maximum"
      evaluations = 2
      operator    = "GreaterThanThreshold"
      threshold   = var.db_connections_threshold
      missing     = "missing"
      runbook     = "database"
      description = "The database instance ${var.db_instance_identifier} has had more than ${var.db_connections_threshold} connections for 10 minutes, close to its max_connections. Do: count API and worker tasks (each holds a pool) against the instance class; lower the pool size or the maximum task counts, or move to a larger class."
    }
    db_read_latency = {
      namespace   = "AWS/RDS"
      metric_name = "ReadLatency"
      dimensions  = local.db_dimensions
      statistic   = "Average"
      evaluations = 3
      operator    = "GreaterThanThreshold"
      threshold   = local.threshold.db_read_latency_seconds
      missing     = "missing"
      runbook     = "database"
      description = "Disk reads of the database instance ${var.db_instance_identifier} have taken more than ${local.threshold.db_read_latency_seconds * 1000} ms on average for 15 minutes. Do: check the IOPS and throughput against the gp3 baseline and the burst balance; look in Performance Insights for queries reading from disk (missing index, cache too small)."
    }
    db_write_latency = {
      namespace   = "AWS/RDS"
      metric_name = "WriteLatency"
      dimensions  = local.db_dimensions
      statistic   = "Average"
      evaluations = 3
      operator    = "GreaterThanThreshold"
      threshold   = local.threshold.db_write_latency_seconds
      missing     = "missing"
      runbook     = "database"
      description = "Disk writes of the database instance ${var.db_instance_identifier} have taken more than ${local.threshold.db_write_latency_seconds * 1000} ms on average for 15 minutes, which slows batch loads and commits. Do: check write IOPS and throughput against the gp3 baseline during batch loads; spread large batches out or provision more IOPS."
    }
    queue_oldest_message = {
      namespace   = "AWS/SQS"
      metric_name = "ApproximateAgeOfOldestMessage"
      dimensions  = { QueueName = var.queue_name }
      statistic   = "Maximum"
      operator    = "GreaterThanThreshold"
      threshold   = local.threshold.queue_oldest_message_seconds
      runbook     = "freshness"
      description = "A batch notification has waited in ${var.queue_name} for more than ${floor(local.threshold.queue_oldest_message_seconds / 60)} minutes: the workers are not keeping up, not running, or retrying a failing batch. Do: check the running task count of ${var.worker_service_name} and its scaling alarms, the worker log group for errors, and the database; raise the worker's max_capacity if it is simply busy."
    }
    dlq_messages = {
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesVisible"
      dimensions  = { QueueName = var.dlq_name }
      statistic   = "Maximum"
      operator    = "GreaterThanThreshold"
      threshold   = 0
      runbook     = "replay-dead-letters"
      description = "A batch notification reached the dead-letter queue ${var.dlq_name}: its batch failed on every attempt and was never loaded. Do: read the message (bucket, key) and the worker's error lines for that key; fix the cause (database, permissions, object); then move the messages back with aws sqs start-message-move-task --source-arn and the DLQ ARN. The alarm stays on while the DLQ holds messages."
    }
    worker_errors = {
      namespace   = local.metrics_namespace
      metric_name = local.worker_errors_name
      statistic   = "Sum"
      operator    = "GreaterThanOrEqualToThreshold"
      threshold   = local.threshold.worker_errors
      runbook     = "batches-and-the-worker"
      description = "The ingest worker logged at least ${local.threshold.worker_errors} line(s) with level ERROR in 5 minutes (failed S3 reads, database errors, messages it could not process). A rejected batch with bad rows is not an error. Do: search the worker log group ${var.worker_log_group_name} for \"level\":\"ERROR\"; transient errors are retried, repeated ones end in the dead-letter queue."
    }
  }
}

# Every single-metric alarm, with the defaults its entry leaves out.
resource "aws_cloudwatch_metric_alarm" "single" {
  for_each = {
    for k, a in merge(local.single_metric_alarms, local.app_single_metric_alarms) : k => merge(
      { dimensions = {}, statistic = null, percentile = null, period = 300, evaluations = 1, missing = "notBreaching" }, a,
    )
  }

  alarm_name        = "${var.name}-${replace(each.key, "_", "-")}"
  alarm_description = "${each.value.description} Runbook: ${local.runbook}#${each.value.runbook}"

  namespace          = each.value.namespace
  metric_name        = each.value.metric_name
  dimensions         = length(each.value.dimensions) == 0 ? null : each.value.dimensions
  statistic          = each.value.statistic
  extended_statistic = each.value.percentile
  period             = each.value.period

  evaluation_periods  = each.value.evaluations
  datapoints_to_alarm = each.value.evaluations
  comparison_operator = each.value.operator
  threshold           = each.value.threshold
  treat_missing_data  = each.value.missing

  alarm_actions = [aws_sns_topic.alarms.arn]
  ok_actions    = [aws_sns_topic.alarms.arn]
}

# Share of the requests the API answered with 5XX, over minutes with enough requests to mean
# something (a single failing request out of two is not an outage).
resource "aws_cloudwatch_metric_alarm" "target_5xx_rate" {
  alarm_name        = "${var.name}-target-5xx-rate"
  alarm_description = "More than ${local.threshold.target_5xx_percent} % of the requests answered by the API tasks were 5XX in 3 of the last 5 minutes (minutes with at least ${local.threshold.target_5xx_min_requests} requests). Do: search the API log group for status 5xx and their errors (database unavailable, timeouts, panics); check the database alarms; roll back the last deployment if the errors started with it. Runbook: ${local.runbook}#api-errors"

  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.threshold.target_5xx_percent
  treat_missing_data  = "notBreaching"

  metric_query {
    id          = "rate"
    expression  = "IF(requests >= ${local.threshold.target_5xx_min_requests}, 100 * FILL(errors, 0) / requests, 0)"
    label       = "Target 5XX (% of requests)"
    return_data = true
  }

  metric_query {
    id = "errors"

    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      dimensions  = local.tg_dimensions
      stat        = "Sum"
      period      = 60
    }
  }

  metric_query {
    id = "requests"

    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      dimensions  = local.tg_dimensions
      stat        = "Sum"
      period      = 60
    }
  }

  alarm_actions = [aws_sns_topic.alarms.arn]
  ok_actions    = [aws_sns_topic.alarms.arn]
}

locals {
  alarm_names = merge(
    { for k, a in aws_cloudwatch_metric_alarm.single : k => a.alarm_name },
    { target_5xx_rate = aws_cloudwatch_metric_alarm.target_5xx_rate.alarm_name },
    { for k, a in aws_cloudwatch_metric_alarm.app_ratio : k => a.alarm_name },
  )
}
