# Deployments from GitHub Actions without stored AWS keys: the GitHub OIDC identity provider
# (one per account, optional here) and a deploy role that only this repository's master branch
# and chosen environments may assume. The role can push images to one ECR repository, register
# task definitions, roll the given ECS services and pass exactly their task and execution roles.
#
# Both policy documents are aws_iam_policy_document data sources with literal actions, so that
# reviewers and tests can read every action and resource straight from this file.

locals {
  github_oidc_url = "https://token.actions.githubusercontent.com"
  github_oidc_iss = "token.actions.githubusercontent.com"

  oidc_provider_arn = var.oidc_provider_arn == null ? one(aws_iam_openid_connect_provider.github[*].arn) : var.oidc_provider_arn

  # `sub` claims of the jobs that may assume the role (GitHub's default claim format): jobs on the
  # deploy branch without an environment, and jobs of each listed environment (whatever their
  # branch: the environment's protection rules decide).
  trusted_subjects = concat(
    var.deploy_branch == null ? [] : ["repo:${var.github_repository}:ref:refs/heads/${var.deploy_branch}"],
    [for env in var.github_environments : "repo:${var.github_repository}:environment:${env}"],
  )
}

# There can be only one provider per URL in an account: pass oidc_provider_arn where it exists.
# No thumbprint_list: for GitHub's issuer, IAM validates the certificate against its own trusted
# certificate authorities and ignores configured thumbprints (provider 5.x leaves it optional).
resource "aws_iam_openid_connect_provider" "github" {
  count = var.oidc_provider_arn == null ? 1 : 0

  url            = local.github_oidc_url
  client_id_list = ["sts.amazonaws.com"]

  tags = merge(var.tags, { Name = "github-actions" })
}

data "aws_iam_policy_document" "trust" {
  statement {
    sid     = "GitHubActionsOfThisRepository"
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.github_oidc_iss}:aud"
      values   = ["sts.amazonaws.com"]
    }

    # Exact subjects, no wildcard: other branches, pull requests, tags and other environments
    # of the repository are refused.
    condition {
      test     = "StringEquals"
      variable = "${local.github_oidc_iss}:sub"
      values   = local.trusted_subjects
    }
  }
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

resource "aws_iam_role" "deploy" {
  name                 = "${var.name}-github-deploy"
  description          = "Deploys ${var.github_repository} from GitHub Actions: push to one ECR repository, register task definitions, roll the ECS services"
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = var.max_session_duration

  tags = var.tags
}

resource "aws_iam_role_policy" "deploy" {
  name   = "push-image-deploy-services"
  role   = aws_iam_role.deploy.id
  policy = data.aws_iam_policy_document.deploy.json
}
