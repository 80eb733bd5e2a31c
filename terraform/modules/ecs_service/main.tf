# One ECS service on Fargate, for the API and for the ingest worker alike: its tasks' security
# group, the service with rolling deployments and a circuit breaker, and its autoscaling. Behind a
# load balancer (load_balancer set: the API) it tracks CPU and requests per target; on a queue
# (queue_name set: the worker) it scales in steps on the queue's depth. The task definition comes
# from modules/ecs_task.

locals {
  behind_load_balancer = var.load_balancer != null
  on_queue             = var.queue_name != null

  # Target tracking behind the load balancer.
  cpu_target_percent  = 60
  requests_per_target = 1000 # per task and minute (ALBRequestCountPerTarget)
  api_scale_in_after  = 300
  api_scale_out_after = 60
  # ECS ignores failing health checks of a new task this long.
  health_check_grace_period_seconds = 120

  # Steps on the queue: time for new tasks to start polling between two scale-outs, and how long
  # the queue must be idle before the service goes back to min_capacity.
  queue_scale_out_after = 120
  queue_scale_in_after  = 60
  queue_idle_minutes    = 15
}

################################################################################
# Security group of the tasks
################################################################################

# Name prefix and description of existing groups are kept: AWS cannot change either in place.
resource "aws_security_group" "this" {
  name_prefix = local.behind_load_balancer ? "${var.name}-service-" : "${var.name}-"
  description = "Tasks of ${var.service_name}: ${local.behind_load_balancer ? "application port from the load balancer only" : "no inbound traffic except metrics from the VPC"}"
  vpc_id      = var.vpc_id

  tags = { Name = local.behind_load_balancer ? "${var.name}-service" : var.name }

  lifecycle {
    create_before_destroy = true
  }
}

# The only inbound rule there is: nothing in AWS scrapes the metrics port (the tasks publish their
# metrics on their log output), and a service without a load balancer admits nothing.
resource "aws_vpc_security_group_ingress_rule" "http_from_alb" {
  count = local.behind_load_balancer ? 1 : 0

  security_group_id            = aws_security_group.this.id
  description                  = "Application port from the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = var.load_balancer.container_port
  to_port                      = var.load_balancer.container_port
  referenced_security_group_id = var.load_balancer.security_group_id
}

resource "aws_vpc_security_group_egress_rule" "database" {
  security_group_id            = aws_security_group.this.id
  description                  = "PostgreSQL"
  ip_protocol                  = "tcp"
  from_port                    = var.db_port
  to_port                      = var.db_port
  referenced_security_group_id = var.database_security_group_id
}

#trivy:ignore:AVD-AWS-0104 Without VPC endpoints (dev, staging) the tasks reach ECR, SSM, SQS, CloudWatch Logs and S3 over HTTPS through the NAT gateway; these AWS endpoints have no fixed addresses. With endpoints (prod) the rule names the VPC only.
resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.this.id
  description       = "HTTPS to AWS APIs (ECR, SSM, SQS, CloudWatch Logs, S3)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = var.https_egress.cidr_block
}

resource "aws_vpc_security_group_egress_rule" "https_prefix_list" {
  count = length(var.https_egress.prefix_list_ids)

  security_group_id = aws_security_group.this.id
  description       = "HTTPS to S3 through its gateway endpoint"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = var.https_egress.prefix_list_ids[count.index]
}

################################################################################
# Service
################################################################################

resource "aws_ecs_service" "this" {
  name             = var.service_name
  cluster          = var.cluster_arn
  task_definition  = var.task_definition_arn
  desired_count    = var.desired_count
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  # New tasks start before old ones stop. A stopped worker finishes or rolls back its batch within
  # its stop timeout, and the message comes back for the next one.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = local.behind_load_balancer ? local.health_check_grace_period_seconds : null
  # Rebalancing would stop busy workers only to move them to another zone.
  availability_zone_rebalancing = local.on_queue ? "DISABLED" : "ENABLED"

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
    security_groups  = [aws_security_group.this.id]
    assign_public_ip = false
  }

  dynamic "load_balancer" {
    for_each = local.behind_load_balancer ? [var.load_balancer] : []

    content {
      target_group_arn = load_balancer.value.target_group_arn
      container_name   = load_balancer.value.container_name
      container_port   = load_balancer.value.container_port
    }
  }

  tags = { Name = var.service_name }

  lifecycle {
    # task_definition: the deploy workflow owns the running revision (see README).
    # desired_count: autoscaling owns the number of tasks once the service exists.
    ignore_changes = [task_definition, desired_count]
  }
}

################################################################################
# Autoscaling
################################################################################

resource "aws_appautoscaling_target" "this" {
  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = "service/${var.cluster_name}/${aws_ecs_service.this.name}"
  min_capacity       = var.min_capacity
  max_capacity       = var.max_capacity
}

