# Plan-level tests of the whole stack, one run per workspace setting, with a mocked AWS provider.
# The root module passes terraform.workspace as `environment`; here each run sets it directly.
#
# Security group IDs, the password parameter's ARN and the key's ARN are only known after apply;
# the overrides below make them known during plan so that the wiring between modules can be checked.

mock_provider "aws" {
  mock_data "aws_availability_zones" {
    defaults = {
      names = ["eu-central-1a", "eu-central-1b", "eu-central-1c"]
    }
  }

  mock_data "aws_region" {
    defaults = {
      name = "eu-central-1"
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
}

override_resource {
  target          = module.service.aws_security_group.this
  override_during = plan
  values = {
    id = "sg-0service0000000000"
  }
}

override_resource {
  target          = module.alb.aws_security_group.this
  override_during = plan
  values = {
    id = "sg-0alb0000000000000"
  }
}

override_resource {
  target          = module.database.aws_security_group.this
  override_during = plan
  values = {
    id = "sg-0database000000000"
  }
}

override_resource {
  target          = module.database.aws_kms_key.this
  override_during = plan
  values = {
    arn = "arn:aws:kms:eu-central-1:123456789012:key/00000000-0000-0000-0000-000000000000"
  }
}

variables {
  # Marker value: .ci/terraform-checks.sh fails if it shows up in the verbose test output.
  db_master_password = "NeverInPlanMarker0123456789abcdef"
}

run "dev" {
  command = plan

  variables {
    environment = "dev"
  }

  override_resource {
    target          = module.database.aws_ssm_parameter.password
    override_during = plan
    values = {
      arn = "arn:aws:ssm:eu-central-1:123456789012:parameter/rates/dev/db/password"
    }
  }

  assert {
    condition = output.names == {
      prefix                 = "rates-dev"
      ecs_cluster            = "rates-dev"
      ecs_service            = "rates-dev-api"
      task_definition_family = "rates-dev-api"
      container              = "rates"
      ecr_repository         = "rates-dev"
      log_group              = "/ecs/rates-dev"
      db_password_parameter  = "/rates/dev/db/password"
      db_instance            = "rates-dev"
      load_balancer          = "rates-dev"
    }
    error_message = "The names must follow the naming contract."
  }

  assert {
    condition = (
      output.ecs_cluster_name == "rates-dev" &&
      output.ecs_service_name == "rates-dev-api" &&
      output.task_definition_family == "rates-dev-api" &&
      output.container_name == "rates" &&
      output.log_group_name == "/ecs/rates-dev" &&
      output.db_password_parameter_name == "/rates/dev/db/password"
    )
    error_message = "The resources must carry the contract's names."
  }

  assert {
    condition     = module.database.instance_settings.publicly_accessible == false && module.database.instance_settings.storage_encrypted == true
    error_message = "The database must be private and encrypted."
  }

  assert {
    condition     = module.database.allowed_security_group_ids == { service = "sg-0service0000000000" }
    error_message = "Only the service's security group may reach the database."
  }

  assert {
    condition     = module.service.assign_public_ip == false
    error_message = "Tasks must not get a public IP."
  }

  assert {
    condition = (
      module.database.instance_settings.multi_az == false &&
      module.database.instance_settings.deletion_protection == false &&
      module.database.instance_settings.skip_final_snapshot == true
    )
    error_message = "dev runs without multi-AZ, deletion protection or final snapshot."
  }

  assert {
    condition = (
      module.service.desired_count == 1 &&
      module.service.autoscaling_min_capacity == 1 &&
      module.service.autoscaling_max_capacity == 2
    )
    error_message = "dev runs 1 task and scales between 1 and 2."
  }

  assert {
    condition     = length(module.network.nat_gateway_ids) == 1
    error_message = "dev shares one NAT gateway."
  }

  assert {
    condition = [
      for s in jsondecode(module.service.task_role_policy).Statement : s.Resource
      if contains(flatten([s.Action]), "ssm:GetParameter")
    ] == ["arn:aws:ssm:eu-central-1:123456789012:parameter/rates/dev/db/password"]
    error_message = "The task role must read exactly the dev password parameter."
  }

  assert {
    condition     = module.database.instance_settings.password_wo_version == 1
    error_message = "The master password is written through the write-only argument, version 1."
  }
}

run "staging" {
  command = plan

  variables {
    environment = "staging"
  }

  assert {
    condition     = output.ecs_service_name == "rates-staging-api" && output.db_password_parameter_name == "/rates/staging/db/password"
    error_message = "The names must follow the workspace."
  }

  assert {
    condition = (
      module.database.instance_settings.multi_az == false &&
      module.database.instance_settings.deletion_protection == true &&
      module.database.instance_settings.skip_final_snapshot == false
    )
    error_message = "staging keeps deletion protection and a final snapshot, without multi-AZ."
  }

  assert {
    condition = (
      module.service.desired_count == 2 &&
      module.service.autoscaling_min_capacity == 2 &&
      module.service.autoscaling_max_capacity == 4
    )
    error_message = "staging runs 2 tasks and scales between 2 and 4."
  }

  assert {
    condition     = module.database.instance_settings.publicly_accessible == false && module.service.assign_public_ip == false
    error_message = "Neither the database nor the tasks may be public."
  }
}

run "prod" {
  command = plan

  variables {
    environment     = "prod"
    certificate_arn = "arn:aws:acm:eu-central-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
  }

  override_resource {
    target          = module.database.aws_ssm_parameter.password
    override_during = plan
    values = {
      arn = "arn:aws:ssm:eu-central-1:123456789012:parameter/rates/prod/db/password"
    }
  }

  assert {
    condition = (
      module.database.instance_settings.multi_az == true &&
      module.database.instance_settings.deletion_protection == true &&
      module.database.instance_settings.skip_final_snapshot == false &&
      module.database.instance_settings.final_snapshot_identifier == "rates-prod-final"
    )
    error_message = "prod needs multi-AZ, deletion protection and a final snapshot."
  }

  assert {
    condition = (
      module.service.desired_count == 3 &&
      module.service.autoscaling_min_capacity == 3 &&
      module.service.autoscaling_max_capacity == 12
    )
    error_message = "prod runs 3 tasks and scales between 3 and 12."
  }

  assert {
    condition     = length(module.network.nat_gateway_ids) == 3 && length(module.network.private_subnet_ids) == 3
    error_message = "prod spans three zones with one NAT gateway each."
  }

  assert {
    condition     = module.database.instance_settings.publicly_accessible == false && module.database.instance_settings.storage_encrypted == true
    error_message = "The database must be private and encrypted."
  }

  assert {
    condition     = module.database.allowed_security_group_ids == { service = "sg-0service0000000000" }
    error_message = "Only the service's security group may reach the database."
  }

  assert {
    condition     = module.service.assign_public_ip == false
    error_message = "Tasks must not get a public IP."
  }

  assert {
    condition = [
      for s in jsondecode(module.service.task_role_policy).Statement : s.Resource
      if contains(flatten([s.Action]), "ssm:GetParameter")
    ] == ["arn:aws:ssm:eu-central-1:123456789012:parameter/rates/prod/db/password"]
    error_message = "The task role must read exactly the prod password parameter."
  }

  assert {
    condition     = length([for s in jsondecode(module.service.task_role_policy).Statement : s if s.Resource == "*"]) == 0
    error_message = "prod has no ECS Exec, so the task role has no wildcard statement."
  }
}

run "prod_without_certificate_is_refused" {
  command = plan

  variables {
    environment = "prod"
  }

  expect_failures = [terraform_data.workspace_guard]
}

run "dev_and_staging_are_scaled_down_copies_of_prod" {
  command = plan

  variables {
    environment     = "prod"
    certificate_arn = "arn:aws:acm:eu-central-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
  }

  assert {
    condition     = keys(run.dev.settings) == keys(run.prod.settings) && keys(run.staging.settings) == keys(run.prod.settings)
    error_message = "Every workspace must define the same settings."
  }

  assert {
    condition = alltrue([
      for s in [run.dev.settings, run.staging.settings] :
      s.task_cpu <= run.prod.settings.task_cpu &&
      s.task_memory <= run.prod.settings.task_memory &&
      s.max_capacity <= run.prod.settings.max_capacity &&
      s.az_count <= run.prod.settings.az_count
    ])
    error_message = "dev and staging must not be larger than prod."
  }
}

run "unknown_workspace_is_refused" {
  command = plan

  variables {
    environment = "qa"
  }

  expect_failures = [terraform_data.workspace_guard]
}

run "default_workspace_is_refused" {
  command = plan

  variables {
    environment = "default"
  }

  expect_failures = [terraform_data.workspace_guard]
}
