# Plan-level tests of the database module's read replicas (replicas.tf) with a mocked AWS provider.

mock_provider "aws" {}

variables {
  identifier              = "rates-test"
  vpc_id                  = "vpc-0123456789abcdef0"
  subnet_ids              = ["subnet-0000000000000000a", "subnet-0000000000000000b"]
  password_parameter_name = "/rates/test/db/password"
  master_password         = "NeverInPlanMarker0123456789abcdef"
  instance_class          = "db.m7g.large"

  api_password                   = "NeverInPlanMarkerApi0123456789"
  worker_password                = "NeverInPlanMarkerWorker0123456789"
  api_password_parameter_name    = "/rates/test/db/api-password"
  worker_password_parameter_name = "/rates/test/db/worker-password"

  allowed_security_group_ids = {
    service = "sg-0service0000000000"
  }
}

run "no_replica_by_default" {
  command = plan

  assert {
    condition     = length(aws_db_instance.replica) == 0 && output.replica_addresses == []
    error_message = "Without read_replica_count there is no replica."
  }
}

run "replicas_follow_the_primary_privately_and_encrypted" {
  command = plan

  variables {
    read_replica_count = 2
  }

  assert {
    condition = (
      [for r in aws_db_instance.replica : r.identifier] == ["rates-test-replica-1", "rates-test-replica-2"] &&
      alltrue([for r in aws_db_instance.replica : r.replicate_source_db == "rates-test"])
    )
    error_message = "Replicas are named after the primary and replicate it."
  }

  assert {
    condition = alltrue([
      for r in aws_db_instance.replica :
      r.storage_encrypted && !r.publicly_accessible && r.performance_insights_enabled && r.instance_class == "db.m7g.large"
    ])
    error_message = "Replicas are private and encrypted like the primary, with the primary's class."
  }
}


run "rejects_too_many_replicas" {
  command = plan

  variables {
    read_replica_count = 6
  }

  expect_failures = [var.read_replica_count]
}
