# Plan-level tests of the database module with a mocked AWS provider.
#
# The master password is an ephemeral variable: Terraform itself refuses to let it reach anything but
# write-only arguments. The tests check that the write-only arguments are the ones used (they are
# always null in a plan) and that the plain `password` argument stays unset. The value below is also
# a marker: .ci/terraform-checks.sh runs the tests with -verbose and fails if it shows up in the
# printed plans.

mock_provider "aws" {}

variables {
  identifier              = "rates-test"
  vpc_id                  = "vpc-0123456789abcdef0"
  subnet_ids              = ["subnet-0000000000000000a", "subnet-0000000000000000b"]
  password_parameter_name = "/rates/test/db/password"
  master_password         = "NeverInPlanMarker0123456789abcdef"

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

run "rejects_a_postgres_version_past_standard_support" {
  command = plan

  variables {
    engine_version = "13"
  }

  expect_failures = [var.engine_version]
}

run "rejects_a_password_rds_would_refuse" {
  command = plan

  variables {
    master_password = "has/slash-and@at-0123456789"
  }

  expect_failures = [var.master_password]
}
