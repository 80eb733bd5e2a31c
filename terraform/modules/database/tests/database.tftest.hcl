# Plan-level tests of the database module with a mocked AWS provider.
#
# The master password is an ephemeral variable: Terraform itself refuses to let it reach anything but
# write-only arguments. The tests check that the write-only arguments are the ones used (they are
# always null in a plan) and that the plain `password` argument stays unset. The value below is also
# a marker: .ci/terraform-checks.sh runs the tests with -verbose and fails if it shows up in the
# printed plans.

mock_provider "aws" {
  # The instance validates its key ARNs, which the applies below need to be well-formed.
  mock_resource "aws_kms_key" {
    defaults = {
      arn = "arn:aws:kms:eu-central-1:111122223333:key/00000000-0000-0000-0000-000000000000"
    }
  }
}

variables {
  identifier              = "rates-test"
  vpc_id                  = "vpc-0123456789abcdef0"
  subnet_ids              = ["subnet-0000000000000000a", "subnet-0000000000000000b"]
  password_parameter_name = "/rates/test/db/password"
  master_password         = "NeverInPlanMarker0123456789abcdef"

  api_password                   = "NeverInPlanMarkerApi0123456789"
  worker_password                = "NeverInPlanMarkerWorker0123456789"
  api_password_parameter_name    = "/rates/test/db/api-password"
  worker_password_parameter_name = "/rates/test/db/worker-password"

  allowed_security_group_ids = {
    service = "sg-0service0000000000"
  }
}

run "private_and_encrypted" {
  command = plan

  assert {
    condition     = aws_db_instance.this.publicly_accessible == false
    error_message = "The database must not be publicly accessible."
  }

  assert {
    condition     = aws_db_instance.this.storage_encrypted == true
    error_message = "The storage must be encrypted."
  }

  assert {
    condition     = aws_db_instance.this.engine == "postgres" && aws_db_instance.this.engine_version == "17"
    error_message = "The default engine must be PostgreSQL 17."
  }

  assert {
    condition     = aws_db_instance.this.performance_insights_enabled == true
    error_message = "Performance Insights must be on."
  }

  assert {
    condition     = aws_db_instance.this.backup_retention_period >= 1
    error_message = "Automated backups must be on."
  }
}

run "reachable_only_from_the_allowed_security_group" {
  command = plan

  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.postgres) == 1
    error_message = "There must be exactly one ingress rule."
  }

  assert {
    condition = (
      aws_vpc_security_group_ingress_rule.postgres["service"].referenced_security_group_id == "sg-0service0000000000" &&
      aws_vpc_security_group_ingress_rule.postgres["service"].cidr_ipv4 == null &&
      aws_vpc_security_group_ingress_rule.postgres["service"].from_port == 5432 &&
      aws_vpc_security_group_ingress_rule.postgres["service"].to_port == 5432
    )
    error_message = "The only ingress rule must admit the service's security group on 5432, and no address range."
  }
}

run "tls_is_required" {
  command = plan

  assert {
    condition     = aws_db_parameter_group.this.family == "postgres17"
    error_message = "The parameter group family must follow the engine's major version."
  }

  assert {
    condition     = anytrue([for p in aws_db_parameter_group.this.parameter : p.name == "rds.force_ssl" && p.value == "1"])
    error_message = "The parameter group must set rds.force_ssl = 1."
  }
}

run "password_is_write_only" {
  command = plan

  assert {
    condition     = aws_db_instance.this.password == null && aws_db_instance.this.password_wo == null
    error_message = "The DB instance must not carry the password in its planned values."
  }

  assert {
    condition     = aws_db_instance.this.password_wo_version == 1
    error_message = "The password version must default to 1."
  }

  assert {
    condition     = aws_db_instance.this.manage_master_user_password == null
    error_message = "The password is managed through the SSM parameter, not by RDS."
  }

  assert {
    condition = (
      aws_ssm_parameter.password.type == "SecureString" &&
      aws_ssm_parameter.password.name == "/rates/test/db/password" &&
      aws_ssm_parameter.password.value_wo == null
    )
    error_message = "The password parameter must be a SecureString without a value in the plan."
  }

  assert {
    condition     = aws_ssm_parameter.password.value_wo_version == aws_db_instance.this.password_wo_version
    error_message = "RDS and the parameter must share one password version."
  }
}

