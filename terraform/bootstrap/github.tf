# Identities of CI, once per account, before any workspace exists: the GitHub OIDC provider (an
# account holds one per issuer URL), a read-only plan role for pull requests, and per environment
# an apply role (Terraform) and a deploy role (image and ECS rollout). Workspaces only look the
# provider and the deploy role up; destroying a workspace leaves all of this in place.
#
# Trust is by exact `sub` claim (GitHub's default format), never a wildcard:
#   plan role     repo:<owner>/<name>:pull_request          (same-repository pull requests)
#   apply role    repo:<owner>/<name>:environment:<env>      (jobs of that GitHub environment)
#   deploy role   repo:<owner>/<name>:environment:<env>
# The roles live under the IAM path /rates-ci/, outside the `role/rates-<env>-*` ARNs an apply role
# may manage, so no workspace can rewrite the trust of a CI role.

data "aws_partition" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id

  github_oidc_url = "https://token.actions.githubusercontent.com"
  github_oidc_iss = "token.actions.githubusercontent.com"

  github_oidc_provider_arn = var.create_github_oidc_provider ? one(aws_iam_openid_connect_provider.github[*].arn) : one(data.aws_iam_openid_connect_provider.github[*].arn)

  ci_role_path = "/rates-ci/"

  plan_subject = "repo:${var.github_repository}:pull_request"
  environment_subjects = {
    for env in var.environments : env => "repo:${var.github_repository}:environment:${env}"
  }

  state_objects_arn = "${aws_s3_bucket.state.arn}/*"
  # State objects of each environment (workspace) and of the default workspace.
  environment_state_arn = {
    for env in var.environments : env => "${aws_s3_bucket.state.arn}/${var.workspace_key_prefix}/${env}/*"
  }
  lock_object_arns = [
    "${aws_s3_bucket.state.arn}/${var.workspace_key_prefix}/*/${var.state_key}.tflock",
    "${aws_s3_bucket.state.arn}/${var.state_key}.tflock",
  ]

  # The roles a workspace creates (task, execution and flow-log roles) are named rates-<env>-...
  # at the root path; the CI roles live under /rates-ci/ and never match.
  environment_role_arns = {
    for env in var.environments : env => "arn:${local.partition}:iam::${local.account_id}:role/rates-${env}-*"
  }
  # stack/locals.tf names the same policy (local.names.permissions_boundary).
  boundary_arns = {
    for env in var.environments : env => "arn:${local.partition}:iam::${local.account_id}:policy${local.ci_role_path}rates-${env}-boundary"
  }
}

# No thumbprint_list: for GitHub's issuer IAM validates the certificate against its own trusted
# certificate authorities and ignores configured thumbprints (optional in provider 5.x).
resource "aws_iam_openid_connect_provider" "github" {
  count = var.create_github_oidc_provider ? 1 : 0

  url            = local.github_oidc_url
  client_id_list = ["sts.amazonaws.com"]

  tags = { Name = "github-actions" }

  lifecycle {
    # Every CI role of every project in the account trusts it.
    prevent_destroy = true
  }
}

data "aws_iam_openid_connect_provider" "github" {
  count = var.create_github_oidc_provider ? 0 : 1

  url = local.github_oidc_url
}

# ---------------------------------------------------------------------------------------------
# Trust policies

# One document per trusted GitHub context, keyed like the `sub` claim after the repository
# (`pull_request`, `environment:<env>`; an environment name cannot contain a colon, so no key of
# an environment can be taken for the plan role's). The apply and deploy roles of an environment
# share its document.
locals {
  trust_policies = merge(
    {
      pull_request = { sid = "PullRequestsOfThisRepository", subject = local.plan_subject }
    },
    {
      for env, sub in local.environment_subjects : "environment:${env}" => { sid = "JobsOfTheEnvironment", subject = sub }
    },
  )
}

