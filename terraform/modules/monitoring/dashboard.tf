# One dashboard per environment: API traffic and health, ECS, the ingestion queue and worker, the
# database, and the state of every alarm of this module.

locals {
  alb = var.alb_arn_suffix
  tg  = var.target_group_arn_suffix

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
