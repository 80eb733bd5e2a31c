# Plan-level tests of the monitoring module with a mocked AWS provider.

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
  target          = aws_sns_topic.alarms
  override_during = plan
  values = {
    arn = "arn:aws:sns:eu-central-1:123456789012:rates-test-alarms"
  }
}

override_resource {
  target          = aws_kms_key.alarms
  override_during = plan
  values = {
    arn = "arn:aws:kms:eu-central-1:123456789012:key/22222222-2222-2222-2222-222222222222"
  }
}

variables {
  name                    = "rates-test"
  alb_arn_suffix          = "app/rates-test/0123456789abcdef"
  target_group_arn_suffix = "targetgroup/rates-test-api/0123456789abcdef"
  ecs_cluster_name        = "rates-test"
  api_service_name        = "rates-test-api"
  worker_service_name     = "rates-test-worker"
  worker_log_group_name   = "/ecs/rates-test-worker"
  db_instance_identifier  = "rates-test"
  queue_name              = "rates-test-ingest"
  dlq_name                = "rates-test-ingest-dlq"
  metrics_namespace       = "rates-test"
  batch_deadline_seconds  = 600
}

run "topic_is_encrypted_and_cloudwatch_may_use_it" {
  command = plan

  assert {
    condition     = aws_sns_topic.alarms.name == "rates-test-alarms" && aws_sns_topic.alarms.kms_master_key_id == "arn:aws:kms:eu-central-1:123456789012:key/22222222-2222-2222-2222-222222222222"
    error_message = "The topic must be encrypted with the module's customer-managed key."
  }

  assert {
    condition     = aws_kms_key.alarms.enable_key_rotation
    error_message = "The topic's key must rotate."
  }

  assert {
    condition = [
      for s in jsondecode(aws_kms_key.alarms.policy).Statement : [s.Action, s.Condition]
      if try(s.Principal.Service, "") == "cloudwatch.amazonaws.com"
      ] == [[
        ["kms:Decrypt", "kms:GenerateDataKey*"],
        {
          StringEquals = { "aws:SourceAccount" = "123456789012" }
          ArnLike      = { "aws:SourceArn" = "arn:aws:cloudwatch:eu-central-1:123456789012:alarm:rates-test-*" }
        },
    ]]
    error_message = "CloudWatch may use the key for this environment's alarms only."
  }

  assert {
    condition = [
      for s in jsondecode(aws_sns_topic_policy.alarms.policy).Statement : s.Condition.ArnLike["aws:SourceArn"]
      if try(s.Principal.Service, "") == "cloudwatch.amazonaws.com"
    ] == ["arn:aws:cloudwatch:eu-central-1:123456789012:alarm:rates-test-*"]
    error_message = "CloudWatch may publish for this environment's alarms only."
  }

  assert {
    condition     = length(aws_sns_topic_subscription.email) == 0
    error_message = "Without alarm_email there is no subscription."
  }
}

run "email_subscription_is_optional" {
  command = plan

  variables {
    alarm_email = "oncall@example.com"
  }

  assert {
    condition = (
      length(aws_sns_topic_subscription.email) == 1 &&
      aws_sns_topic_subscription.email[0].protocol == "email" &&
      aws_sns_topic_subscription.email[0].endpoint == "oncall@example.com" &&
      aws_sns_topic_subscription.email[0].topic_arn == "arn:aws:sns:eu-central-1:123456789012:rates-test-alarms"
    )
    error_message = "alarm_email must be subscribed to the topic."
  }
}