data "aws_iam_policy_document" "trust" {
  for_each = local.trust_policies

  statement {
    sid     = each.value.sid
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.github_oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.github_oidc_iss}:aud"
      values   = ["sts.amazonaws.com"]
    }

    # Exactly one subject: same-repository pull requests, or the jobs that run in one GitHub
    # environment (its required reviewers and branch rules gate them); branches, tags and the
    # other environments are refused.
    condition {
      test     = "StringEquals"
      variable = "${local.github_oidc_iss}:sub"
      values   = [each.value.subject]
    }
  }
}

# ---------------------------------------------------------------------------------------------
# Plan role: pull requests run their own copy of the workflow and of the Terraform code, so this
# role can read and lock, never write. ReadOnlyAccess covers the describe/list/get calls of a
# refresh; the statements below add the state and GetRandomPassword (the root module's password
# generator runs on every plan) and take back data reads a plan never needs.

data "aws_iam_policy_document" "plan" {
  statement {
    sid       = "ListStateBucket"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.state.arn]
  }

  statement {
    sid       = "ReadState"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = [local.state_objects_arn]
  }

  # S3 native locking writes and deletes `<state key>.tflock` next to the state object.
  statement {
    sid       = "LockState"
    effect    = "Allow"
    actions   = ["s3:PutObject", "s3:DeleteObject"]
    resources = local.lock_object_arns
  }

  statement {
    sid       = "StateKey"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.state.arn]
  }

  # GetRandomPassword has no resource-level permissions: "*" is the only resource AWS accepts.
  statement {
    sid       = "GeneratePassword"
    effect    = "Allow"
    actions   = ["secretsmanager:GetRandomPassword"]
    resources = ["*"]
  }

  # ReadOnlyAccess would let pull-request code read every object (price batches, reports) and
  # secret value of the account: a plan reads none of them.
  statement {
    sid           = "NoDataOutsideTheState"
    effect        = "Deny"
    actions       = ["s3:GetObject", "s3:GetObjectVersion"]
    not_resources = [local.state_objects_arn]
  }

  statement {
    sid       = "NoSecretValues"
    effect    = "Deny"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = ["*"]
  }
}

resource "aws_iam_role" "plan" {
  name                 = "rates-ci-terraform-plan"
  path                 = local.ci_role_path
  description          = "terraform plan of ${var.github_repository} pull requests: read-only, state lock"
  assume_role_policy   = data.aws_iam_policy_document.trust["pull_request"].json
  max_session_duration = 3600
}

resource "aws_iam_role_policy_attachment" "plan_read_only" {
  role       = aws_iam_role.plan.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/ReadOnlyAccess"
}

resource "aws_iam_role_policy" "plan" {
  name   = "terraform-state-read-lock"
  role   = aws_iam_role.plan.id
  policy = data.aws_iam_policy_document.plan.json
}

# ---------------------------------------------------------------------------------------------
# Permissions boundary of an environment: the ceiling of every role its apply role creates (task,
# execution, flow-log roles) and of its deploy role. Whatever policy Terraform puts on such a
# role, it can do nothing in IAM except pass the environment's own roles to ECS tasks: no role of
# the environment can change a policy or create a role. The apply role may create roles and give
# them permissions only with this boundary on them, may not remove it from a role and may not
# edit this policy (the statements of the apply role below), so it cannot make any role, or
# itself through one, more than PowerUserAccess.