run "rotation_bumps_both_versions" {
  command = plan

  variables {
    master_password_version = 2
  }

  assert {
    condition     = aws_db_instance.this.password_wo_version == 2 && aws_ssm_parameter.password.value_wo_version == 2
    error_message = "A new password version must reach RDS and the parameter together."
  }
}

run "production_protections" {
  command = plan

  variables {
    multi_az            = true
    deletion_protection = true
    skip_final_snapshot = false
  }

  assert {
    condition     = aws_db_instance.this.multi_az && aws_db_instance.this.deletion_protection
    error_message = "Multi-AZ and deletion protection must follow the variables."
  }

  assert {
    condition     = aws_db_instance.this.skip_final_snapshot == false && aws_db_instance.this.final_snapshot_identifier == "rates-test-final"
    error_message = "A destroy must leave a final snapshot."
  }
}

run "development_without_protections" {
  command = plan

  variables {
    multi_az            = false
    deletion_protection = false
    skip_final_snapshot = true
  }

  assert {
    condition     = !aws_db_instance.this.multi_az && !aws_db_instance.this.deletion_protection
    error_message = "Multi-AZ and deletion protection must be off."
  }

  assert {
    condition     = aws_db_instance.this.skip_final_snapshot && aws_db_instance.this.final_snapshot_identifier == null
    error_message = "No final snapshot is requested."
  }
}


run "rejects_a_password_rds_would_refuse" {
  command = plan

  variables {
    master_password = "has/slash-and@at-0123456789"
  }

  expect_failures = [var.master_password]
}

run "role_passwords_in_their_own_write_only_parameters" {
  command = plan

  assert {
    condition = (
      aws_ssm_parameter.role_password["api"].name == "/rates/test/db/api-password" &&
      aws_ssm_parameter.role_password["worker"].name == "/rates/test/db/worker-password"
    )
    error_message = "Each role's password must have its own parameter."
  }

  assert {
    condition = alltrue([for k, p in aws_ssm_parameter.role_password :
      p.type == "SecureString" && p.value_wo == null && p.value_wo_version == 1
    ])
    error_message = "The role password parameters must be SecureStrings with write-only values (never in the plan)."
  }

  assert {
    condition     = output.api_role_name == "rates_api" && output.worker_role_name == "rates_worker"
    error_message = "The login roles must default to rates_api and rates_worker."
  }
}

run "rejects_a_role_password_with_punctuation" {
  command = plan

  variables {
    api_password = "quote'in-the-password-0123456789"
  }

  expect_failures = [var.api_password]
}

# Instance replacement: the applies below use the mocked provider, whose computed values (ARNs,
# IDs) are new for every object it creates, so a changed ARN shows a replaced parameter.
run "first_apply" {
  command = apply
}

run "instance_replacement_replaces_the_master_password_parameter" {
  command = apply

  plan_options {
    replace = [aws_db_instance.this]
  }

  assert {
    condition     = output.password_parameter_arn != run.first_apply.password_parameter_arn
    error_message = "A replaced instance gets the password generated in that apply; the parameter must be written with it (replaced), or every task is locked out."
  }

  assert {
    condition     = aws_ssm_parameter.password.value_wo_version == aws_db_instance.this.password_wo_version
    error_message = "RDS and the parameter must still share one password version."
  }

  assert {
    condition = (
      output.api_password_parameter_arn == run.first_apply.api_password_parameter_arn &&
      output.worker_password_parameter_arn == run.first_apply.worker_password_parameter_arn
    )
    error_message = "The role passwords stay: the migration task sets them on the new instance."
  }
}

run "in_place_change_keeps_the_master_password_parameter" {
  command = apply

  variables {
    instance_class = "db.t4g.small"
  }

  assert {
    condition     = output.password_parameter_arn == run.instance_replacement_replaces_the_master_password_parameter.password_parameter_arn
    error_message = "An in-place change of the instance must not rewrite the password parameter (RDS keeps its password)."
  }
}
