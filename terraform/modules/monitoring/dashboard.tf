# One dashboard per environment: API traffic and health, ECS, the ingestion queue and worker, the
# database, the application's own metrics (latency, errors, cache, pool, batches, freshness), and
# the state of every alarm of this module.

locals {
  alb = var.alb_arn_suffix
  tg  = var.target_group_arn_suffix
  ns  = var.metrics_namespace

  # Widgets are laid out on a grid 24 units wide, three per row.
  dashboard_widgets = [
    {
      title = "API requests and 5XX (per minute)"
      stat  = "Sum"
      metrics = [
        ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", local.alb, "TargetGroup", local.tg, { label = "requests" }],
        ["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "LoadBalancer", local.alb, "TargetGroup", local.tg, { label = "5XX from the tasks" }],
        ["AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", "LoadBalancer", local.alb, { label = "5XX from the load balancer" }],
      ]
    },
    {
      title = "API response time (seconds)"
      stat  = "p99"
      metrics = [
        ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", local.alb, "TargetGroup", local.tg, { stat = "p50", label = "p50" }],
        ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", local.alb, "TargetGroup", local.tg, { stat = "p99", label = "p99" }],
      ]
    },
    {
      title = "API targets"
      stat  = "Minimum"
      metrics = [
        ["AWS/ApplicationELB", "HealthyHostCount", "LoadBalancer", local.alb, "TargetGroup", local.tg, { label = "healthy" }],
        ["AWS/ApplicationELB", "UnHealthyHostCount", "LoadBalancer", local.alb, "TargetGroup", local.tg, { stat = "Maximum", label = "unhealthy" }],
      ]
    },
    {
      title = "ECS CPU (%)"
      stat  = "Average"
      metrics = [
        ["AWS/ECS", "CPUUtilization", "ClusterName", var.ecs_cluster_name, "ServiceName", var.api_service_name, { label = "API" }],
        ["AWS/ECS", "CPUUtilization", "ClusterName", var.ecs_cluster_name, "ServiceName", var.worker_service_name, { label = "worker" }],
      ]
    },
    {
      title = "ECS memory (%)"
      stat  = "Average"
      metrics = [
        ["AWS/ECS", "MemoryUtilization", "ClusterName", var.ecs_cluster_name, "ServiceName", var.api_service_name, { label = "API" }],
        ["AWS/ECS", "MemoryUtilization", "ClusterName", var.ecs_cluster_name, "ServiceName", var.worker_service_name, { label = "worker" }],
      ]
    },
    {
      title = "Running tasks"
      stat  = "Average"
      metrics = [
        ["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", var.ecs_cluster_name, "ServiceName", var.api_service_name, { label = "API" }],
        ["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", var.ecs_cluster_name, "ServiceName", var.worker_service_name, { label = "worker" }],
      ]
    },
    {
      title = "Ingestion queue (messages)"
      stat  = "Maximum"
      metrics = [
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.queue_name, { label = "waiting" }],
        ["AWS/SQS", "ApproximateNumberOfMessagesNotVisible", "QueueName", var.queue_name, { label = "in flight" }],
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.dlq_name, { label = "dead-letter queue" }],
      ]
    },
    {
      title = "Oldest batch notification (seconds)"
      stat  = "Maximum"
      metrics = [
        ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", var.queue_name, { label = "age of the oldest message" }],
      ]
    },
    {
      title = "Worker error lines"
      stat  = "Sum"
      metrics = [
        [local.metrics_namespace, local.worker_errors_name, { label = "level ERROR" }],
      ]
    },
    {
      title = "Database CPU (%) and connections"
      stat  = "Average"
      metrics = [
        ["AWS/RDS", "CPUUtilization", "DBInstanceIdentifier", var.db_instance_identifier, { label = "CPU" }],
        ["AWS/RDS", "DatabaseConnections", "DBInstanceIdentifier", var.db_instance_identifier, { stat = "Maximum", label = "connections", yAxis = "right" }],
      ]
    },
    {
      title = "Database free storage (bytes)"
      stat  = "Minimum"
      metrics = [
        ["AWS/RDS", "FreeStorageSpace", "DBInstanceIdentifier", var.db_instance_identifier, { label = "free storage" }],
      ]
    },
    {
      title = "Database disk latency (seconds)"
      stat  = "Average"
      metrics = [
        ["AWS/RDS", "ReadLatency", "DBInstanceIdentifier", var.db_instance_identifier, { label = "read" }],
        ["AWS/RDS", "WriteLatency", "DBInstanceIdentifier", var.db_instance_identifier, { label = "write" }],
      ]
    },

    # The application's own metrics (app_alarms.tf): the same signals as the local Grafana
    # dashboard (deploy/monitoring/grafana/dashboards/rates.json).
    {
      title = "GET /rates latency, measured by the API (seconds)"
      stat  = "p99"
      metrics = [
        [local.ns, "rates_http_request_duration_seconds", "Service", var.api_service_name, "Route", "/rates", { stat = "p50", label = "p50" }],
        [local.ns, "rates_http_request_duration_seconds", "Service", var.api_service_name, "Route", "/rates", { stat = "p99", label = "p99" }],
      ]
    },
    {
      title = "API 5XX, counted by the API (% of requests)"
      stat  = "Sum"
      metrics = [
        [{ expression = "100 * FILL(errors, 0) / requests", label = "5XX %", id = "ratio" }],
        [local.ns, "rates_http_requests_total", "Service", var.api_service_name, "StatusClass", "5xx", { id = "errors", visible = false }],
        [local.ns, "rates_http_requests_total", "Service", var.api_service_name, { id = "requests", visible = false }],
      ]
    },
    {
      title = "Answer cache: /rates answers without a database read (%)"
      stat  = "Sum"
      metrics = [
        [{ expression = "100 * (FILL(hits, 0) + FILL(days, 0)) / (FILL(hits, 0) + FILL(days, 0) + FILL(misses, 0))", label = "cached answer or cached days", id = "ratio" }],
        [{ expression = "100 * FILL(hits, 0) / (FILL(hits, 0) + FILL(days, 0) + FILL(misses, 0))", label = "cached answer", id = "whole" }],
        [local.ns, "rates_answer_cache_lookups_total", "Service", var.api_service_name, "Result", "hit", { id = "hits", visible = false }],
        [local.ns, "rates_answer_cache_lookups_total", "Service", var.api_service_name, "Result", "days", { id = "days", visible = false }],
        [local.ns, "rates_answer_cache_lookups_total", "Service", var.api_service_name, "Result", "miss", { id = "misses", visible = false }],
      ]
    },
    {
      title = "API connection pool: wait per acquire (ms), acquires that waited (%)"
      stat  = "Sum"
      metrics = [
        [{ expression = "1000 * FILL(wait, 0) / acquires", label = "mean wait (ms)", id = "meanwait" }],
        [{ expression = "100 * FILL(waited, 0) / acquires", label = "waited (%)", id = "saturation", yAxis = "right" }],
        [local.ns, "rates_db_pool_acquire_wait_seconds_total", "Service", var.api_service_name, { id = "wait", visible = false }],
        [local.ns, "rates_db_pool_empty_acquires_total", "Service", var.api_service_name, { id = "waited", visible = false }],
        [local.ns, "rates_db_pool_acquires_total", "Service", var.api_service_name, { id = "acquires", visible = false }],
      ]
    },
    {
      title = "Connection pools: in use and size (largest task)"
      stat  = "Maximum"
      metrics = [
        [local.ns, "rates_db_pool_connections", "Service", var.api_service_name, "State", "acquired", { label = "API in use" }],
        [local.ns, "rates_db_pool_max_connections", "Service", var.api_service_name, { label = "API pool size" }],
        [local.ns, "rates_db_pool_connections", "Service", var.worker_service_name, "State", "acquired", { label = "worker in use" }],
        [local.ns, "rates_http_requests_in_flight", "Service", var.api_service_name, { label = "API requests in flight", yAxis = "right" }],
      ]
    },
    {
      title = "Batches by result (per minute)"
      stat  = "Sum"
      metrics = [
        for r in ["loaded", "rejected", "failed", "duplicate"] :
        [local.ns, "rates_ingest_batches_total", "Service", var.worker_service_name, "Result", r, { label = r }]
      ]
    },
    {
      title = "Loaded batch duration (seconds)"
      stat  = "p99"
      metrics = [
        [local.ns, "rates_ingest_batch_duration_seconds", "Service", var.worker_service_name, "Result", "loaded", { stat = "p50", label = "worker p50" }],
        [local.ns, "rates_ingest_batch_duration_seconds", "Service", var.worker_service_name, "Result", "loaded", { stat = "Maximum", label = "worker max" }],
        [local.ns, "rates_ingest_batch_duration_seconds", "Service", var.api_service_name, "Result", "loaded", { stat = "Maximum", label = "POST /batches max" }],
      ]
    },
    {
      title = "Multi-part batches: oldest one still staging its parts (seconds)"
      stat  = "Maximum"
      metrics = [
        [local.ns, "rates_ingest_staged_batch_age_seconds", "Service", var.worker_service_name, { label = "age (alarm above ${local.threshold.staged_batch_age_seconds} s)" }],
      ]
    },
    {
      title = "Rows loaded per second"
      stat  = "Sum"
      metrics = [
        [{ expression = "FILL(wrows, 0) / PERIOD(wrows)", label = "worker", id = "wrate" }],
        [{ expression = "FILL(arows, 0) / PERIOD(arows)", label = "POST /batches", id = "arate" }],
        [local.ns, "rates_ingest_rows_total", "Service", var.worker_service_name, { id = "wrows", visible = false }],
        [local.ns, "rates_ingest_rows_total", "Service", var.api_service_name, { id = "arows", visible = false }],
      ]
    },
    {
      title = "Freshness: ingest lag p99 and oldest queued notification (seconds)"
      stat  = "p99"
      metrics = [
        [local.ns, "rates_ingest_lag_seconds", "Service", var.worker_service_name, { label = "lag, S3 batches (p99)" }],
        [local.ns, "rates_ingest_lag_seconds", "Service", var.api_service_name, { label = "lag, POST /batches (p99)" }],
        ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", var.queue_name, { stat = "Maximum", label = "oldest message in the queue" }],
      ]
    },
  ]

  dashboard_body = jsonencode({
    widgets = concat(
      [
        {
          type   = "alarm"
          x      = 0
          y      = 0
          width  = 24
          height = 4
          properties = {
            title = "Alarms"
            # Built from the names (known before apply) rather than read from the alarms.
            alarms = [for n in values(local.alarm_names) : "arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${n}"]
            sortBy = "stateUpdatedTimestamp"
          }
        },
      ],
      [
        for i, w in local.dashboard_widgets : {
          type   = "metric"
          x      = (i % 3) * 8
          y      = 4 + floor(i / 3) * 6
          width  = 8
          height = 6
          properties = {
            title   = w.title
            region  = local.region
            view    = "timeSeries"
            stacked = false
            period  = 60
            stat    = w.stat
            metrics = w.metrics
          }
        }
      ],
    )
  })
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = local.dashboard_name
  dashboard_body = local.dashboard_body
}
