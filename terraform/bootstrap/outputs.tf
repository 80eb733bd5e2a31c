output "bucket_name" {
  description = "Name of the state bucket."
  value       = aws_s3_bucket.state.bucket
}

output "bucket_arn" {
  description = "ARN of the state bucket."
  value       = aws_s3_bucket.state.arn
}

output "kms_key_arn" {
  description = "ARN of the KMS key encrypting the state objects."
  value       = aws_kms_key.state.arn
}

output "backend_config" {
  description = "Contents of ../backend.hcl for `terraform init -backend-config=backend.hcl` in the root module (GitHub variable TF_BACKEND_CONFIG)."
  value       = local.backend_config
}

output "github_oidc_provider_arn" {
  description = "ARN of the account's GitHub OIDC provider every CI role trusts."
  value       = local.github_oidc_provider_arn
}

output "plan_role_arn" {
  description = "ARN of the read-only role of pull-request plans (GitHub repository variable AWS_TERRAFORM_PLAN_ROLE_ARN)."
  value       = aws_iam_role.plan.arn
}

output "apply_role_arns" {
  description = "ARN of the apply role of each environment (GitHub environment variable AWS_TERRAFORM_ROLE_ARN)."
  value       = { for env, role in aws_iam_role.apply : env => role.arn }
}

output "deploy_role_arns" {
  description = "ARN of the deploy role of each environment (GitHub environment variable AWS_DEPLOY_ROLE_ARN)."
  value       = { for env, role in aws_iam_role.deploy : env => role.arn }
}

output "trusted_subjects" {
  description = "GitHub `sub` claims each CI role trusts: the plan role, then the apply and deploy role of each environment."
  value = merge(
    { plan = [local.plan_subject] },
    { for env, sub in local.environment_subjects : "${env}-apply" => [sub] },
    { for env, sub in local.environment_subjects : "${env}-deploy" => [sub] },
  )
}

output "github_variables" {
  description = "Every GitHub Actions variable the workflows need, with its value: `repository` (repository variables) and `environments` (per GitHub environment). Print with `terraform output -json github_variables`."
  value = {
    repository = {
      AWS_REGION                  = var.region
      TF_BACKEND_CONFIG           = local.backend_config
      AWS_TERRAFORM_PLAN_ROLE_ARN = aws_iam_role.plan.arn
    }
    environments = {
      for env in var.environments : env => {
        AWS_TERRAFORM_ROLE_ARN = aws_iam_role.apply[env].arn
        AWS_DEPLOY_ROLE_ARN    = aws_iam_role.deploy[env].arn
      }
    }
  }
}

output "environments_tfvars" {
  description = "Region and account of each environment of this account, as ../environments.auto.tfvars (committed): the root module reads the settings of the selected workspace from it. Written as terraform fmt writes it, so the file passes `terraform fmt -check` as it is."
  value = join("", concat(
    ["environments = {\n"],
    # terraform fmt aligns the = of the entries: each name is padded to the longest.
    [for env in var.environments : format("  %-${max([for e in var.environments : length(e)]...)}s = { region = %q, account_id = %q }\n", env, var.region, local.account_id)],
    ["}\n"],
  ))
}
