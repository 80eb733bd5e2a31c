# Permissions of the environment's GitHub deploy role. The role itself, its trust (jobs of the
# GitHub environment only) and the account's GitHub OIDC provider are created once per account by
# terraform/bootstrap, before any workspace exists; this module only looks them up and attaches the
# permissions, whose resources are this environment's: push images to one ECR repository, register
# task definitions, roll the given ECS services and pass exactly their task and execution roles.
# Destroying the workspace removes the permissions and leaves the role and the provider in place.
#
# The policy document is an aws_iam_policy_document data source with literal actions, so that
# reviewers and tests can read every action and resource straight from this file.

# Looked up, never created: an account holds one provider per issuer URL, and every CI role of
# the account trusts it.
data "aws_iam_openid_connect_provider" "github" {
  url = "https://token.actions.githubusercontent.com"
}

data "aws_iam_role" "deploy" {
  name = var.deploy_role_name
}

# Resource "*" appears twice, only where AWS offers no resource-level permission:
# ecr:GetAuthorizationToken, and ecs:RegisterTaskDefinition / ecs:DescribeTaskDefinition.
data "aws_iam_policy_document" "deploy" {
  statement {
    sid       = "EcrLogin"
    effect    = "Allow"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid    = "PushToRepository"
    effect = "Allow"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:InitiateLayerUpload",
      "ecr:UploadLayerPart",
      "ecr:CompleteLayerUpload",
      "ecr:PutImage",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
      # The deploy workflow reads the digest of a tag (is it there already, is it what was built).
      "ecr:DescribeImages",
    ]
    resources = [var.ecr_repository_arn]
  }

  statement {
    sid    = "RegisterTaskDefinitions"
    effect = "Allow"
    actions = [
      "ecs:RegisterTaskDefinition",
      "ecs:DescribeTaskDefinition",
    ]
    resources = ["*"]
  }

  statement {
    sid    = "DeployServices"
    effect = "Allow"
    actions = [
      "ecs:UpdateService",
      "ecs:DescribeServices",
    ]
    resources = var.ecs_service_arns
  }

  # One-off tasks before the services change: the migration (and seed) task and the worker's
  # start check, in this environment's cluster only; the deploy waits for them and reads their
  # logs.
  dynamic "statement" {
    for_each = length(var.run_task_definition_arns) > 0 ? [var.cluster_arn] : []

    content {
      sid       = "RunOneOffTasks"
      effect    = "Allow"
      actions   = ["ecs:RunTask"]
      resources = var.run_task_definition_arns

      condition {
        test     = "ArnEquals"
        variable = "ecs:cluster"
        values   = [statement.value]
      }
    }
  }

  dynamic "statement" {
    for_each = length(var.run_task_definition_arns) > 0 ? [var.cluster_arn] : []

    content {
      sid       = "WatchOneOffTasks"
      effect    = "Allow"
      actions   = ["ecs:DescribeTasks", "ecs:StopTask"]
      resources = ["${replace(statement.value, ":cluster/", ":task/")}/*"]
    }
  }

  dynamic "statement" {
    for_each = length(var.read_log_group_arns) > 0 ? [var.read_log_group_arns] : []

    content {
      sid       = "ReadOneOffTaskLogs"
      effect    = "Allow"
      actions   = ["logs:GetLogEvents"]
      resources = [for arn in statement.value : "${arn}:log-stream:*"]
    }
  }

  statement {
    sid       = "PassTaskRoles"
    effect    = "Allow"
    actions   = ["iam:PassRole"]
    resources = var.pass_role_arns

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "deploy" {
  name   = "push-image-deploy-services"
  role   = data.aws_iam_role.deploy.name
  policy = data.aws_iam_policy_document.deploy.json
}
