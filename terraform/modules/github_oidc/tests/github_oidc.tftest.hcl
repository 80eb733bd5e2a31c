# Plan-level tests of the github_oidc module with a mocked AWS provider. The module creates no
# role and no provider (bootstrap does; see bootstrap/tests): it looks them up and attaches the
# deploy permissions. The policy documents are
# checked through the statements configured in their aws_iam_policy_document data sources: a mocked
# provider does not render their JSON, so it returns an empty policy (which the roles' argument
# validation accepts) instead of a random string.

mock_provider "aws" {
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }

  mock_data "aws_iam_role" {
    defaults = {
      arn  = "arn:aws:iam::123456789012:role/rates-ci/rates-test-github-deploy"
      name = "rates-test-github-deploy"
    }
  }

  mock_data "aws_iam_openid_connect_provider" {
    defaults = {
      arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    }
  }
}

variables {
  deploy_role_name   = "rates-test-github-deploy"
  ecr_repository_arn = "arn:aws:ecr:eu-central-1:123456789012:repository/rates-test"
  ecs_service_arns = [
    "arn:aws:ecs:eu-central-1:123456789012:service/rates-test/rates-test-api",
    "arn:aws:ecs:eu-central-1:123456789012:service/rates-test/rates-test-worker",
  ]
  pass_role_arns = [
    "arn:aws:iam::123456789012:role/rates-test-task",
    "arn:aws:iam::123456789012:role/rates-test-task-execution",
    "arn:aws:iam::123456789012:role/rates-test-worker-task",
    "arn:aws:iam::123456789012:role/rates-test-worker-task-execution",
  ]
}

run "attaches_to_the_bootstrap_role_and_creates_no_identity" {
  command = plan

  assert {
    condition     = aws_iam_role_policy.deploy.role == "rates-test-github-deploy" && output.role_arn == "arn:aws:iam::123456789012:role/rates-ci/rates-test-github-deploy"
    error_message = "The permissions go to the deploy role bootstrap created."
  }

  assert {
    condition     = data.aws_iam_openid_connect_provider.github.url == "https://token.actions.githubusercontent.com" && output.oidc_provider_arn == "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    error_message = "The GitHub provider is looked up by its URL."
  }
}

run "permissions_are_exactly_push_register_deploy_and_pass" {
  command = plan

  assert {
    condition = {
      for s in data.aws_iam_policy_document.deploy.statement : s.sid => [s.effect, s.actions, s.resources]
      } == {
      EcrLogin = ["Allow", toset(["ecr:GetAuthorizationToken"]), toset(["*"])]
      PushToRepository = ["Allow", toset([
        "ecr:BatchCheckLayerAvailability",
        "ecr:InitiateLayerUpload",
        "ecr:UploadLayerPart",
        "ecr:CompleteLayerUpload",
        "ecr:PutImage",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:DescribeImages",
      ]), toset(["arn:aws:ecr:eu-central-1:123456789012:repository/rates-test"])]
      RegisterTaskDefinitions = ["Allow", toset(["ecs:RegisterTaskDefinition", "ecs:DescribeTaskDefinition"]), toset(["*"])]
      DeployServices = ["Allow", toset(["ecs:UpdateService", "ecs:DescribeServices"]), toset([
        "arn:aws:ecs:eu-central-1:123456789012:service/rates-test/rates-test-api",
        "arn:aws:ecs:eu-central-1:123456789012:service/rates-test/rates-test-worker",
      ])]
      PassTaskRoles = ["Allow", toset(["iam:PassRole"]), toset([
        "arn:aws:iam::123456789012:role/rates-test-task",
        "arn:aws:iam::123456789012:role/rates-test-task-execution",
        "arn:aws:iam::123456789012:role/rates-test-worker-task",
        "arn:aws:iam::123456789012:role/rates-test-worker-task-execution",
      ])]
    }
    error_message = "The deploy role must hold exactly these actions on exactly these resources."
  }

  assert {
    condition = alltrue(flatten([
      for s in data.aws_iam_policy_document.deploy.statement : [for a in s.actions : !strcontains(a, "*")]
    ]))
    error_message = "No statement of the deploy policy may use a wildcard action."
  }

  assert {
    condition = [
      for s in data.aws_iam_policy_document.deploy.statement : s.sid if contains(s.resources, "*")
    ] == ["EcrLogin", "RegisterTaskDefinitions"]
    error_message = "Only ecr:GetAuthorizationToken and the task definition actions (no resource-level permissions) may use resource \"*\"."
  }

  assert {
    condition = [
      for s in data.aws_iam_policy_document.deploy.statement : [for c in s.condition : [c.test, c.variable, c.values]] if s.sid == "PassTaskRoles"
    ] == [[["StringEquals", "iam:PassedToService", tolist(["ecs-tasks.amazonaws.com"])]]]
    error_message = "The roles may only be passed to ECS tasks."
  }

  assert {
    condition     = alltrue([for s in data.aws_iam_policy_document.deploy.statement : length(coalesce(s.not_actions, [])) == 0 && length(coalesce(s.not_resources, [])) == 0])
    error_message = "NotAction and NotResource would widen the policy."
  }
}

run "rejects_a_wildcard_service" {
  command = plan

  variables {
    ecs_service_arns = ["arn:aws:ecs:eu-central-1:123456789012:service/rates-test/*"]
  }

  expect_failures = [var.ecs_service_arns]
}
