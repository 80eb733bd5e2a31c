# One Fargate task of the rates image: its log group, its Fargate task definition with one
# container, and its two IAM roles (iam.tf). The stack registers three: the API's and the
# worker's, each run by its ECS service (modules/ecs_service), and the deploy's one-off migration
# task.

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  region = data.aws_region.current.name

  # Every task of the image talks to RDS over TLS with the server's certificate checked against
  # the RDS CA bundle the image carries (the Dockerfile copies it there): verify-full, whatever
  # the caller set. The AWS SDK of the binary finds its region here.
  # What the image was built for: the deploy builds linux/amd64, and the Dockerfile's user is
  # 65532 (nonroot), never root.
  cpu_architecture = "X86_64"
  container_user   = "65532:65532"

  task_environment = {
    AWS_REGION     = local.region
    DB_SSLMODE     = "verify-full"
    DB_SSLROOTCERT = "/usr/share/rates/rds-ca.pem"
  }

  # Application metrics reach CloudWatch as embedded-metric-format lines on the container's log
  # output (the binary writes them; see docs/design.md): the awslogs driver already ships that
  # output to the log group, so metrics need no sidecar, no further image and no further
  # permission. The Service dimension is the ECS service's name, as in AWS/ECS.
  metrics_environment = var.metrics_namespace == null ? {} : {
    METRICS_EMF_NAMESPACE = var.metrics_namespace
    METRICS_EMF_SERVICE   = var.service_name
  }
  environment = merge(var.environment, local.metrics_environment, local.task_environment)
  writable_volumes = concat(
    [{ name = "tmp", path = "/tmp" }],
    var.enable_execute_command ? [
      { name = "ssm-agent-state", path = "/var/lib/amazon" },
      { name = "ssm-agent-logs", path = "/var/log/amazon" },
    ] : [],
  )

  container_definition = merge(
    {
      name      = var.container_name
      image     = var.image
      essential = true
      user      = local.container_user

      readonlyRootFilesystem = true
      stopTimeout            = var.stop_timeout

      portMappings = [
        for p in var.port_mappings : merge(
          { name = p.name, containerPort = p.port, hostPort = p.port, protocol = "tcp" },
          p.app_protocol == null ? {} : { appProtocol = p.app_protocol },
        )
      ]

      # Sorted by name, as ECS returns them, so that plans stay quiet.
      environment = [for k in sort(keys(local.environment)) : { name = k, value = local.environment[k] }]

      # The root filesystem is read-only; /tmp is a scratch volume on the task's ephemeral storage.
      # With ECS Exec, the SSM agent ECS injects writes its state and logs under /var/lib/amazon
      # and /var/log/amazon: without writable volumes there it cannot start on a read-only root.
      mountPoints = [
        for v in local.writable_volumes : { sourceVolume = v.name, containerPath = v.path, readOnly = false }
      ]

      linuxParameters = {
        initProcessEnabled = true
      }

      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this.name
          awslogs-region        = local.region
          awslogs-stream-prefix = "ecs"
        }
      }
    },
    var.command == null ? {} : { command = var.command },
  )
}

resource "aws_cloudwatch_log_group" "this" {
  name              = var.log_group_name
  retention_in_days = var.log_retention_days
}

# Terraform registers the first revision of the family and a new one whenever the settings above
# change. The deploy workflow registers further revisions with new images (starting from the
# latest revision of the family), so the services ignore their task_definition argument.
#trivy:ignore:AVD-AWS-0036 DB_PASSWORD_SSM_PARAMETER carries the name of the SSM parameter, not the password; the binary reads and decrypts the SecureString itself at start.
resource "aws_ecs_task_definition" "this" {
  family                   = var.task_family
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(var.cpu)
  memory                   = tostring(var.memory)
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  container_definitions = jsonencode([local.container_definition])

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = local.cpu_architecture
  }

  dynamic "volume" {
    for_each = local.writable_volumes

    content {
      name = volume.value.name
    }
  }

  # Keep older revisions registered when Terraform replaces this one: a running deployment may
  # still use them.
  skip_destroy = true

  tags = { Name = var.task_family }
}
