# Plan-level tests of the github_oidc module with a mocked AWS provider. The policy documents are
# checked through the statements configured in their aws_iam_policy_document data sources: a mocked
# provider does not render their JSON, so it returns an empty policy (which the roles' argument
# validation accepts) instead of a random string.

mock_provider "aws" {
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
}

override_resource {
  target          = aws_iam_openid_connect_provider.github
  override_during = plan
  values = {
    arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
  }
}

variables {
  name                = "rates-test"
  github_repository   = "example-org/rates"
  github_environments = ["staging", "prod"]
  ecr_repository_arn  = "arn:aws:ecr:eu-central-1:123456789012:repository/rates-test"
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

run "creates_the_github_provider" {
  command = plan

  assert {
    condition = (
      length(aws_iam_openid_connect_provider.github) == 1 &&
      aws_iam_openid_connect_provider.github[0].url == "https://token.actions.githubusercontent.com" &&
      aws_iam_openid_connect_provider.github[0].client_id_list == toset(["sts.amazonaws.com"])
    )
    error_message = "The provider must be GitHub's issuer with the STS audience."
  }

  assert {
    condition     = output.oidc_provider_arn == "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    error_message = "The role must trust the created provider."
  }
}

run "trust_is_limited_to_master_and_the_environments" {
  command = plan

  assert {
    condition     = aws_iam_role.deploy.name == "rates-test-github-deploy"
    error_message = "The role is named <name>-github-deploy."
  }

  assert {
    condition     = length(data.aws_iam_policy_document.trust.statement) == 1
    error_message = "The trust policy has one statement."
  }

  assert {
    condition = (
      one(data.aws_iam_policy_document.trust.statement).actions == toset(["sts:AssumeRoleWithWebIdentity"]) &&
      one(data.aws_iam_policy_document.trust.statement).effect == "Allow" &&
      [for p in one(data.aws_iam_policy_document.trust.statement).principals : [p.type, p.identifiers]] == [
        ["Federated", toset(["arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"])]
      ]
    )
    error_message = "Only web identities of the GitHub provider may assume the role."
  }

  assert {
    condition = {
      for c in one(data.aws_iam_policy_document.trust.statement).condition : c.variable => [c.test, c.values]
      } == {
      "token.actions.githubusercontent.com:aud" = ["StringEquals", tolist(["sts.amazonaws.com"])]
      "token.actions.githubusercontent.com:sub" = ["StringEquals", tolist([
        "repo:example-org/rates:ref:refs/heads/master",
        "repo:example-org/rates:environment:staging",
        "repo:example-org/rates:environment:prod",
      ])]
    }
    error_message = "The token must be for STS and come from master or one of the environments, matched exactly."
  }

  assert {
    condition     = alltrue([for c in one(data.aws_iam_policy_document.trust.statement).condition : alltrue([for v in c.values : !strcontains(v, "*")])])
    error_message = "The trust conditions must not contain wildcards."
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

run "existing_provider_is_reused" {
  command = plan

  variables {
    oidc_provider_arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
  }

  assert {
    condition     = length(aws_iam_openid_connect_provider.github) == 0
    error_message = "With oidc_provider_arn no second provider is created."
  }

  assert {
    condition = [
      for p in one(data.aws_iam_policy_document.trust.statement).principals : p.identifiers
    ] == [toset(["arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"])]
    error_message = "The role must trust the given provider."
  }
}

run "environments_only" {
  command = plan

  variables {
    deploy_branch       = null
    github_environments = ["prod"]
  }

  assert {
    condition     = output.trusted_subjects == ["repo:example-org/rates:environment:prod"]
    error_message = "Without a deploy branch only the environment's jobs may assume the role."
  }
}

run "rejects_a_repository_that_is_not_owner_slash_name" {
  command = plan

  variables {
    github_repository = "rates"
  }

  expect_failures = [var.github_repository]
}

run "rejects_a_wildcard_environment" {
  command = plan

  variables {
    github_environments = ["*"]
  }

  expect_failures = [var.github_environments]
}

run "rejects_a_role_nobody_can_assume" {
  command = plan

  variables {
    deploy_branch       = null
    github_environments = []
  }

  expect_failures = [var.github_environments]
}

run "rejects_a_wildcard_service" {
  command = plan

  variables {
    ecs_service_arns = ["arn:aws:ecs:eu-central-1:123456789012:service/rates-test/*"]
  }

  expect_failures = [var.ecs_service_arns]
}
