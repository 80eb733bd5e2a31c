# Plan-level tests of how each task reaches the database: its own role and password parameter,
# TLS with certificate verification, no migration or seed at service start, and seeding only
# where a workspace asks for it. Mocked AWS provider, as in workspaces.tftest.hcl.

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

  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
}

override_resource {
  target          = module.database.aws_kms_key.this
  override_during = plan
  values = {
    arn = "arn:aws:kms:eu-central-1:123456789012:key/00000000-0000-0000-0000-000000000000"
  }
}

override_resource {
  target          = module.database.aws_db_instance.this
  override_during = plan
  values = {
    address = "rates.abcdefghijkl.eu-central-1.rds.amazonaws.com"
  }
}

override_resource {
  target          = module.database.aws_ssm_parameter.password
  override_during = plan
  values = {
    arn = "arn:aws:ssm:eu-central-1:123456789012:parameter/master"
  }
}

override_resource {
  target          = module.database.aws_ssm_parameter.role_password["api"]
  override_during = plan
  values = {
    arn = "arn:aws:ssm:eu-central-1:123456789012:parameter/api"
  }
}

override_resource {
  target          = module.database.aws_ssm_parameter.role_password["worker"]
  override_during = plan
  values = {
    arn = "arn:aws:ssm:eu-central-1:123456789012:parameter/worker"
  }
}

# The container definitions name the image.
override_resource {
  target          = module.ecr.aws_ecr_repository.this
  override_during = plan
  values = {
    arn            = "arn:aws:ecr:eu-central-1:123456789012:repository/rates"
    repository_url = "123456789012.dkr.ecr.eu-central-1.amazonaws.com/rates"
  }
}

# The worker's policy names its bucket, key and queue.
override_resource {
  target          = module.ingest.aws_kms_key.bucket
  override_during = plan
  values = {
    arn = "arn:aws:kms:eu-central-1:123456789012:key/11111111-1111-1111-1111-111111111111"
  }
}

override_resource {
  target          = module.ingest.aws_s3_bucket.this
  override_during = plan
  values = {
    id  = "rates-ingest"
    arn = "arn:aws:s3:::rates-ingest"
  }
}

override_resource {
  target          = module.ingest.aws_sqs_queue.this
  override_during = plan
  values = {
    id  = "https://sqs.eu-central-1.amazonaws.com/123456789012/rates-ingest"
    url = "https://sqs.eu-central-1.amazonaws.com/123456789012/rates-ingest"
    arn = "arn:aws:sqs:eu-central-1:123456789012:rates-ingest"
  }
}

variables {
  # Marker values: .ci/terraform-checks.sh fails if they show up in the verbose test output.
  db_master_password = "NeverInPlanMarker0123456789abcdef"

  # What environments.auto.tfvars holds: the mocked provider answers eu-central-1 and 123456789012.
  environments = {
    dev     = { region = "eu-central-1", account_id = "123456789012" }
    staging = { region = "eu-central-1", account_id = "123456789012" }
    prod    = { region = "eu-central-1", account_id = "123456789012" }
  }
  db_api_password    = "NeverInPlanMarkerApi0123456789"
  db_worker_password = "NeverInPlanMarkerWorker0123456789"
  certificate_arn    = "arn:aws:acm:eu-central-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
}

