# Alarms on the application's own metrics: the API and the worker publish them in embedded
# metric format into var.metrics_namespace (see internal/metrics/emf.go for the selection and the
# dimensions): every series carries Service = the ECS service's name, some also Route,
# StatusClass, Result or State. Counters arrive as increases per minute (statistic Sum),
# histograms as distributions (percentiles), gauges as values.
#
# The metric names below are the registry's names; checks/monitoring tests each of them against
# the Go registry and the EMF selection, so an alarm cannot watch a metric nobody emits.

locals {
  runbook = "docs/operations.md"

  app_api    = { Service = var.api_service_name }
  app_worker = { Service = var.worker_service_name }

  app_single_metric_alarms = {
    rates_p99 = {
      namespace   = var.metrics_namespace
      metric_name = "rates_http_request_duration_seconds"
      dimensions  = merge(local.app_api, { Route = "/rates" })
      percentile  = "p99"
      evaluations = 2
      operator    = "GreaterThanThreshold"
      threshold   = local.threshold.rates_p99_seconds
      runbook     = "api-latency"
      description = "The 99th percentile of GET /rates, measured by the API itself (its request histogram, read at the bucket's upper bound), has been above ${local.threshold.rates_p99_seconds} s for 10 minutes. Do: compare the answer-cache hit ratio and the pool wait on the dashboard (misses and waits make slow answers), then database CPU and latency; scale out if the API's CPU is high."
    }
    batch_duration = {
      namespace   = var.metrics_namespace
      metric_name = "rates_ingest_batch_duration_seconds"
      dimensions  = merge(local.app_worker, { Result = "loaded" })
      statistic   = "Maximum"
      operator    = "GreaterThanThreshold"
      threshold   = local.threshold.batch_duration_seconds
      runbook     = "batches-and-the-worker"
      description = "A batch loaded by the worker took more than ${local.threshold.batch_duration_seconds} s (download, parse, COPY, checks and insert). Do: find the batch in the worker log group (its timings split the stages); parse-bound means worker CPU, COPY and insert mean database write latency or CPU; split very large batches."
    }
    rejected_batches = {
      namespace   = var.metrics_namespace
      metric_name = "rates_ingest_batches_total"
      dimensions  = merge(local.app_worker, { Result = "rejected" })
      statistic   = "Sum"
      operator    = "GreaterThanThreshold"
      threshold   = 0
      runbook     = "batches-and-the-worker"
      description = "The worker rejected at least one batch uploaded to S3 in the last 5 minutes: bad rows (unknown port, bad date or price); nothing of it was loaded. Do: read reports/<key>.json in the ingest bucket, tell the producer, and upload a corrected file under a new key."
    }
    staged_batch_age = {
      namespace   = var.metrics_namespace
      metric_name = "rates_ingest_staged_batch_age_seconds"
      dimensions  = local.app_worker
      statistic   = "Maximum"
      operator    = "GreaterThanThreshold"
      threshold   = local.threshold.staged_batch_age_seconds
      runbook     = "batches-and-the-worker"
      description = "A multi-part batch has been staging its parts for more than ${local.threshold.staged_batch_age_seconds} s, half the batch deadline (INGEST_MAX_BATCH_DURATION, ${var.batch_deadline_seconds} s), after which the workers fail it: parts wait for a worker, fail, or never arrive. Do: compare the queue's depth and oldest message with the worker's running tasks (at max_capacity?); search the worker log group for the batch's parts and their errors; look for dead-lettered parts."
    }
  }

  # Ratios and maxima: metric math over several series. Each metric query names its series by
  # metric name, dimensions and statistic; the expression is the alarm's value.
  app_ratio_alarms = {
    api_5xx_ratio = {
      expression = "IF(requests >= ${local.threshold.target_5xx_min_requests * 5}, 100 * FILL(errors, 0) / requests, 0)"
      label      = "API 5XX (% of requests, from the API's counters)"
      metrics = {
        errors   = { name = "rates_http_requests_total", dimensions = merge(local.app_api, { StatusClass = "5xx" }), stat = "Sum" }
        requests = { name = "rates_http_requests_total", dimensions = local.app_api, stat = "Sum" }
      }
      operator    = "GreaterThanThreshold"
      threshold   = local.threshold.target_5xx_percent
      evaluations = 3
      datapoints  = 2
      runbook     = "api-errors"
      description = "More than ${local.threshold.target_5xx_percent} % of the requests the API counted itself were answered 5XX in 2 of the last 3 5-minute periods (periods with at least ${local.threshold.target_5xx_min_requests * 5} requests). Unlike target-5xx-rate it includes POST /batches and requests the load balancer never saw. Do: search the API log group for status 5xx (every error is logged); 503 means the database was unavailable, 500 a bug; roll back if it started with a deployment."
    }
    cache_hit_ratio = {
      # hit: the answer was cached; days: built from cached days; miss: read from PostgreSQL.
      expression = "IF(FILL(hits, 0) + FILL(days, 0) + FILL(misses, 0) >= ${local.threshold.cache_min_lookups}, 100 * (FILL(hits, 0) + FILL(days, 0)) / (FILL(hits, 0) + FILL(days, 0) + FILL(misses, 0)), 100)"
      label      = "Answers without a database read (% of /rates answers)"
      metrics = {
        hits   = { name = "rates_answer_cache_lookups_total", dimensions = merge(local.app_api, { Result = "hit" }), stat = "Sum" }
        days   = { name = "rates_answer_cache_lookups_total", dimensions = merge(local.app_api, { Result = "days" }), stat = "Sum" }
        misses = { name = "rates_answer_cache_lookups_total", dimensions = merge(local.app_api, { Result = "miss" }), stat = "Sum" }
      }
      operator    = "LessThanThreshold"
      threshold   = local.threshold.cache_hit_percent
      evaluations = 6
      datapoints  = 6
      runbook     = "answer-cache"
      description = "Fewer than ${local.threshold.cache_hit_percent} % of the /rates answers came from the answer cache (a cached answer or cached days) for 30 minutes (periods with at least ${local.threshold.cache_min_lookups} answers): every miss is a database query. Do: check whether batches commit every few minutes (each one starts a new data generation and empties the cache) and whether traffic changed to one-off queries; raise CACHE_MAX_BYTES if memory allows."
    }
    db_pool_wait = {
      expression = "IF(acquires >= ${local.threshold.db_pool_min_acquires}, 1000 * FILL(wait, 0) / acquires, 0)"
      label      = "API pool: mean wait per acquire (ms)"
      metrics = {
        wait     = { name = "rates_db_pool_acquire_wait_seconds_total", dimensions = local.app_api, stat = "Sum" }
        acquires = { name = "rates_db_pool_acquires_total", dimensions = local.app_api, stat = "Sum" }
      }
      operator    = "GreaterThanThreshold"
      threshold   = local.threshold.db_pool_wait_ms
      evaluations = 3
      datapoints  = 3
      runbook     = "database-connection-pool"
      description = "The API's requests have waited more than ${local.threshold.db_pool_wait_ms} ms on average for a database connection for 15 minutes (periods with at least ${local.threshold.db_pool_min_acquires} acquires): the pool is the bottleneck. Do: compare with database CPU and latency (slow queries hold connections longer); if the database has room, raise DB_MAX_CONNS or the task count within the instance's max_connections."
    }
    db_pool_saturation = {
      expression = "IF(acquires >= ${local.threshold.db_pool_min_acquires}, 100 * FILL(waited, 0) / acquires, 0)"
      label      = "API pool: acquires that found no idle connection (%)"
      metrics = {
        waited   = { name = "rates_db_pool_empty_acquires_total", dimensions = local.app_api, stat = "Sum" }
        acquires = { name = "rates_db_pool_acquires_total", dimensions = local.app_api, stat = "Sum" }
      }
      operator    = "GreaterThanThreshold"
      threshold   = local.threshold.db_pool_saturation_percent
      evaluations = 3
      datapoints  = 3
      runbook     = "database-connection-pool"
      description = "More than ${local.threshold.db_pool_saturation_percent} % of the API's connection acquires found every connection busy for 15 minutes: the pool is saturated. Do: read the pool widgets (connections in use against the maximum, wait per acquire); then as for db-pool-wait."
    }
    ingest_lag = {
      expression = "MAX([FILL(worker, 0), FILL(api, 0)])"
      label      = "Ingest lag, p99 (seconds from S3 event or upload to commit)"
      metrics = {
        worker = { name = "rates_ingest_lag_seconds", dimensions = local.app_worker, stat = "p99" }
        api    = { name = "rates_ingest_lag_seconds", dimensions = local.app_api, stat = "p99" }
      }
      operator    = "GreaterThanThreshold"
      threshold   = var.ingest_lag_objective_seconds
      evaluations = 1
      datapoints  = 1
      runbook     = "freshness"
      description = "Prices committed in the last 5 minutes reached the database more than ${var.ingest_lag_objective_seconds} s (p99) after their S3 event or upload, above this environment's freshness objective. While nothing commits this alarm sees nothing: queue-oldest-message covers that. Do: compare the queue's oldest-message age (waiting) with the batch duration (loading) to find which part grew; then as for those alarms."
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "app_ratio" {
  for_each = local.app_ratio_alarms

  alarm_name        = "${var.name}-${replace(each.key, "_", "-")}"
  alarm_description = "${each.value.description} Runbook: ${local.runbook}#${each.value.runbook}"

  evaluation_periods  = each.value.evaluations
  datapoints_to_alarm = each.value.datapoints
  comparison_operator = each.value.operator
  threshold           = each.value.threshold
  # No data: no traffic, no lookups, no batch, so nothing to judge.
  treat_missing_data = "notBreaching"

  metric_query {
    id          = "value"
    expression  = each.value.expression
    label       = each.value.label
    return_data = true
  }

  dynamic "metric_query" {
    for_each = each.value.metrics

    content {
      id = metric_query.key

      metric {
        namespace   = var.metrics_namespace
        metric_name = metric_query.value.name
        dimensions  = metric_query.value.dimensions
        stat        = metric_query.value.stat
        period      = 300
      }
    }
  }

  alarm_actions = [aws_sns_topic.alarms.arn]
  ok_actions    = [aws_sns_topic.alarms.arn]
}
