# The worker's two roles, each limited to the resources of this module:
# - execution role (used by ECS itself): pull the image from the one repository, write the
#   worker's log group;
# - task role (used by `rates worker`): read batches under incoming/, write reports under
#   reports/, consume the one queue, read the one password parameter, and use the bucket's key
#   and the parameter's key through S3 and SSM only.

locals {
  bucket_arn = aws_s3_bucket.this.arn

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
        Sid      = "WriteWorkerLogGroup"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = "${aws_cloudwatch_log_group.worker.arn}:log-stream:*"
      },
    ]
  })

  task_policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      [
        {
          Sid      = "ReadIncomingBatches"
          Effect   = "Allow"
          Action   = ["s3:GetObject", "s3:GetObjectVersion"]
          Resource = "${local.bucket_arn}/${var.incoming_prefix}*"
        },
        {
          Sid      = "WriteBatchReports"
          Effect   = "Allow"
          Action   = ["s3:PutObject"]
          Resource = "${local.bucket_arn}/${var.reports_prefix}*"
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
  name               = "${var.name}-worker-task-execution"
  description        = "ECS task execution role of ${var.service_name}: image pull and logs"
  assume_role_policy = local.ecs_tasks_assume_role_policy

  tags = var.tags
}

resource "aws_iam_role_policy" "execution" {
  name   = "pull-image-write-logs"
  role   = aws_iam_role.execution.id
  policy = local.execution_policy
}

resource "aws_iam_role" "task" {
  name               = "${var.name}-worker-task"
  description        = "Task role of ${var.service_name}: reads incoming batches, writes reports, consumes the ingestion queue"
  assume_role_policy = local.ecs_tasks_assume_role_policy

  tags = var.tags
}

resource "aws_iam_role_policy" "task" {
  name   = "ingest-batches"
  role   = aws_iam_role.task.id
  policy = local.task_policy
}