run "every_alarm_notifies_and_explains_what_to_do" {
  command = plan

  assert {
    condition = toset(keys(local.alarm_names)) == toset([
      "alb_5xx", "target_5xx_rate", "response_time_p99", "unhealthy_hosts", "healthy_hosts",
      "api_cpu", "api_memory", "worker_cpu", "worker_memory",
      "db_cpu", "db_free_storage", "db_connections", "db_read_latency", "db_write_latency",
      "queue_oldest_message", "dlq_messages", "worker_errors",
      "rates_p99", "batch_duration", "rejected_batches", "staged_batch_age",
      "api_5xx_ratio", "cache_hit_ratio", "db_pool_wait", "db_pool_saturation", "ingest_lag",
    ])
    error_message = "The module must define exactly the expected alarms."
  }

  assert {
    condition     = local.alarm_names["target_5xx_rate"] == "rates-test-target-5xx-rate" && local.alarm_names["db_free_storage"] == "rates-test-db-free-storage"
    error_message = "Alarms are named <name>-<key with hyphens>."
  }

  assert {
    condition = alltrue(concat(
      [for a in aws_cloudwatch_metric_alarm.single : a.alarm_actions == toset(["arn:aws:sns:eu-central-1:123456789012:rates-test-alarms"]) && a.ok_actions == toset(["arn:aws:sns:eu-central-1:123456789012:rates-test-alarms"])],
      [aws_cloudwatch_metric_alarm.target_5xx_rate.alarm_actions == toset(["arn:aws:sns:eu-central-1:123456789012:rates-test-alarms"]) && aws_cloudwatch_metric_alarm.target_5xx_rate.ok_actions == toset(["arn:aws:sns:eu-central-1:123456789012:rates-test-alarms"])],
      [for a in aws_cloudwatch_metric_alarm.app_ratio : a.alarm_actions == toset(["arn:aws:sns:eu-central-1:123456789012:rates-test-alarms"]) && a.ok_actions == toset(["arn:aws:sns:eu-central-1:123456789012:rates-test-alarms"])],
    ))
    error_message = "Every alarm must notify the topic when it fires and when it recovers."
  }

  assert {
    condition = alltrue([
      for d in concat(
        [for a in aws_cloudwatch_metric_alarm.single : a.alarm_description],
        [aws_cloudwatch_metric_alarm.target_5xx_rate.alarm_description],
        [for a in aws_cloudwatch_metric_alarm.app_ratio : a.alarm_description],
      ) :
      length(d) >= 80 && length(d) <= 1024 && strcontains(d, " Do: ") && can(regex(" Runbook: docs/operations[.]md#[a-z0-9-]+$", d))
    ])
    error_message = "Every description must say what the alarm means, after \"Do:\" what to do, and end with its runbook section (at most 1024 characters)."
  }
}

run "alarms_watch_the_right_metrics" {
  command = plan

  variables {
    db_connections_threshold        = 150
    db_free_storage_threshold_bytes = 10737418240
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.single["response_time_p99"].metric_name == "TargetResponseTime" &&
      aws_cloudwatch_metric_alarm.single["response_time_p99"].extended_statistic == "p99" &&
      aws_cloudwatch_metric_alarm.single["response_time_p99"].statistic == null &&
      aws_cloudwatch_metric_alarm.single["response_time_p99"].threshold == 1
    )
    error_message = "The response time alarm must watch the 99th percentile."
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.single["unhealthy_hosts"].dimensions == tomap({ LoadBalancer = "app/rates-test/0123456789abcdef", TargetGroup = "targetgroup/rates-test-api/0123456789abcdef" }) &&
      aws_cloudwatch_metric_alarm.single["healthy_hosts"].comparison_operator == "LessThanThreshold" &&
      aws_cloudwatch_metric_alarm.single["healthy_hosts"].treat_missing_data == "breaching"
    )
    error_message = "Target health is watched per target group; no healthy target (or no data) fires."
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.single["api_cpu"].namespace == "AWS/ECS" &&
      aws_cloudwatch_metric_alarm.single["api_cpu"].dimensions == tomap({ ClusterName = "rates-test", ServiceName = "rates-test-api" }) &&
      aws_cloudwatch_metric_alarm.single["worker_memory"].metric_name == "MemoryUtilization" &&
      aws_cloudwatch_metric_alarm.single["worker_memory"].dimensions == tomap({ ClusterName = "rates-test", ServiceName = "rates-test-worker" })
    )
    error_message = "CPU and memory are watched per ECS service, API and worker."
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.single["db_connections"].threshold == 150 &&
      aws_cloudwatch_metric_alarm.single["db_free_storage"].threshold == 10737418240 &&
      aws_cloudwatch_metric_alarm.single["db_free_storage"].comparison_operator == "LessThanThreshold" &&
      aws_cloudwatch_metric_alarm.single["db_cpu"].dimensions == tomap({ DBInstanceIdentifier = "rates-test" })
    )
    error_message = "The database thresholds must follow the variables."
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.single["dlq_messages"].metric_name == "ApproximateNumberOfMessagesVisible" &&
      aws_cloudwatch_metric_alarm.single["dlq_messages"].dimensions == tomap({ QueueName = "rates-test-ingest-dlq" }) &&
      aws_cloudwatch_metric_alarm.single["dlq_messages"].comparison_operator == "GreaterThanThreshold" &&
      aws_cloudwatch_metric_alarm.single["dlq_messages"].threshold == 0 &&
      aws_cloudwatch_metric_alarm.single["queue_oldest_message"].metric_name == "ApproximateAgeOfOldestMessage" &&
      aws_cloudwatch_metric_alarm.single["queue_oldest_message"].dimensions == tomap({ QueueName = "rates-test-ingest" })
    )
    error_message = "Any message in the DLQ fires; the queue is watched for old messages."
  }

  assert {
    condition = [
      for q in aws_cloudwatch_metric_alarm.target_5xx_rate.metric_query : q.expression if q.return_data == true
    ] == ["IF(requests >= 20, 100 * FILL(errors, 0) / requests, 0)"]
    error_message = "The target 5XX rate is 5XX over RequestCount, judged from 20 requests a minute."
  }

  assert {
    condition = toset([
      for q in aws_cloudwatch_metric_alarm.target_5xx_rate.metric_query : one(q.metric).metric_name if length(q.metric) > 0
    ]) == toset(["HTTPCode_Target_5XX_Count", "RequestCount"])
    error_message = "The rate must be computed from the target 5XX count and the request count."
  }
}

