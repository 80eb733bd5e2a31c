# Plan-level tests of bootstrap with a mocked AWS provider: the state bucket, the GitHub OIDC
# provider and the CI roles exist here (and nowhere in the workspaces: see stack/tests), and each
# role trusts exactly one kind of GitHub job. The policy documents are checked through the
# statements of their aws_iam_policy_document data sources (a mocked provider renders no JSON).

mock_provider "aws" {
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }

  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
    }
  }

  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }

  mock_resource "aws_s3_bucket" {
    override_during = plan
    defaults = {
      arn = "arn:aws:s3:::rates-tfstate-123456789012-eu-central-1"
    }
  }

  mock_resource "aws_kms_key" {
    override_during = plan
    defaults = {
      arn = "arn:aws:kms:eu-central-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    }
  }

  mock_resource "aws_iam_policy" {
    override_during = plan
    defaults = {
      arn = "arn:aws:iam::123456789012:policy/rates-ci/mocked-boundary"
    }
  }

  mock_resource "aws_iam_openid_connect_provider" {
    override_during = plan
    defaults = {
      arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    }
  }
}

variables {
  region            = "eu-central-1"
  github_repository = "example-org/rates"
}

run "state_bucket_and_provider_are_created_once" {
  command = plan

  assert {
    condition     = aws_s3_bucket.state.bucket == "rates-tfstate-123456789012-eu-central-1"
    error_message = "The state bucket is named after the account and region."
  }

  assert {
    condition = (
      length(aws_iam_openid_connect_provider.github) == 1 &&
      aws_iam_openid_connect_provider.github[0].url == "https://token.actions.githubusercontent.com" &&
      aws_iam_openid_connect_provider.github[0].client_id_list == toset(["sts.amazonaws.com"]) &&
      length(data.aws_iam_openid_connect_provider.github) == 0
    )
    error_message = "Bootstrap creates GitHub's provider with the STS audience."
  }

  assert {
    condition     = output.github_oidc_provider_arn == "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    error_message = "The roles trust the created provider."
  }

  assert {
    condition = [for s in jsondecode(aws_s3_bucket_policy.state.policy).Statement : [s.Sid, s.Effect, s.Resource]] == [
      ["DenyInsecureTransport", "Deny", ["arn:aws:s3:::rates-tfstate-123456789012-eu-central-1", "arn:aws:s3:::rates-tfstate-123456789012-eu-central-1/*"]],
      ["DenyOutdatedTls", "Deny", ["arn:aws:s3:::rates-tfstate-123456789012-eu-central-1", "arn:aws:s3:::rates-tfstate-123456789012-eu-central-1/*"]],
    ]
    error_message = "The state bucket accepts TLS 1.2 or later only (the project's one TLS-only bucket policy)."
  }
}

run "an_existing_provider_is_looked_up" {
  command = plan

  variables {
    create_github_oidc_provider = false
  }

  override_data {
    target = data.aws_iam_openid_connect_provider.github
    values = {
      arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    }
  }

  assert {
    condition     = length(aws_iam_openid_connect_provider.github) == 0 && length(data.aws_iam_openid_connect_provider.github) == 1
    error_message = "With create_github_oidc_provider = false the provider is only read."
  }

  assert {
    condition     = one(data.aws_iam_policy_document.trust["pull_request"].statement[0].principals).identifiers == toset(["arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"])
    error_message = "The roles trust the existing provider."
  }
}

run "plan_role_trusts_pull_requests_only" {
  command = plan

  assert {
    condition = (
      aws_iam_role.plan.name == "rates-ci-terraform-plan" &&
      aws_iam_role.plan.path == "/rates-ci/" &&
      length(data.aws_iam_policy_document.trust["pull_request"].statement) == 1
    )
    error_message = "One plan role under /rates-ci/ with one trust statement."
  }

  assert {
    condition = {
      for c in data.aws_iam_policy_document.trust["pull_request"].statement[0].condition : c.variable => [c.test, c.values]
      } == {
      "token.actions.githubusercontent.com:aud" = ["StringEquals", tolist(["sts.amazonaws.com"])]
      "token.actions.githubusercontent.com:sub" = ["StringEquals", tolist(["repo:example-org/rates:pull_request"])]
    }
    error_message = "The plan role must trust exactly the repository's pull_request subject."
  }

  assert {
    condition     = output.trusted_subjects.plan == ["repo:example-org/rates:pull_request"]
    error_message = "Output trusted_subjects must show the plan role's subject."
  }
}

