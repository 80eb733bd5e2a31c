# Root module: one state per workspace (dev, staging, prod). The workspace selects the settings in
# stack/locals.tf; everything is built by ./stack. This file only holds what a test with a mocked
# provider cannot open: the provider configuration and the ephemeral password generator.

# Region and account are settings of the workspace (environments.auto.tfvars, written from the
# bootstrap output environments_tfvars and committed), never per-run inputs: `terraform workspace
# new dev && terraform apply` needs no -var. allowed_account_ids stops any call with credentials of
# another account; the stack also checks region and account against the provider's view and
# names the workspace in its message (stack/main.tf, workspace_guard).
locals {
  placement = lookup(var.environments, terraform.workspace, null)
}

provider "aws" {
  region              = try(local.placement.region, null)
  allowed_account_ids = try([local.placement.account_id], null)

  default_tags {
    tags = {
      project     = "rates"
      environment = terraform.workspace
      managed-by  = "terraform"
    }
  }
}

# A fresh random password on every plan and apply, never stored anywhere by Terraform. It only
# reaches RDS and the SSM parameter when db_master_password_version changes (write-only arguments),
# so an unchanged version keeps the current password. Needs secretsmanager:GetRandomPassword.
ephemeral "aws_secretsmanager_random_password" "db_master" {
  password_length            = 40
  exclude_punctuation        = true
  require_each_included_type = true
}

# The passwords of the API's and the worker's database roles, generated the same way: they only
# reach the write-only values of their SSM parameters, whenever db_role_password_version changes.
ephemeral "aws_secretsmanager_random_password" "db_api" {
  password_length            = 40
  exclude_punctuation        = true
  require_each_included_type = true
}

ephemeral "aws_secretsmanager_random_password" "db_worker" {
  password_length            = 40
  exclude_punctuation        = true
  require_each_included_type = true
}

module "stack" {
  source = "./stack"

  environment  = terraform.workspace
  environments = var.environments

  db_master_password         = ephemeral.aws_secretsmanager_random_password.db_master.random_password
  db_master_password_version = var.db_master_password_version
  db_api_password            = ephemeral.aws_secretsmanager_random_password.db_api.random_password
  db_worker_password         = ephemeral.aws_secretsmanager_random_password.db_worker.random_password
  db_role_password_version   = var.db_role_password_version

  certificate_arn         = var.certificate_arn
  api_domain              = var.api_domain
  alb_ingress_cidr_blocks = var.alb_ingress_cidr_blocks
  image_tag               = var.image_tag
  log_level               = var.log_level
  seed_file               = var.seed_file
  max_range_days          = var.max_range_days

  alarm_email           = var.alarm_email
  db_read_replica_count = var.db_read_replica_count
}