run "treat_missing_data_is_chosen_per_alarm" {
  command = plan

  assert {
    condition = {
      for k, a in aws_cloudwatch_metric_alarm.single : k => a.treat_missing_data
      } == {
      alb_5xx              = "notBreaching"
      response_time_p99    = "notBreaching"
      unhealthy_hosts      = "notBreaching"
      healthy_hosts        = "breaching"
      api_cpu              = "notBreaching"
      api_memory           = "notBreaching"
      worker_cpu           = "notBreaching"
      worker_memory        = "notBreaching"
      db_cpu               = "missing"
      db_free_storage      = "missing"
      db_connections       = "missing"
      db_read_latency      = "missing"
      db_write_latency     = "missing"
      queue_oldest_message = "notBreaching"
      dlq_messages         = "notBreaching"
      worker_errors        = "notBreaching"
      rates_p99            = "notBreaching"
      batch_duration       = "notBreaching"
      rejected_batches     = "notBreaching"
      staged_batch_age     = "notBreaching"
    }
    error_message = "Missing data must be treated as documented for each alarm."
  }
}

run "worker_error_lines_become_a_metric" {
  command = plan

  assert {
    condition = (
      aws_cloudwatch_log_metric_filter.worker_errors.log_group_name == "/ecs/rates-test-worker" &&
      strcontains(aws_cloudwatch_log_metric_filter.worker_errors.pattern, "$.level = \"ERROR\"")
    )
    error_message = "The filter must count JSON lines of the worker with level ERROR."
  }

  assert {
    condition = (
      one(aws_cloudwatch_log_metric_filter.worker_errors.metric_transformation).namespace == aws_cloudwatch_metric_alarm.single["worker_errors"].namespace &&
      one(aws_cloudwatch_log_metric_filter.worker_errors.metric_transformation).name == aws_cloudwatch_metric_alarm.single["worker_errors"].metric_name &&
      aws_cloudwatch_metric_alarm.single["worker_errors"].dimensions == null
    )
    error_message = "The worker errors alarm must watch the filter's metric."
  }
}

run "dashboard_covers_every_part" {
  command = plan

  assert {
    condition     = aws_cloudwatch_dashboard.this.dashboard_name == "rates-test"
    error_message = "The dashboard is named after the environment."
  }

  assert {
    condition = length(jsondecode(aws_cloudwatch_dashboard.this.dashboard_body).widgets[0].properties.alarms) == 26 && alltrue([
      for a in jsondecode(aws_cloudwatch_dashboard.this.dashboard_body).widgets[0].properties.alarms : startswith(a, "arn:aws:cloudwatch:eu-central-1:123456789012:alarm:rates-test-")
    ])
    error_message = "The alarm widget must show every alarm."
  }

  assert {
    condition = toset(flatten([
      for w in jsondecode(aws_cloudwatch_dashboard.this.dashboard_body).widgets : [for m in w.properties.metrics : m[0] if can(tostring(m[0]))] if w.type == "metric"
    ])) == toset(["AWS/ApplicationELB", "AWS/ECS", "ECS/ContainerInsights", "AWS/SQS", "rates-test", "AWS/RDS"])
    error_message = "The dashboard must show the load balancer, ECS, the queues, the worker errors and the database."
  }
}

