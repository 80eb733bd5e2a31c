# ECS on Fargate: cluster, the API's task (modules/ecs_task: task definition, log group, IAM
# roles), service in the private subnets behind the load balancer, and target-tracking autoscaling.

data "aws_region" "current" {}

locals {
  region = data.aws_region.current.name

  # The environment contract of the binary. Values Terraform cannot know stay unset so that the
  # binary's defaults apply. The API never migrates (MIGRATE_ON_START unset: it checks the schema)
  # nor seeds (SEED_FILE unset): the deploy runs both as one-off tasks before it. modules/ecs_task
  # adds DB_SSLMODE=verify-full and the CA bundle.
  app_environment = merge(
    {
      HTTP_ADDR                 = ":${var.container_port}"
      METRICS_ADDR              = ":${var.metrics_port}"
      DB_HOST                   = var.db_host
      DB_PORT                   = tostring(var.db_port)
      DB_NAME                   = var.db_name
      DB_USER                   = var.db_user
      DB_PASSWORD_SSM_PARAMETER = var.db_password_parameter_name
      LOG_LEVEL                 = var.log_level
      LOG_FORMAT                = "json"
      SHUTDOWN_TIMEOUT          = var.shutdown_timeout
      AWS_REGION                = local.region
    },
    var.max_range_days == null ? {} : { MAX_RANGE_DAYS = tostring(var.max_range_days) },
    # /rates reads go to a read replica when the database has one (cmd/rates: openReads).
    var.db_read_host == null ? {} : { DB_READ_HOST = var.db_read_host },
  )

  # Module-set variables win over extra_environment.
  environment = merge(var.extra_environment, local.app_environment)
}

################################################################################
# Cluster
################################################################################

resource "aws_ecs_cluster" "this" {
  name = var.cluster_name

  setting {
    name  = "containerInsights"
    value = var.container_insights
  }

  configuration {
    execute_command_configuration {
      logging = "DEFAULT"
    }
  }

  tags = merge(var.tags, { Name = var.cluster_name })
}

################################################################################
# Task definition, log group and IAM roles (modules/ecs_task)
################################################################################

module "task" {
  source = "../ecs_task"

  name           = var.name
  service_name   = var.service_name
  task_family    = var.task_family
  container_name = var.container_name
  log_group_name = var.log_group_name

  image            = var.image
  environment      = local.environment
  cpu              = var.cpu
  memory           = var.memory
  cpu_architecture = var.cpu_architecture
  container_user   = var.container_user
  stop_timeout     = var.stop_timeout
  port_mappings = [
    { name = "http", port = var.container_port, app_protocol = "http" },
    { name = "metrics", port = var.metrics_port },
  ]

  log_retention_days        = var.log_retention_days
  ecr_repository_arn        = var.ecr_repository_arn
  db_password_parameter_arn = var.db_password_parameter_arn
  db_password_kms_key_arn   = var.db_password_kms_key_arn
  enable_execute_command    = var.enable_execute_command
  metrics_namespace         = var.metrics_namespace

  permissions_boundary_arn = var.permissions_boundary_arn
  tags                     = var.tags
}

################################################################################
# Security group of the tasks
################################################################################

resource "aws_security_group" "this" {
  name_prefix = "${var.name}-service-"
  description = "Tasks of ${var.service_name}: application port from the load balancer only"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-service" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "http_from_alb" {
  security_group_id            = aws_security_group.this.id
  description                  = "Application port from the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = var.container_port
  to_port                      = var.container_port
  referenced_security_group_id = var.alb_security_group_id
}

resource "aws_vpc_security_group_ingress_rule" "metrics" {
  for_each = toset(var.metrics_ingress_cidr_blocks)

  security_group_id = aws_security_group.this.id
  description       = "Prometheus metrics from inside the VPC"
  ip_protocol       = "tcp"
  from_port         = var.metrics_port
  to_port           = var.metrics_port
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "database" {
  security_group_id            = aws_security_group.this.id
  description                  = "PostgreSQL"
  ip_protocol                  = "tcp"
  from_port                    = var.db_port
  to_port                      = var.db_port
  referenced_security_group_id = var.database_security_group_id
}

#trivy:ignore:AVD-AWS-0104 Without VPC endpoints (dev, staging) the tasks reach ECR, SSM, CloudWatch Logs and S3 over HTTPS through the NAT gateway; these AWS endpoints have no fixed addresses. With endpoints (prod) the rule names the VPC only.
resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.this.id
  description       = "HTTPS to AWS APIs (ECR, SSM, CloudWatch Logs, S3)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = var.https_egress_cidr_block
}

resource "aws_vpc_security_group_egress_rule" "https_prefix_list" {
  count = length(var.https_egress_prefix_list_ids)

  security_group_id = aws_security_group.this.id
  description       = "HTTPS to S3 through its gateway endpoint"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = var.https_egress_prefix_list_ids[count.index]
}

################################################################################
# Service
################################################################################

resource "aws_ecs_service" "this" {
  name             = var.service_name
  cluster          = aws_ecs_cluster.this.arn
  task_definition  = module.task.task_definition_arn
  desired_count    = var.desired_count
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = var.health_check_grace_period_seconds
  availability_zone_rebalancing      = "ENABLED"

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

  load_balancer {
    target_group_arn = var.target_group_arn
    container_name   = var.container_name
    container_port   = var.container_port
  }

  tags = merge(var.tags, { Name = var.service_name })

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
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.this.name}"
  min_capacity       = var.min_capacity
  max_capacity       = var.max_capacity

  tags = var.tags
}

resource "aws_appautoscaling_policy" "cpu" {
  name               = "${var.name}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this.service_namespace
  scalable_dimension = aws_appautoscaling_target.this.scalable_dimension
  resource_id        = aws_appautoscaling_target.this.resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = var.cpu_target_value
    scale_in_cooldown  = var.scale_in_cooldown
    scale_out_cooldown = var.scale_out_cooldown

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "requests" {
  name               = "${var.name}-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this.service_namespace
  scalable_dimension = aws_appautoscaling_target.this.scalable_dimension
  resource_id        = aws_appautoscaling_target.this.resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = var.requests_per_target
    scale_in_cooldown  = var.scale_in_cooldown
    scale_out_cooldown = var.scale_out_cooldown

    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${var.alb_arn_suffix}/${var.target_group_arn_suffix}"
    }
  }
}