run "dev" {
  command = plan

  variables {
    environment = "dev"
  }

  assert {
    condition = alltrue([for t in values(output.task_environments) :
      t.DB_SSLMODE == "verify-full" && t.DB_SSLROOTCERT == "/usr/share/rates/rds-ca.pem"
    ])
    error_message = "Every task verifies the database's certificate against the RDS bundle of the image."
  }

  assert {
    condition = (
      output.task_environments.api.DB_USER == "rates_api" &&
      output.task_environments.api.DB_PASSWORD_SSM_PARAMETER == "/rates/dev/db/api-password" &&
      output.task_environments.worker.DB_USER == "rates_worker" &&
      output.task_environments.worker.DB_PASSWORD_SSM_PARAMETER == "/rates/dev/db/worker-password" &&
      output.task_environments.migrate.DB_USER == "rates" &&
      output.task_environments.migrate.DB_PASSWORD_SSM_PARAMETER == "/rates/dev/db/password"
    )
    error_message = "The API and the worker connect with their own roles and passwords; only the migration task uses the master user."
  }

  assert {
    condition = (
      output.task_environments.migrate.DB_API_ROLE == "rates_api" &&
      output.task_environments.migrate.DB_API_PASSWORD_SSM_PARAMETER == "/rates/dev/db/api-password" &&
      output.task_environments.migrate.DB_WORKER_ROLE == "rates_worker" &&
      output.task_environments.migrate.DB_WORKER_PASSWORD_SSM_PARAMETER == "/rates/dev/db/worker-password" &&
      jsondecode(module.migrate.container_definitions)[0].command == ["migrate", "up"]
    )
    error_message = "The migration task migrates, then sets both roles' passwords from their parameters."
  }

  assert {
    condition = alltrue([for name in ["api", "worker"] :
      !contains(keys(output.task_environments[name]), "SEED_FILE") && !contains(keys(output.task_environments[name]), "MIGRATE_ON_START")
    ])
    error_message = "The services neither migrate nor seed at start: both are one-off tasks of the deploy."
  }

  assert {
    condition     = output.task_environments.migrate.SEED_FILE == "/usr/share/rates/rates.sql"
    error_message = "dev seeds the image's synthetic dump through the one-off seed task."
  }

  assert {
    condition = {
      for s in jsondecode(module.migrate.task_role_policy).Statement : s.Sid => s.Resource if contains(s.Action, "ssm:GetParameter")
      } == {
      ReadDatabasePassword     = "arn:aws:ssm:eu-central-1:123456789012:parameter/master"
      ReadAdditionalParameters = ["arn:aws:ssm:eu-central-1:123456789012:parameter/api", "arn:aws:ssm:eu-central-1:123456789012:parameter/worker"]
    }
    error_message = "Only the migration task reads the master password, and the role passwords it sets."
  }

  assert {
    condition = (
      [for s in jsondecode(module.service.task_role_policy).Statement : s.Resource if contains(flatten([s.Action]), "ssm:GetParameter")] == ["arn:aws:ssm:eu-central-1:123456789012:parameter/api"] &&
      [for s in jsondecode(module.ingest.worker_task_role_policy).Statement : s.Resource if contains(flatten([s.Action]), "ssm:GetParameter")] == ["arn:aws:ssm:eu-central-1:123456789012:parameter/worker"]
    )
    error_message = "Each service reads its own password parameter and no other."
  }

  assert {
    condition = (
      output.db_roles.api.password_parameter == "/rates/dev/db/api-password" &&
      output.db_roles.worker.password_parameter == "/rates/dev/db/worker-password" &&
      output.migrate_task_definition_family == "rates-dev-migrate"
    )
    error_message = "The role parameters and the migration task follow the naming contract."
  }
}

run "staging_seeds_nothing" {
  command = plan

  variables {
    environment = "staging"
  }

  assert {
    condition     = output.task_environments.migrate.SEED_FILE == ""
    error_message = "staging holds real data: the seed task imports nothing unless seed_file is set on purpose."
  }
}

run "prod_seeds_nothing" {
  command = plan

  variables {
    environment = "prod"
  }

  assert {
    condition     = output.task_environments.migrate.SEED_FILE == ""
    error_message = "prod holds real data: the seed task imports nothing unless seed_file is set on purpose."
  }

  assert {
    condition     = alltrue([for t in values(output.task_environments) : t.DB_SSLMODE == "verify-full"])
    error_message = "prod verifies the database's certificate in every task."
  }
}

run "staging_seeded_on_purpose" {
  command = plan

  variables {
    environment = "staging"
    seed_file   = "/usr/share/rates/rates.sql"
  }

  assert {
    condition     = output.task_environments.migrate.SEED_FILE == "/usr/share/rates/rates.sql"
    error_message = "seed_file seeds a workspace on purpose."
  }
}