run "application_alarms_watch_the_published_series" {
  command = plan

  variables {
    metrics_namespace            = "rates-test-app"
    ingest_lag_objective_seconds = 600
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.single["rates_p99"].namespace == "rates-test-app" &&
      aws_cloudwatch_metric_alarm.single["rates_p99"].metric_name == "rates_http_request_duration_seconds" &&
      aws_cloudwatch_metric_alarm.single["rates_p99"].dimensions == tomap({ Service = "rates-test-api", Route = "/rates" }) &&
      aws_cloudwatch_metric_alarm.single["rates_p99"].extended_statistic == "p99" &&
      aws_cloudwatch_metric_alarm.single["rates_p99"].threshold == 0.25
    )
    error_message = "The /rates p99 alarm reads the API's own histogram (Service and Route dimensions of the EMF lines)."
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.single["rejected_batches"].dimensions == tomap({ Service = "rates-test-worker", Result = "rejected" }) &&
      aws_cloudwatch_metric_alarm.single["rejected_batches"].statistic == "Sum" &&
      aws_cloudwatch_metric_alarm.single["batch_duration"].dimensions == tomap({ Service = "rates-test-worker", Result = "loaded" })
    )
    error_message = "Batch alarms read the worker's series by result."
  }

  assert {
    condition = alltrue(flatten([
      for a in aws_cloudwatch_metric_alarm.app_ratio : [
        for q in a.metric_query : one(q.metric).namespace == "rates-test-app" && one(q.metric).period == 300 if length(q.metric) > 0
      ]
    ]))
    error_message = "Every ratio reads the application's namespace over 5-minute periods."
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.app_ratio["ingest_lag"].threshold == 600 &&
      toset([for q in aws_cloudwatch_metric_alarm.app_ratio["ingest_lag"].metric_query : one(q.metric).dimensions.Service if length(q.metric) > 0]) == toset(["rates-test-worker", "rates-test-api"]) &&
      alltrue([for q in aws_cloudwatch_metric_alarm.app_ratio["ingest_lag"].metric_query : one(q.metric).metric_name == "rates_ingest_lag_seconds" && one(q.metric).stat == "p99" if length(q.metric) > 0])
    )
    error_message = "The lag alarm compares the p99 lag of both entry points with the environment's objective."
  }

  assert {
    condition = (
      [for q in aws_cloudwatch_metric_alarm.app_ratio["api_5xx_ratio"].metric_query : q.expression if q.return_data == true] == ["IF(requests >= 100, 100 * FILL(errors, 0) / requests, 0)"] &&
      aws_cloudwatch_metric_alarm.app_ratio["cache_hit_ratio"].comparison_operator == "LessThanThreshold" &&
      aws_cloudwatch_metric_alarm.app_ratio["db_pool_saturation"].threshold == 10
    )
    error_message = "Ratios are judged above their minimum volume, with the documented directions and thresholds."
  }

  assert {
    condition = alltrue([
      for a in aws_cloudwatch_metric_alarm.app_ratio : a.treat_missing_data == "notBreaching" && length([for q in a.metric_query : q if q.return_data == true]) == 1
    ])
    error_message = "No traffic or no batch means nothing to judge; each alarm returns one expression."
  }

  assert {
    condition = contains(flatten([
      for w in jsondecode(aws_cloudwatch_dashboard.this.dashboard_body).widgets : [for m in w.properties.metrics : m[0] if can(tostring(m[0]))] if w.type == "metric"
    ]), "rates-test-app")
    error_message = "The dashboard shows the application's metrics."
  }
}

# The batch deadline (INGEST_MAX_BATCH_DURATION) sets three alarms: a multi-part batch still
# staging its parts past it, a loaded batch that took half of it, and a notification waiting
# longer than twice the queue's visibility timeout (the deadline plus 5 minutes).
run "batch_alarms_follow_the_deadline" {
  command = plan

  variables {
    batch_deadline_seconds = 1800
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.single["staged_batch_age"].alarm_name == "rates-test-staged-batch-age" &&
      aws_cloudwatch_metric_alarm.single["staged_batch_age"].namespace == "rates-test" &&
      aws_cloudwatch_metric_alarm.single["staged_batch_age"].metric_name == "rates_ingest_staged_batch_age_seconds" &&
      aws_cloudwatch_metric_alarm.single["staged_batch_age"].dimensions == tomap({ Service = "rates-test-worker" }) &&
      aws_cloudwatch_metric_alarm.single["staged_batch_age"].statistic == "Maximum" &&
      aws_cloudwatch_metric_alarm.single["staged_batch_age"].comparison_operator == "GreaterThanThreshold" &&
      aws_cloudwatch_metric_alarm.single["staged_batch_age"].threshold == 900
    )
    error_message = "The staged-batch-age alarm fires when the worker's oldest staging batch is older than the batch deadline."
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.single["batch_duration"].threshold == 900 &&
      aws_cloudwatch_metric_alarm.single["queue_oldest_message"].threshold == 4200
    )
    error_message = "A loaded batch fires at half the deadline, a waiting notification at twice the visibility timeout."
  }

  assert {
    condition = anytrue(flatten([
      for w in jsondecode(aws_cloudwatch_dashboard.this.dashboard_body).widgets : [
        for m in w.properties.metrics : try(m[0] == "rates-test" && m[1] == "rates_ingest_staged_batch_age_seconds" && m[2] == "Service" && m[3] == "rates-test-worker", false)
      ] if w.type == "metric"
    ]))
    error_message = "The dashboard shows the worker's oldest staging batch."
  }
}

run "rejects_an_invalid_email" {
  command = plan

  variables {
    alarm_email = "not-an-address"
  }

  expect_failures = [var.alarm_email]
}