resource "aws_appautoscaling_policy" "cpu" {
  count = local.behind_load_balancer ? 1 : 0

  name               = "${var.name}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this.service_namespace
  scalable_dimension = aws_appautoscaling_target.this.scalable_dimension
  resource_id        = aws_appautoscaling_target.this.resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = local.cpu_target_percent
    scale_in_cooldown  = local.api_scale_in_after
    scale_out_cooldown = local.api_scale_out_after

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "requests" {
  count = local.behind_load_balancer ? 1 : 0

  name               = "${var.name}-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this.service_namespace
  scalable_dimension = aws_appautoscaling_target.this.scalable_dimension
  resource_id        = aws_appautoscaling_target.this.resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = local.requests_per_target
    scale_in_cooldown  = local.api_scale_in_after
    scale_out_cooldown = local.api_scale_out_after

    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = var.load_balancer.resource_label
    }
  }
}

# On a queue: step scaling rather than target tracking. It scales from zero tasks (a backlog per
# task divides by zero there), it only adds tasks while messages wait (batches, and the parts a
# worker fans a multi-part batch out into), and it removes tasks only once the queue has been
# completely idle (nothing waiting or in flight), so a scale-in never interrupts a batch.
resource "aws_appautoscaling_policy" "scale_out" {
  count = local.on_queue ? 1 : 0

  name               = "${var.name}-scale-out"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.this.service_namespace
  scalable_dimension = aws_appautoscaling_target.this.scalable_dimension
  resource_id        = aws_appautoscaling_target.this.resource_id

  # Steps relative to the alarm threshold of 1 visible message: 1-4 waiting -> +1 task,
  # 5-19 -> +2, 20 or more -> +4. While messages keep waiting, the alarm repeats the step after
  # each cooldown, up to max_capacity.
  step_scaling_policy_configuration {
    adjustment_type         = "ChangeInCapacity"
    cooldown                = local.queue_scale_out_after
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
  count = local.on_queue ? 1 : 0

  name               = "${var.name}-scale-in"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.this.service_namespace
  scalable_dimension = aws_appautoscaling_target.this.scalable_dimension
  resource_id        = aws_appautoscaling_target.this.resource_id

  # Back to min_capacity once the queue has been idle.
  step_scaling_policy_configuration {
    adjustment_type         = "ExactCapacity"
    cooldown                = local.queue_scale_in_after
    metric_aggregation_type = "Maximum"

    step_adjustment {
      metric_interval_upper_bound = "0"
      scaling_adjustment          = var.min_capacity
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "backlog" {
  count = local.on_queue ? 1 : 0

  alarm_name        = "${var.name}-backlog"
  alarm_description = "Scaling signal of ${var.service_name} (no notification): batches are waiting in ${var.queue_name}, so the service adds tasks up to its maximum."

  namespace   = "AWS/SQS"
  metric_name = "ApproximateNumberOfMessagesVisible"
  dimensions  = { QueueName = var.queue_name }
  statistic   = "Maximum"
  period      = 60

  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  # SQS stops publishing for a queue idle for hours: no data means nothing is waiting.
  treat_missing_data = "notBreaching"

  alarm_actions = [aws_appautoscaling_policy.scale_out[0].arn]
}

resource "aws_cloudwatch_metric_alarm" "idle" {
  count = local.on_queue ? 1 : 0

  alarm_name        = "${var.name}-idle"
  alarm_description = "Scaling signal of ${var.service_name} (no notification): ${var.queue_name} has had no message waiting or in flight for ${local.queue_idle_minutes} minutes, so the service goes back to its minimum."

  evaluation_periods  = local.queue_idle_minutes
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  # Without data nothing is known to be idle: keep the tasks.
  treat_missing_data = "notBreaching"

  metric_query {
    id          = "messages"
    expression  = "visible + in_flight"
    label       = "Messages waiting or in flight"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = { visible = "ApproximateNumberOfMessagesVisible", in_flight = "ApproximateNumberOfMessagesNotVisible" }

    content {
      id = metric_query.key

      metric {
        namespace   = "AWS/SQS"
        metric_name = metric_query.value
        dimensions  = { QueueName = var.queue_name }
        stat        = "Maximum"
        period      = 60
      }
    }
  }

  alarm_actions = [aws_appautoscaling_policy.scale_in[0].arn]
}

# Earlier layouts: the API's policies had no count, and the worker's resources lived in
# modules/ingest (stack/moved.tf moves them here).
moved {
  from = aws_appautoscaling_policy.cpu
  to   = aws_appautoscaling_policy.cpu[0]
}

moved {
  from = aws_appautoscaling_policy.requests
  to   = aws_appautoscaling_policy.requests[0]
}

moved {
  from = aws_vpc_security_group_ingress_rule.http_from_alb
  to   = aws_vpc_security_group_ingress_rule.http_from_alb[0]
}
