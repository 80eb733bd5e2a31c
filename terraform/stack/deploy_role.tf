# Permissions of the workspace's GitHub deploy role. The role, its trust (jobs of the GitHub
# environment of the same name) and the account's GitHub OIDC provider are created once per account
# by terraform/bootstrap, before any workspace exists; the workspace only looks them up and
# attaches the permissions, whose resources are its own: push images to its ECR repository,
# register task definitions, roll its two services, run, watch and read the logs of the one-off
# tasks (migration and seed, the worker's start check) in its cluster, and pass exactly the tasks'
# roles. Destroying the workspace removes the permissions and leaves the role and the provider.
#
# A policy document data source with literal actions, so that reviewers and tests read every
# action and resource here.

data "aws_iam_openid_connect_provider" "github" {
  url = "https://token.actions.githubusercontent.com"
}

data "aws_iam_role" "deploy" {
  name = local.names.github_deploy_role
}

locals {
  # Every revision of the families of the one-off tasks.
  one_off_tasks = [module.task["migrate"], module.task["worker"]]
}

# Resource "*" only where AWS offers no resource-level permission: ecr:GetAuthorizationToken, and
# ecs:RegisterTaskDefinition / ecs:DescribeTaskDefinition.
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
    resources = [module.ecr.repository_arn]
  }

  statement {
    sid       = "RegisterTaskDefinitions"
    effect    = "Allow"
    actions   = ["ecs:RegisterTaskDefinition", "ecs:DescribeTaskDefinition"]
    resources = ["*"]
  }

  statement {
    sid       = "DeployServices"
    effect    = "Allow"
    actions   = ["ecs:UpdateService", "ecs:DescribeServices"]
    resources = [for s in module.service : s.service_arn]
  }

  statement {
    sid       = "RunOneOffTasks"
    effect    = "Allow"
    actions   = ["ecs:RunTask"]
    resources = [for t in local.one_off_tasks : replace(t.task_definition_arn, "/:[0-9]+$/", ":*")]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.this.arn]
    }
  }

  statement {
    sid       = "WatchOneOffTasks"
    effect    = "Allow"
    actions   = ["ecs:DescribeTasks", "ecs:StopTask"]
    resources = ["${replace(aws_ecs_cluster.this.arn, ":cluster/", ":task/")}/*"]
  }

  statement {
    sid       = "ReadOneOffTaskLogs"
    effect    = "Allow"
    actions   = ["logs:GetLogEvents"]
    resources = [for t in local.one_off_tasks : "${t.log_group_arn}:log-stream:*"]
  }

  statement {
    sid       = "PassTaskRoles"
    effect    = "Allow"
    actions   = ["iam:PassRole"]
    resources = flatten([for t in module.task : [t.task_role_arn, t.execution_role_arn]])

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
