output "role_arn" {
  description = "ARN of the deploy role (created by bootstrap): `role-to-assume` of aws-actions/configure-aws-credentials (GitHub environment variable AWS_DEPLOY_ROLE_ARN)."
  value       = data.aws_iam_role.deploy.arn
}

output "role_name" {
  description = "Name of the deploy role."
  value       = data.aws_iam_role.deploy.name
}

output "oidc_provider_arn" {
  description = "ARN of the account's GitHub OIDC provider (created by bootstrap, looked up here)."
  value       = data.aws_iam_openid_connect_provider.github.arn
}

output "deploy_policy_statements" {
  description = "Statements of the role's permissions policy as configured (for reviews and tests)."
  value       = data.aws_iam_policy_document.deploy.statement
}