data "aws_iam_policy_document" "boundary" {
  for_each = local.environment_subjects

  statement {
    sid         = "EverythingButIdentityAdministration"
    effect      = "Allow"
    not_actions = ["iam:*", "organizations:*", "account:*"]
    resources   = ["*"]
  }

  # The deploy role hands the task roles to ECS; nothing else of IAM passes the boundary.
  statement {
    sid       = "PassTheEnvironmentsRolesToTasks"
    effect    = "Allow"
    actions   = ["iam:PassRole"]
    resources = [local.environment_role_arns[each.key]]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_policy" "boundary" {
  for_each = local.environment_subjects

  name        = "rates-${each.key}-boundary"
  path        = local.ci_role_path
  description = "Permissions boundary of the ${each.key} roles: nothing of IAM but passing the environment's roles to ECS tasks"
  policy      = data.aws_iam_policy_document.boundary[each.key].json
}

# ---------------------------------------------------------------------------------------------
# Apply roles: what `terraform apply` of one workspace needs. PowerUserAccess covers every service
# the stack uses except IAM (secretsmanager:GetRandomPassword of the root module's password
# generator included); IAM is granted for the environment's own roles only
# (`rates-<env>-*` at the root path), permissions only with the environment's boundary on them,
# and the statements at the end deny what the apply role of one environment must never touch:
# the boundary, the other environments' state, the state bucket's settings and key, and the CI
# roles.

data "aws_iam_policy_document" "apply" {
  for_each = local.environment_subjects

  # Whatever gives a role of the environment permissions needs the boundary on it: a role is
  # created with it, or gets it before any policy.
  statement {
    sid    = "EnvironmentRolesOnlyWithTheBoundary"
    effect = "Allow"
    actions = [
      "iam:CreateRole",
      "iam:PutRolePermissionsBoundary",
      "iam:PutRolePolicy",
      "iam:AttachRolePolicy",
    ]
    resources = [local.environment_role_arns[each.key]]

    condition {
      test     = "StringEquals"
      variable = "iam:PermissionsBoundary"
      values   = [local.boundary_arns[each.key]]
    }
  }

  # The rest grants nothing: reading, removing permissions, tags, trust; and passing, which can
  # only hand out a role of the environment, each of which carries the boundary.
  statement {
    sid    = "EnvironmentRoles"
    effect = "Allow"
    actions = [
      "iam:DeleteRole",
      "iam:GetRole",
      "iam:UpdateRole",
      "iam:UpdateRoleDescription",
      "iam:UpdateAssumeRolePolicy",
      "iam:TagRole",
      "iam:UntagRole",
      "iam:ListRoleTags",
      "iam:GetRolePolicy",
      "iam:DeleteRolePolicy",
      "iam:ListRolePolicies",
      "iam:DetachRolePolicy",
      "iam:ListAttachedRolePolicies",
      "iam:ListInstanceProfilesForRole",
      "iam:PassRole",
    ]
    resources = [local.environment_role_arns[each.key]]
  }

  # The workspace attaches the deploy permissions (its own resources' ARNs) to the deploy role
  # bootstrap created with the boundary; it may not change who can assume it.
  statement {
    sid       = "DeployRolePermissions"
    effect    = "Allow"
    actions   = ["iam:PutRolePolicy"]
    resources = [aws_iam_role.deploy[each.key].arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PermissionsBoundary"
      values   = [local.boundary_arns[each.key]]
    }
  }

  statement {
    sid    = "ReadDeployRolePermissions"
    effect = "Allow"
    actions = [
      "iam:GetRole",
      "iam:GetRolePolicy",
      "iam:DeleteRolePolicy",
      "iam:ListRolePolicies",
      "iam:ListAttachedRolePolicies",
    ]
    resources = [aws_iam_role.deploy[each.key].arn]
  }

  statement {
    sid       = "ReadGitHubProvider"
    effect    = "Allow"
    actions   = ["iam:GetOpenIDConnectProvider"]
    resources = [local.github_oidc_provider_arn]
  }

  # Listing has no resource-level permissions ("*" is the only resource AWS accepts); the
  # workspace's data source finds the provider by URL.
  statement {
    sid       = "ListGitHubProvider"
    effect    = "Allow"
    actions   = ["iam:ListOpenIDConnectProviders"]
    resources = ["*"]
  }

  # Explicit denies outrank every allow, including one a later change might add.
  statement {
    sid       = "NoRoleWithoutTheBoundary"
    effect    = "Deny"
    actions   = ["iam:CreateRole", "iam:PutRolePermissionsBoundary"]
    resources = ["*"]

    condition {
      test     = "StringNotEquals"
      variable = "iam:PermissionsBoundary"
      values   = [local.boundary_arns[each.key]]
    }
  }

  statement {
    sid       = "NeverRemoveTheBoundary"
    effect    = "Deny"
    actions   = ["iam:DeleteRolePermissionsBoundary"]
    resources = ["*"]
  }

  statement {
    sid    = "NeverEditTheBoundaries"
    effect = "Deny"
    actions = [
      "iam:CreatePolicyVersion",
      "iam:DeletePolicy",
      "iam:DeletePolicyVersion",
      "iam:SetDefaultPolicyVersion",
      "iam:TagPolicy",
      "iam:UntagPolicy",
    ]
    resources = values(local.boundary_arns)
  }

  statement {
    sid     = "NotTheOtherEnvironmentsState"
    effect  = "Deny"
    actions = ["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"]
    resources = concat(
      [for env, arn in local.environment_state_arn : arn if env != each.key],
      ["${aws_s3_bucket.state.arn}/${var.state_key}"],
    )
  }

  statement {
    sid    = "NotTheStateBucketSettings"
    effect = "Deny"
    actions = [
      "s3:DeleteBucket",
      "s3:DeleteBucketPolicy",
      "s3:PutBucketPolicy",
      "s3:PutBucketVersioning",
      "s3:PutLifecycleConfiguration",
      "s3:PutEncryptionConfiguration",
      "s3:PutBucketPublicAccessBlock",
      "s3:PutBucketOwnershipControls",
    ]
    resources = [aws_s3_bucket.state.arn]
  }

  statement {
    sid    = "NotTheStateKeySettings"
    effect = "Deny"
    actions = [
      "kms:ScheduleKeyDeletion",
      "kms:DisableKey",
      "kms:PutKeyPolicy",
      "kms:DisableKeyRotation",
      "kms:CreateGrant",
    ]
    resources = [aws_kms_key.state.arn]
  }
}

resource "aws_iam_role" "apply" {
  for_each = local.environment_subjects

  name                 = "rates-${each.key}-terraform-apply"
  path                 = local.ci_role_path
  description          = "terraform apply of the ${each.key} workspace from the GitHub environment ${each.key} of ${var.github_repository}"
  assume_role_policy   = data.aws_iam_policy_document.trust["environment:${each.key}"].json
  max_session_duration = 7200
}

resource "aws_iam_role_policy_attachment" "apply_power_user" {
  for_each = local.environment_subjects

  role       = aws_iam_role.apply[each.key].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/PowerUserAccess"
}

resource "aws_iam_role_policy" "apply" {
  for_each = local.environment_subjects

  name   = "environment-iam-and-state-guards"
  role   = aws_iam_role.apply[each.key].id
  policy = data.aws_iam_policy_document.apply[each.key].json
}

# ---------------------------------------------------------------------------------------------
# Deploy roles: trust and boundary only. The workspace attaches the permissions (push to its ECR repository,
# register task definitions, roll its services, pass its task roles) with the exact ARNs of its
# resources (modules/github_oidc); until it is applied, the role can do nothing.

resource "aws_iam_role" "deploy" {
  for_each = local.environment_subjects

  name                 = "rates-${each.key}-github-deploy"
  path                 = local.ci_role_path
  description          = "Deploys ${var.github_repository} to ${each.key} from the GitHub environment ${each.key}; permissions come from the ${each.key} workspace"
  assume_role_policy   = data.aws_iam_policy_document.trust["environment:${each.key}"].json
  max_session_duration = 3600

  # The apply role of the environment writes this role's policy: the boundary keeps whatever it
  # writes there within the environment's ceiling.
  permissions_boundary = aws_iam_policy.boundary[each.key].arn
}
