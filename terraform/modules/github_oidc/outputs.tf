output "role_arn" {
  description = "ARN of the deploy role: `role-to-assume` of aws-actions/configure-aws-credentials (GitHub variable AWS_DEPLOY_ROLE_ARN)."
  value       = aws_iam_role.deploy.arn
}

output "role_name" {
  description = "Name of the deploy role."
  value       = aws_iam_role.deploy.name
}

output "oidc_provider_arn" {
  description = "ARN of the GitHub OIDC provider the role trusts (created here, or the one passed in)."
  value       = local.oidc_provider_arn
}

output "trusted_subjects" {
  description = "`sub` claims allowed to assume the role (the deploy branch, then the environments)."
  value       = local.trusted_subjects
}

output "trust_policy_statements" {
  description = "Statements of the role's trust policy as configured (for reviews and tests)."
  value       = data.aws_iam_policy_document.trust.statement
}

output "deploy_policy_statements" {
  description = "Statements of the role's permissions policy as configured (for reviews and tests)."
  value       = data.aws_iam_policy_document.deploy.statement
}