run "plan_role_reads_and_locks_only" {
  command = plan

  assert {
    condition     = aws_iam_role_policy_attachment.plan_read_only.policy_arn == "arn:aws:iam::aws:policy/ReadOnlyAccess"
    error_message = "The plan role's base is ReadOnlyAccess."
  }

  assert {
    condition = {
      for s in data.aws_iam_policy_document.plan.statement : s.sid => [s.effect, s.actions, s.resources] if s.effect == "Allow"
      } == {
      ListStateBucket = ["Allow", toset(["s3:ListBucket"]), toset(["arn:aws:s3:::rates-tfstate-123456789012-eu-central-1"])]
      ReadState       = ["Allow", toset(["s3:GetObject"]), toset(["arn:aws:s3:::rates-tfstate-123456789012-eu-central-1/*"])]
      LockState = ["Allow", toset(["s3:PutObject", "s3:DeleteObject"]), toset([
        "arn:aws:s3:::rates-tfstate-123456789012-eu-central-1/env/*/rates.tfstate.tflock",
        "arn:aws:s3:::rates-tfstate-123456789012-eu-central-1/rates.tfstate.tflock",
      ])]
      StateKey         = ["Allow", toset(["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]), toset(["arn:aws:kms:eu-central-1:123456789012:key/00000000-0000-0000-0000-000000000000"])]
      GeneratePassword = ["Allow", toset(["secretsmanager:GetRandomPassword"]), toset(["*"])]
    }
    error_message = "The plan role may read the state, write only lock files, use the state key and generate a password."
  }

  assert {
    condition = alltrue(flatten([
      for s in data.aws_iam_policy_document.plan.statement : [
        for a in s.actions : !contains(["s3:PutObject", "s3:DeleteObject"], a) || s.resources == toset(local.lock_object_arns)
      ]
    ]))
    error_message = "The plan role writes nothing but lock files."
  }

  assert {
    condition = {
      for s in data.aws_iam_policy_document.plan.statement : s.sid => s.effect if s.effect == "Deny"
    } == { NoDataOutsideTheState = "Deny", NoSecretValues = "Deny" }
    error_message = "The plan role must be denied object data outside the state and secret values."
  }
}

run "environment_roles_trust_their_environment_only" {
  command = plan

  assert {
    condition = (
      keys(aws_iam_role.apply) == ["dev", "prod", "staging"] &&
      keys(aws_iam_role.deploy) == ["dev", "prod", "staging"] &&
      aws_iam_role.apply["prod"].name == "rates-prod-terraform-apply" &&
      aws_iam_role.deploy["prod"].name == "rates-prod-github-deploy" &&
      alltrue([for r in concat(values(aws_iam_role.apply), values(aws_iam_role.deploy)) : r.path == "/rates-ci/"])
    )
    error_message = "Each environment has an apply and a deploy role under /rates-ci/."
  }

  assert {
    condition = alltrue([
      for env in ["dev", "staging", "prod"] : {
        for c in data.aws_iam_policy_document.trust["environment:${env}"].statement[0].condition : c.variable => [c.test, c.values]
        } == {
        "token.actions.githubusercontent.com:aud" = ["StringEquals", tolist(["sts.amazonaws.com"])]
        "token.actions.githubusercontent.com:sub" = ["StringEquals", tolist(["repo:example-org/rates:environment:${env}"])]
      }
    ])
    error_message = "The apply and deploy roles of an environment trust exactly the jobs of that GitHub environment."
  }

  assert {
    condition = output.trusted_subjects == {
      plan           = ["repo:example-org/rates:pull_request"]
      dev-apply      = ["repo:example-org/rates:environment:dev"]
      dev-deploy     = ["repo:example-org/rates:environment:dev"]
      staging-apply  = ["repo:example-org/rates:environment:staging"]
      staging-deploy = ["repo:example-org/rates:environment:staging"]
      prod-apply     = ["repo:example-org/rates:environment:prod"]
      prod-deploy    = ["repo:example-org/rates:environment:prod"]
    }
    error_message = "No role trusts a branch, a tag or another environment."
  }

  assert {
    condition = alltrue(flatten([
      for d in values(data.aws_iam_policy_document.trust) : [
        for c in d.statement[0].condition : [for v in c.values : !strcontains(v, "*")]
      ]
    ]))
    error_message = "No trust condition may contain a wildcard."
  }
}

# The mocked provider renders every document as the same JSON; here each trust document gets its
# own, so the roles' assume_role_policy shows which document each role uses.
run "each_role_uses_the_trust_document_of_its_context" {
  command = plan

  override_data {
    target = data.aws_iam_policy_document.trust["pull_request"]
    values = {
      json = "{\"Version\":\"2012-10-17\",\"Id\":\"pull_request\",\"Statement\":[]}"
    }
  }

  override_data {
    target = data.aws_iam_policy_document.trust["environment:dev"]
    values = {
      json = "{\"Version\":\"2012-10-17\",\"Id\":\"environment:dev\",\"Statement\":[]}"
    }
  }

  override_data {
    target = data.aws_iam_policy_document.trust["environment:staging"]
    values = {
      json = "{\"Version\":\"2012-10-17\",\"Id\":\"environment:staging\",\"Statement\":[]}"
    }
  }

  override_data {
    target = data.aws_iam_policy_document.trust["environment:prod"]
    values = {
      json = "{\"Version\":\"2012-10-17\",\"Id\":\"environment:prod\",\"Statement\":[]}"
    }
  }

  assert {
    condition = (
      keys(data.aws_iam_policy_document.trust) == ["environment:dev", "environment:prod", "environment:staging", "pull_request"] &&
      { for k, d in data.aws_iam_policy_document.trust : k => d.statement[0].sid } == {
        "environment:dev"     = "JobsOfTheEnvironment"
        "environment:prod"    = "JobsOfTheEnvironment"
        "environment:staging" = "JobsOfTheEnvironment"
        pull_request          = "PullRequestsOfThisRepository"
      }
    )
    error_message = "One trust document for pull requests and one per environment, with their statement IDs."
  }

  assert {
    condition = (
      jsondecode(aws_iam_role.plan.assume_role_policy).Id == "pull_request" &&
      alltrue([
        for env in ["dev", "staging", "prod"] :
        jsondecode(aws_iam_role.apply[env].assume_role_policy).Id == "environment:${env}" &&
        jsondecode(aws_iam_role.deploy[env].assume_role_policy).Id == "environment:${env}"
      ])
    )
    error_message = "The plan role trusts pull requests; the apply and deploy roles of an environment trust that environment's jobs."
  }
}

run "apply_role_of_one_environment_keeps_off_the_others" {
  command = plan

  override_resource {
    target          = aws_iam_role.deploy["dev"]
    override_during = plan
    values = {
      arn = "arn:aws:iam::123456789012:role/rates-ci/rates-dev-github-deploy"
    }
  }

  assert {
    condition = (
      aws_iam_role_policy_attachment.apply_power_user["dev"].policy_arn == "arn:aws:iam::aws:policy/PowerUserAccess" &&
      !anytrue([for s in data.aws_iam_policy_document.apply["dev"].statement : s.effect == "Deny" && contains(s.actions, "secretsmanager:GetRandomPassword")])
    )
    error_message = "The apply role's base is PowerUserAccess (everything but IAM, the password generator's GetRandomPassword included), which nothing denies."
  }

  assert {
    condition = toset(flatten([
      for s in data.aws_iam_policy_document.apply["dev"].statement : tolist(s.resources)
      if s.effect == "Allow" && anytrue([for a in s.actions : startswith(a, "iam:") && !contains(["iam:GetOpenIDConnectProvider", "iam:ListOpenIDConnectProviders"], a)])
      ])) == toset([
      "arn:aws:iam::123456789012:role/rates-dev-*",
      "arn:aws:iam::123456789012:role/rates-ci/rates-dev-github-deploy",
    ])
    error_message = "IAM rights of the dev apply role cover the dev roles and the dev deploy role only."
  }

  assert {
    condition = [for s in data.aws_iam_policy_document.apply["dev"].statement : s.resources if s.sid == "NotTheOtherEnvironmentsState"] == [
      toset([
        "arn:aws:s3:::rates-tfstate-123456789012-eu-central-1/env/staging/*",
        "arn:aws:s3:::rates-tfstate-123456789012-eu-central-1/env/prod/*",
        "arn:aws:s3:::rates-tfstate-123456789012-eu-central-1/rates.tfstate",
      ])
    ]
    error_message = "The dev apply role must be denied writes to the other workspaces' state."
  }

  assert {
    condition = toset(flatten([
      for s in data.aws_iam_policy_document.apply["dev"].statement : tolist(s.actions)
      if s.effect == "Allow" && contains(s.resources, "arn:aws:iam::123456789012:role/rates-ci/rates-dev-github-deploy")
      ])) == toset([
      "iam:GetRole", "iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies"
    ])
    error_message = "The apply role may set the deploy role's permissions, never its trust."
  }
}

# The apply role of an environment cannot make a role more than the environment's boundary
# allows: every statement that lets it create a role or give one permissions (CreateRole,
# PutRolePermissionsBoundary, PutRolePolicy, AttachRolePolicy) requires the boundary on the
# role, explicit denies refuse a role created or re-bounded with another one, every role it can
# pass is one of those, and it can neither remove a boundary nor edit the boundary policies.
run "apply_role_grants_permissions_only_within_the_boundary" {
  command = plan

  assert {
    condition = (
      local.boundary_arns["dev"] == "arn:aws:iam::123456789012:policy/rates-ci/rates-dev-boundary" &&
      aws_iam_policy.boundary["dev"].name == "rates-dev-boundary" &&
      aws_iam_policy.boundary["dev"].path == "/rates-ci/" &&
      keys(aws_iam_policy.boundary) == ["dev", "prod", "staging"]
    )
    error_message = "Each environment has its boundary policy rates-<env>-boundary under /rates-ci/, outside what an apply role may manage."
  }

  assert {
    condition = alltrue(flatten([
      for env in ["dev", "staging", "prod"] : [
        for s in data.aws_iam_policy_document.apply[env].statement : [
          for c in s.condition : c.test == "StringEquals" && c.variable == "iam:PermissionsBoundary" && c.values == tolist([local.boundary_arns[env]])
        ] if s.effect == "Allow" && length(setintersection(s.actions, ["iam:CreateRole", "iam:PutRolePermissionsBoundary", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:*"])) > 0
      ]
      ])) && alltrue([
      for env in ["dev", "staging", "prod"] : alltrue([
        for s in data.aws_iam_policy_document.apply[env].statement :
        length(s.condition) == 1 if s.effect == "Allow" && length(setintersection(s.actions, ["iam:CreateRole", "iam:PutRolePermissionsBoundary", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:*"])) > 0
      ])
    ])
    error_message = "Every allow to create a role or give one permissions must require the environment's own boundary on it."
  }

  assert {
    condition = alltrue([
      for env in ["dev", "staging", "prod"] : (
        [for s in data.aws_iam_policy_document.apply[env].statement : [s.effect, s.resources, [for c in s.condition : [c.test, c.variable, c.values]]] if s.sid == "NoRoleWithoutTheBoundary"] == [
          ["Deny", toset(["*"]), [["StringNotEquals", "iam:PermissionsBoundary", tolist([local.boundary_arns[env]])]]]
        ] &&
        [for s in data.aws_iam_policy_document.apply[env].statement : s.actions if s.sid == "NoRoleWithoutTheBoundary"] == [toset(["iam:CreateRole", "iam:PutRolePermissionsBoundary"])]
      )
    ])
    error_message = "A role created or re-bounded with any other boundary, or none, must be denied."
  }

  assert {
    condition = alltrue([
      for env in ["dev", "staging", "prod"] : (
        contains([for s in data.aws_iam_policy_document.apply[env].statement : s.effect == "Deny" && s.resources == toset(["*"]) if contains(s.actions, "iam:DeleteRolePermissionsBoundary")], true) &&
        contains([
          for s in data.aws_iam_policy_document.apply[env].statement :
          s.effect == "Deny" && s.resources == toset(values(local.boundary_arns)) && length(setsubtract(["iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion", "iam:DeletePolicy", "iam:DeletePolicyVersion"], s.actions)) == 0
          if contains(s.actions, "iam:CreatePolicyVersion")
        ], true) &&
        !anytrue([
          for s in data.aws_iam_policy_document.apply[env].statement :
          s.effect == "Allow" && length(setintersection(s.actions, ["iam:DeleteRolePermissionsBoundary", "iam:CreatePolicy", "iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion", "iam:*"])) > 0
        ])
      )
    ])
    error_message = "The apply role may neither remove a role's boundary nor edit or replace any boundary policy."
  }

  assert {
    condition = alltrue([
      for env in ["dev", "staging", "prod"] : toset(flatten([
        for s in data.aws_iam_policy_document.apply[env].statement : tolist(s.resources) if s.effect == "Allow" && contains(s.actions, "iam:PassRole")
        ])) == toset(flatten([
        for s in data.aws_iam_policy_document.apply[env].statement : tolist(s.resources) if s.sid == "EnvironmentRolesOnlyWithTheBoundary"
      ]))
    ])
    error_message = "The apply role may pass only roles it can create with the boundary alone."
  }

  assert {
    condition = alltrue([
      for env in ["dev", "staging", "prod"] : aws_iam_role.deploy[env].permissions_boundary == "arn:aws:iam::123456789012:policy/rates-ci/mocked-boundary"
    ])
    error_message = "The deploy roles, whose policy the apply role writes, carry the boundary."
  }

  assert {
    condition = alltrue([
      for env in ["dev", "staging", "prod"] : (
        [for s in data.aws_iam_policy_document.boundary[env].statement : [s.effect, s.not_actions, s.resources] if s.not_actions != null] == [
          ["Allow", toset(["iam:*", "organizations:*", "account:*"]), toset(["*"])]
        ] &&
        [for s in data.aws_iam_policy_document.boundary[env].statement : [s.actions, s.resources, [for c in s.condition : [c.test, c.variable, c.values]]] if s.actions != null] == [
          [toset(["iam:PassRole"]), toset(["arn:aws:iam::123456789012:role/rates-${env}-*"]), [["StringEquals", "iam:PassedToService", tolist(["ecs-tasks.amazonaws.com"])]]]
        ]
      )
    ])
    error_message = "Within the boundary, a role can do nothing in IAM except pass the environment's roles to ECS tasks."
  }
}

run "outputs_are_the_github_variables" {
  command = plan

  variables {
    environments = ["prod"]
  }

  assert {
    condition = (
      keys(output.github_variables.repository) == ["AWS_REGION", "AWS_TERRAFORM_PLAN_ROLE_ARN", "TF_BACKEND_CONFIG"] &&
      output.github_variables.repository.AWS_REGION == "eu-central-1" &&
      keys(output.github_variables.environments) == ["prod"] &&
      keys(output.github_variables.environments["prod"]) == ["AWS_DEPLOY_ROLE_ARN", "AWS_TERRAFORM_ROLE_ARN"]
    )
    error_message = "github_variables lists exactly the repository and environment variables the workflows read."
  }

  assert {
    condition     = output.environments_tfvars == "environments = {\n  prod = { region = \"eu-central-1\", account_id = \"123456789012\" }\n}\n"
    error_message = "environments_tfvars pins each environment of this account to its region and account."
  }
}

# .ci/terraform-checks.sh runs `terraform fmt -check` on the environments_tfvars of every run
# here; this one has names of different lengths, whose = fmt aligns.
run "environments_tfvars_of_several_environments" {
  command = plan

  variables {
    environments = ["dev", "staging", "prod"]
  }

  assert {
    condition     = output.environments_tfvars == "environments = {\n  dev     = { region = \"eu-central-1\", account_id = \"123456789012\" }\n  staging = { region = \"eu-central-1\", account_id = \"123456789012\" }\n  prod    = { region = \"eu-central-1\", account_id = \"123456789012\" }\n}\n"
    error_message = "environments_tfvars lists every environment, aligned as terraform fmt aligns it."
  }
}

run "environment_names_are_checked" {
  command = plan

  variables {
    environments = ["dev", "Prod*"]
  }

  expect_failures = [var.environments]
}
