# Two roles, each limited to the resources of this task:
# - execution role (used by ECS itself): pull the image from the one repository, write the one
#   log group;
# - task role (used by the application): the caller's statements (task_policy_statements), read
#   its own password parameter (plus additional_parameter_arns, for the migration task) and
#   decrypt with their key through SSM only; plus the SSM Messages channels when ECS Exec is
#   enabled.

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  # Only ECS acting for this account and region may assume the roles (confused deputy guard).
  ecs_tasks_assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "EcsTasksOfThisAccount"
        Effect    = "Allow"
        Principal = { Service = "ecs-tasks.amazonaws.com" }
        Action    = "sts:AssumeRole"
        Condition = {
          StringEquals = { "aws:SourceAccount" = local.account_id }
          ArnLike      = { "aws:SourceArn" = "arn:${local.partition}:ecs:${local.region}:${local.account_id}:*" }
        }
      },
    ]
  })

  execution_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # GetAuthorizationToken has no resource-level permissions: "*" is the only valid resource.
        Sid      = "EcrLogin"
        Effect   = "Allow"
        Action   = ["ecr:GetAuthorizationToken"]
        Resource = "*"
      },
      {
        Sid      = "PullFromServiceRepository"
        Effect   = "Allow"
        Action   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
        Resource = var.ecr_repository_arn
      },
      {
        Sid      = "WriteLogGroup"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = "${aws_cloudwatch_log_group.this.arn}:log-stream:*"
      },
    ]
  })

  task_policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      jsondecode(var.task_policy_statements),
      [
        {
          Sid      = "ReadDatabasePassword"
          Effect   = "Allow"
          Action   = ["ssm:GetParameter"]
          Resource = var.db_password_parameter_arn
        },
        {
          Sid      = "DecryptDatabasePasswordThroughSsm"
          Effect   = "Allow"
          Action   = ["kms:Decrypt"]
          Resource = var.db_password_kms_key_arn
          Condition = {
            StringEquals = { "kms:ViaService" = "ssm.${local.region}.amazonaws.com" }
          }
        },
      ],
      # The migration task only: the passwords it sets on the services' roles.
      length(var.additional_parameter_arns) == 0 ? [] : [
        {
          Sid      = "ReadAdditionalParameters"
          Effect   = "Allow"
          Action   = ["ssm:GetParameter"]
          Resource = var.additional_parameter_arns
        },
      ],
      var.enable_execute_command ? [
        {
          # The SSM Messages channel actions have no resource-level permissions.
          Sid    = "EcsExecChannels"
          Effect = "Allow"
          Action = [
            "ssmmessages:CreateControlChannel",
            "ssmmessages:CreateDataChannel",
            "ssmmessages:OpenControlChannel",
            "ssmmessages:OpenDataChannel",
          ]
          Resource = "*"
        },
      ] : [],
    )
  })
}

resource "aws_iam_role" "execution" {
  name                 = "${var.name}-task-execution"
  description          = "ECS task execution role of ${var.service_name}: image pull and logs"
  assume_role_policy   = local.ecs_tasks_assume_role_policy
  permissions_boundary = var.permissions_boundary_arn
}

resource "aws_iam_role_policy" "execution" {
  name   = "pull-image-write-logs"
  role   = aws_iam_role.execution.id
  policy = local.execution_policy
}

resource "aws_iam_role" "task" {
  name                 = "${var.name}-task"
  description          = "Task role of ${var.service_name}: ${var.task_role_purpose}"
  assume_role_policy   = local.ecs_tasks_assume_role_policy
  permissions_boundary = var.permissions_boundary_arn
}

resource "aws_iam_role_policy" "task" {
  name   = var.task_policy_name
  role   = aws_iam_role.task.id
  policy = local.task_policy
}
