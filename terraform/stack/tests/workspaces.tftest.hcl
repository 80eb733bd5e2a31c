# Plan-level tests of the whole stack, one run per workspace setting, with a mocked AWS provider.
# The root module passes terraform.workspace as `environment`; here each run sets it directly.
#
# Security group IDs, the password parameter's ARN and the key's ARN are only known after apply;
# the overrides below make them known during plan so that the wiring between modules can be checked.
#
# The runs also check how each task reaches the database: its own role and password parameter,
# TLS with certificate verification, no migration or seed at service start, and seeding only where
# a workspace asks for it.

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

  # A mocked provider does not render policy documents; an empty policy passes the roles' argument
  # validation. The deploy role's statements are checked through module.github_oidc's outputs.
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }

  # Created by bootstrap (see bootstrap/tests), only looked up by the workspace.
  mock_data "aws_iam_openid_connect_provider" {
    defaults = {
      arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    }
  }

  mock_data "aws_iam_role" {
    defaults = {
      arn = "arn:aws:iam::123456789012:role/rates-ci/rates-deploy-from-bootstrap"
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

override_resource {
  target          = module.ingest.aws_kms_key.bucket
  override_during = plan
  values = {
    arn = "arn:aws:kms:eu-central-1:123456789012:key/11111111-1111-1111-1111-111111111111"
  }
}

override_resource {
  target          = module.ingest.aws_security_group.worker
  override_during = plan
  values = {
    id = "sg-0worker0000000000"
  }
}

override_resource {
  target          = module.alb.aws_s3_bucket.access_logs
  override_during = plan
  values = {
    id  = "rates-dev-alb-logs-20260101000000000000000001"
    arn = "arn:aws:s3:::rates-dev-alb-logs-20260101000000000000000001"
  }
}

variables {
  # Marker value: .ci/terraform-checks.sh fails if it shows up in the verbose test output.
  db_master_password = "NeverInPlanMarker0123456789abcdef"

  # What environments.auto.tfvars holds: the mocked provider answers eu-central-1 and 123456789012.
  environments = {
    dev     = { region = "eu-central-1", account_id = "123456789012" }
    staging = { region = "eu-central-1", account_id = "123456789012" }
    prod    = { region = "eu-central-1", account_id = "123456789012" }
  }
  db_api_password    = "NeverInPlanMarkerApi0123456789"
  db_worker_password = "NeverInPlanMarkerWorker0123456789"
}

run "dev" {
  command = plan

  variables {
    environment = "dev"
  }

  override_resource {
    target          = module.ingest.aws_s3_bucket.this
    override_during = plan
    values = {
      id  = "rates-dev-ingest-123456789012-eu-central-1"
      arn = "arn:aws:s3:::rates-dev-ingest-123456789012-eu-central-1"
    }
  }

  override_resource {
    target          = module.ingest.aws_sqs_queue.this
    override_during = plan
    values = {
      id  = "https://sqs.eu-central-1.amazonaws.com/123456789012/rates-dev-ingest"
      url = "https://sqs.eu-central-1.amazonaws.com/123456789012/rates-dev-ingest"
      arn = "arn:aws:sqs:eu-central-1:123456789012:rates-dev-ingest"
    }
  }

  override_resource {
    target          = module.database.aws_ssm_parameter.password
    override_during = plan
    values = {
      arn = "arn:aws:ssm:eu-central-1:123456789012:parameter/rates/dev/db/password"
    }
  }

  override_resource {
    target          = module.database.aws_ssm_parameter.role_password["api"]
    override_during = plan
    values = {
      arn = "arn:aws:ssm:eu-central-1:123456789012:parameter/rates/dev/db/api-password"
    }
  }

  override_resource {
    target          = module.database.aws_ssm_parameter.role_password["worker"]
    override_during = plan
    values = {
      arn = "arn:aws:ssm:eu-central-1:123456789012:parameter/rates/dev/db/worker-password"
    }
  }

  # The container definitions name the image and the database host.
  override_resource {
    target          = module.database.aws_db_instance.this
    override_during = plan
    values = {
      address = "rates-dev.abcdefghijkl.eu-central-1.rds.amazonaws.com"
    }
  }

  override_resource {
    target          = module.ecr.aws_ecr_repository.this
    override_during = plan
    values = {
      arn            = "arn:aws:ecr:eu-central-1:123456789012:repository/rates-dev"
      repository_url = "123456789012.dkr.ecr.eu-central-1.amazonaws.com/rates-dev"
    }
  }

  override_resource {
    target          = module.alb.aws_lb.this
    override_during = plan
    values = {
      arn        = "arn:aws:elasticloadbalancing:eu-central-1:123456789012:loadbalancer/app/rates-dev/0123456789abcdef"
      arn_suffix = "app/rates-dev/0123456789abcdef"
      dns_name   = "rates-dev-1234567890.eu-central-1.elb.amazonaws.com"
    }
  }

  assert {
    condition     = output.api_url == "http://rates-dev-1234567890.eu-central-1.elb.amazonaws.com"
    error_message = "Without a domain, the API (and the smoke test) use the load balancer's own name over plain HTTP."
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

      db_api_role                    = "rates_api"
      db_worker_role                 = "rates_worker"
      db_api_password_parameter      = "/rates/dev/db/api-password"
      db_worker_password_parameter   = "/rates/dev/db/worker-password"
      migrate_task_definition_family = "rates-dev-migrate"
      migrate_log_group              = "/ecs/rates-dev-migrate"

      worker_service                = "rates-dev-worker"
      worker_task_definition_family = "rates-dev-worker"
      worker_log_group              = "/ecs/rates-dev-worker"
      ingest_queue                  = "rates-dev-ingest"
      ingest_dlq                    = "rates-dev-ingest-dlq"

      alarm_topic          = "rates-dev-alarms"
      dashboard            = "rates-dev"
      github_deploy_role   = "rates-dev-github-deploy"
      permissions_boundary = "rates-dev-boundary"
    }
    error_message = "The names must follow the naming contract."
  }

  assert {
    condition     = local.permissions_boundary_arn == "arn:aws:iam::123456789012:policy/rates-ci/rates-dev-boundary"
    error_message = "Every role of the workspace carries the boundary bootstrap created for it (modules/ecs_task and modules/network require one)."
  }

  assert {
    condition = (
      output.worker_service_name == "rates-dev-worker" &&
      output.worker_task_definition_family == "rates-dev-worker" &&
      output.worker_log_group_name == "/ecs/rates-dev-worker" &&
      module.ingest.worker_container_name == "rates" &&
      module.ingest.queue_name == "rates-dev-ingest" &&
      module.ingest.dlq_name == "rates-dev-ingest-dlq" &&
      module.monitoring.topic_name == "rates-dev-alarms" &&
      output.dashboard_name == "rates-dev" &&
      module.github_oidc.role_name == "rates-dev-github-deploy"
    )
    error_message = "The ingestion, monitoring and deploy resources must carry the contract's names."
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
    condition     = module.database.allowed_security_group_ids == { service = "sg-0service0000000000", worker = "sg-0worker0000000000" }
    error_message = "Only the API's and the worker's security groups may reach the database."
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
    ] == ["arn:aws:ssm:eu-central-1:123456789012:parameter/rates/dev/db/api-password"]
    error_message = "The API's task role must read exactly the dev API role's password parameter."
  }

  assert {
    condition     = module.database.instance_settings.password_wo_version == 1
    error_message = "The master password is written through the write-only argument, version 1."
  }

  assert {
    condition = (
      module.ingest.worker_assign_public_ip == false &&
      module.ingest.worker_desired_count == 0 &&
      module.ingest.worker_autoscaling_min_capacity == 0 &&
      module.ingest.worker_autoscaling_max_capacity == 1
    )
    error_message = "dev runs the worker without public IP, from 0 up to 1 task."
  }

  assert {
    condition = [
      for s in jsondecode(module.ingest.worker_task_role_policy).Statement : s.Resource
      if contains(flatten([s.Action]), "ssm:GetParameter")
    ] == ["arn:aws:ssm:eu-central-1:123456789012:parameter/rates/dev/db/worker-password"]
    error_message = "The worker must read exactly the dev worker role's password parameter."
  }

  assert {
    condition = [
      for s in jsondecode(module.ingest.queue_policy).Statement : [s.Principal, s.Action, s.Condition]
      if s.Effect == "Allow"
      ] == [[
        { Service = "s3.amazonaws.com" },
        "sqs:SendMessage",
        {
          ArnEquals    = { "aws:SourceArn" = "arn:aws:s3:::rates-dev-ingest-123456789012-eu-central-1" }
          StringEquals = { "aws:SourceAccount" = "123456789012" }
        },
    ]]
    error_message = "Only S3 may send to the queue, for the dev ingestion bucket only."
  }

  assert {
    condition     = output.ingest_bucket_name == "rates-dev-ingest-123456789012-eu-central-1"
    error_message = "The bucket is named after the environment, the account and the region."
  }

  assert {
    condition = (
      output.github_oidc_provider_arn == "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com" &&
      output.github_deploy_role_arn == "arn:aws:iam::123456789012:role/rates-ci/rates-deploy-from-bootstrap" &&
      module.github_oidc.role_name == "rates-dev-github-deploy"
    )
    error_message = "dev looks up the account's provider and its deploy role from bootstrap and creates neither."
  }

  assert {
    condition     = output.region == "eu-central-1" && output.account_id == "123456789012"
    error_message = "The workspace's region and account come from var.environments."
  }

  assert {
    condition = alltrue(flatten([
      for s in module.github_oidc.deploy_policy_statements : [for a in s.actions : !strcontains(a, "*")]
    ]))
    error_message = "No statement of the deploy policy may use a wildcard action."
  }

  assert {
    condition     = length(output.alarm_names) == 25 && alltrue([for n in values(output.alarm_names) : startswith(n, "rates-dev-")])
    error_message = "dev has the full set of alarms, named after the environment."
  }

  assert {
    condition = (
      { for k, v in module.service.container_environment : k => v if startswith(k, "METRICS_EMF_") } == {
        METRICS_EMF_NAMESPACE = module.monitoring.metrics_namespace
        METRICS_EMF_SERVICE   = module.service.service_name
      } &&
      { for k, v in module.ingest.worker_container_environment : k => v if startswith(k, "METRICS_EMF_") } == {
        METRICS_EMF_NAMESPACE = module.monitoring.metrics_namespace
        METRICS_EMF_SERVICE   = module.ingest.worker_service_name
      } &&
      module.monitoring.metrics_namespace == "rates-dev"
    )
    error_message = "Both task definitions publish their metrics into the namespace the monitoring module reads, with their ECS service's name as the Service dimension the alarms use."
  }

  assert {
    condition = alltrue([
      for p in [module.service.task_role_policy, module.ingest.worker_task_role_policy] : alltrue([
        for s in jsondecode(p).Statement : alltrue([for a in flatten([s.Action]) : !startswith(lower(a), "cloudwatch:")])
      ])
    ])
    error_message = "Publishing metrics needs no CloudWatch permission in the task roles."
  }

  assert {
    condition = alltrue([
      for svc in [
        [module.service.execute_command_enabled, module.service.writable_paths],
        [module.ingest.worker_execute_command_enabled, module.ingest.worker_writable_paths],
      ] :
      svc[0] == local.settings.enable_execute_command &&
      svc[0] == (contains(svc[1], "/var/lib/amazon") && contains(svc[1], "/var/log/amazon"))
    ])
    error_message = "ECS Exec is on exactly where the setting says, and wherever it is on both containers have writable volumes for the SSM agent."
  }

  assert {
    condition     = output.vpc_endpoint_ids == {} && output.web_acl_arn == null && length(module.waf) == 0
    error_message = "dev runs without VPC endpoints (NAT only) and without WAF."
  }

  assert {
    condition     = local.task_https_egress == { cidr_block = "0.0.0.0/0", prefix_list_ids = tolist([]) }
    error_message = "Without endpoints the tasks reach the AWS APIs through NAT: HTTPS anywhere."
  }

  assert {
    condition     = output.flow_log_group_name == "/vpc/rates-dev/flow-logs" && startswith(module.alb.access_logs_bucket, "rates-dev-alb-logs-")
    error_message = "Flow logs and access logs are on in every workspace."
  }

  assert {
    condition = (
      !contains(keys(module.service.container_environment), "DB_READ_HOST") &&
      contains(keys(module.service.container_environment), "DB_HOST") &&
      module.database.replica_addresses == []
    )
    error_message = "Without replicas the API reads from the primary (no DB_READ_HOST)."
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
      ReadDatabasePassword = "arn:aws:ssm:eu-central-1:123456789012:parameter/rates/dev/db/password"
      ReadAdditionalParameters = [
        "arn:aws:ssm:eu-central-1:123456789012:parameter/rates/dev/db/api-password",
        "arn:aws:ssm:eu-central-1:123456789012:parameter/rates/dev/db/worker-password",
      ]
    }
    error_message = "Only the migration task reads the master password, and the role passwords it sets."
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

  assert {
    condition = (
      module.ingest.worker_assign_public_ip == false &&
      module.ingest.worker_desired_count == 0 &&
      module.ingest.worker_autoscaling_min_capacity == 0 &&
      module.ingest.worker_autoscaling_max_capacity == 2
    )
    error_message = "staging runs the worker without public IP, from 0 up to 2 tasks."
  }

  assert {
    condition = alltrue([
      for svc in [
        [module.service.execute_command_enabled, module.service.writable_paths],
        [module.ingest.worker_execute_command_enabled, module.ingest.worker_writable_paths],
      ] :
      svc[0] == local.settings.enable_execute_command &&
      svc[0] == (contains(svc[1], "/var/lib/amazon") && contains(svc[1], "/var/log/amazon"))
    ])
    error_message = "ECS Exec is on exactly where the setting says, and wherever it is on both containers have writable volumes for the SSM agent."
  }

  assert {
    condition     = output.vpc_endpoint_ids == {} && length(module.waf) == 1
    error_message = "staging runs with WAF (like prod), without VPC endpoints."
  }

  assert {
    condition     = output.task_environments.migrate.SEED_FILE == ""
    error_message = "staging holds real data: the seed task imports nothing unless seed_file is set on purpose."
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

run "dev_without_seeding" {
  command = plan

  variables {
    environment = "dev"
    seed_file   = ""
  }

  assert {
    condition     = output.task_environments.migrate.SEED_FILE == ""
    error_message = "seed_file = \"\" turns dev's seeding off: the deploy's seed task only runs where SEED_FILE is set."
  }
}

run "prod" {
  command = plan

  variables {
    environment     = "prod"
    certificate_arn = "arn:aws:acm:eu-central-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
    api_domain      = "rates.example.com"
  }

  override_resource {
    target          = module.network.aws_vpc_endpoint.s3
    override_during = plan
    values = {
      prefix_list_id = "pl-6ea54007"
    }
  }

  override_resource {
    target          = module.database.aws_ssm_parameter.password
    override_during = plan
    values = {
      arn = "arn:aws:ssm:eu-central-1:123456789012:parameter/rates/prod/db/password"
    }
  }

  override_resource {
    target          = module.database.aws_ssm_parameter.role_password["api"]
    override_during = plan
    values = {
      arn = "arn:aws:ssm:eu-central-1:123456789012:parameter/rates/prod/db/api-password"
    }
  }

  override_resource {
    target          = module.database.aws_ssm_parameter.role_password["worker"]
    override_during = plan
    values = {
      arn = "arn:aws:ssm:eu-central-1:123456789012:parameter/rates/prod/db/worker-password"
    }
  }

  override_resource {
    target          = module.ingest.aws_s3_bucket.this
    override_during = plan
    values = {
      id  = "rates-prod-ingest-123456789012-eu-central-1"
      arn = "arn:aws:s3:::rates-prod-ingest-123456789012-eu-central-1"
    }
  }

  override_resource {
    target          = module.ingest.aws_sqs_queue.this
    override_during = plan
    values = {
      id  = "https://sqs.eu-central-1.amazonaws.com/123456789012/rates-prod-ingest"
      url = "https://sqs.eu-central-1.amazonaws.com/123456789012/rates-prod-ingest"
      arn = "arn:aws:sqs:eu-central-1:123456789012:rates-prod-ingest"
    }
  }

  # The services, roles and repository the deploy role may touch.
  override_resource {
    target          = module.ecr.aws_ecr_repository.this
    override_during = plan
    values = {
      arn = "arn:aws:ecr:eu-central-1:123456789012:repository/rates-prod"
    }
  }

  override_resource {
    target          = module.service.aws_ecs_service.this
    override_during = plan
    values = {
      id = "arn:aws:ecs:eu-central-1:123456789012:service/rates-prod/rates-prod-api"
    }
  }

  override_resource {
    target          = module.ingest.aws_ecs_service.worker
    override_during = plan
    values = {
      id = "arn:aws:ecs:eu-central-1:123456789012:service/rates-prod/rates-prod-worker"
    }
  }

  override_resource {
    target          = module.service.module.task.aws_iam_role.task
    override_during = plan
    values = {
      arn = "arn:aws:iam::123456789012:role/rates-prod-task"
    }
  }

  override_resource {
    target          = module.service.module.task.aws_iam_role.execution
    override_during = plan
    values = {
      arn = "arn:aws:iam::123456789012:role/rates-prod-task-execution"
    }
  }

  override_resource {
    target          = module.ingest.module.task.aws_iam_role.task
    override_during = plan
    values = {
      arn = "arn:aws:iam::123456789012:role/rates-prod-worker-task"
    }
  }

  override_resource {
    target          = module.ingest.module.task.aws_iam_role.execution
    override_during = plan
    values = {
      arn = "arn:aws:iam::123456789012:role/rates-prod-worker-task-execution"
    }
  }

  # The one-off tasks the deploy role may run: migration (and seed), worker start check.
  override_resource {
    target          = module.migrate.aws_iam_role.task
    override_during = plan
    values = {
      arn = "arn:aws:iam::123456789012:role/rates-prod-migrate-task"
    }
  }

  override_resource {
    target          = module.migrate.aws_iam_role.execution
    override_during = plan
    values = {
      arn = "arn:aws:iam::123456789012:role/rates-prod-migrate-task-execution"
    }
  }

  override_resource {
    target          = module.migrate.aws_ecs_task_definition.this
    override_during = plan
    values = {
      arn = "arn:aws:ecs:eu-central-1:123456789012:task-definition/rates-prod-migrate:3"
    }
  }

  override_resource {
    target          = module.ingest.module.task.aws_ecs_task_definition.this
    override_during = plan
    values = {
      arn = "arn:aws:ecs:eu-central-1:123456789012:task-definition/rates-prod-worker:12"
    }
  }

  override_resource {
    target          = module.service.aws_ecs_cluster.this
    override_during = plan
    values = {
      arn = "arn:aws:ecs:eu-central-1:123456789012:cluster/rates-prod"
    }
  }

  override_resource {
    target          = module.migrate.aws_cloudwatch_log_group.this
    override_during = plan
    values = {
      arn = "arn:aws:logs:eu-central-1:123456789012:log-group:/ecs/rates-prod-migrate"
    }
  }

  override_resource {
    target          = module.ingest.module.task.aws_cloudwatch_log_group.this
    override_during = plan
    values = {
      arn = "arn:aws:logs:eu-central-1:123456789012:log-group:/ecs/rates-prod-worker"
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
    condition     = module.database.allowed_security_group_ids == { service = "sg-0service0000000000", worker = "sg-0worker0000000000" }
    error_message = "Only the API's and the worker's security groups may reach the database."
  }

  assert {
    condition     = module.service.assign_public_ip == false
    error_message = "Tasks must not get a public IP."
  }

  assert {
    condition = [
      for s in jsondecode(module.service.task_role_policy).Statement : s.Resource
      if contains(flatten([s.Action]), "ssm:GetParameter")
    ] == ["arn:aws:ssm:eu-central-1:123456789012:parameter/rates/prod/db/api-password"]
    error_message = "The API's task role must read exactly the prod API role's password parameter."
  }

  assert {
    condition     = length([for s in jsondecode(module.service.task_role_policy).Statement : s if s.Resource == "*"]) == 0
    error_message = "prod has no ECS Exec, so the task role has no wildcard statement."
  }

  assert {
    condition = (
      module.ingest.worker_assign_public_ip == false &&
      module.ingest.worker_desired_count == 1 &&
      module.ingest.worker_autoscaling_min_capacity == 1 &&
      module.ingest.worker_autoscaling_max_capacity == 4
    )
    error_message = "prod keeps one worker polling, without public IP, and scales up to 4."
  }

  assert {
    condition     = length([for s in jsondecode(module.ingest.worker_task_role_policy).Statement : s if s.Resource == "*"]) == 0
    error_message = "prod has no ECS Exec, so the worker's task role has no wildcard statement."
  }

  assert {
    condition = {
      for s in module.github_oidc.deploy_policy_statements : s.sid => s.resources
      } == {
      EcrLogin                = toset(["*"])
      PushToRepository        = toset(["arn:aws:ecr:eu-central-1:123456789012:repository/rates-prod"])
      RegisterTaskDefinitions = toset(["*"])
      DeployServices = toset([
        "arn:aws:ecs:eu-central-1:123456789012:service/rates-prod/rates-prod-api",
        "arn:aws:ecs:eu-central-1:123456789012:service/rates-prod/rates-prod-worker",
      ])
      PassTaskRoles = toset([
        "arn:aws:iam::123456789012:role/rates-prod-task",
        "arn:aws:iam::123456789012:role/rates-prod-task-execution",
        "arn:aws:iam::123456789012:role/rates-prod-worker-task",
        "arn:aws:iam::123456789012:role/rates-prod-worker-task-execution",
        "arn:aws:iam::123456789012:role/rates-prod-migrate-task",
        "arn:aws:iam::123456789012:role/rates-prod-migrate-task-execution",
      ])
      RunOneOffTasks = toset([
        "arn:aws:ecs:eu-central-1:123456789012:task-definition/rates-prod-migrate:*",
        "arn:aws:ecs:eu-central-1:123456789012:task-definition/rates-prod-worker:*",
      ])
      WatchOneOffTasks = toset(["arn:aws:ecs:eu-central-1:123456789012:task/rates-prod/*"])
      ReadOneOffTaskLogs = toset([
        "arn:aws:logs:eu-central-1:123456789012:log-group:/ecs/rates-prod-migrate:log-stream:*",
        "arn:aws:logs:eu-central-1:123456789012:log-group:/ecs/rates-prod-worker:log-stream:*",
      ])
    }
    error_message = "The deploy role may push to the prod repository, roll the two prod services, pass exactly their roles and the migration task's, and run, watch and read the logs of the one-off tasks in the prod cluster."
  }

  assert {
    condition = [
      for s in module.github_oidc.deploy_policy_statements : [for c in s.condition : [c.test, c.variable, c.values]] if s.sid == "RunOneOffTasks"
    ] == [[["ArnEquals", "ecs:cluster", tolist(["arn:aws:ecs:eu-central-1:123456789012:cluster/rates-prod"])]]]
    error_message = "One-off tasks run in the prod cluster only."
  }

  assert {
    condition = alltrue(flatten([
      for s in module.github_oidc.deploy_policy_statements : [for a in s.actions : !strcontains(a, "*")]
    ]))
    error_message = "No statement of the deploy policy may use a wildcard action."
  }

  assert {
    condition = alltrue([
      for svc in [
        [module.service.execute_command_enabled, module.service.writable_paths],
        [module.ingest.worker_execute_command_enabled, module.ingest.worker_writable_paths],
      ] :
      svc[0] == local.settings.enable_execute_command &&
      svc[0] == (contains(svc[1], "/var/lib/amazon") && contains(svc[1], "/var/log/amazon"))
    ])
    error_message = "ECS Exec is on exactly where the setting says, and wherever it is on both containers have writable volumes for the SSM agent."
  }

  assert {
    condition     = keys(output.vpc_endpoint_ids) == ["ecr.api", "ecr.dkr", "logs", "s3", "sqs", "ssm", "sts"]
    error_message = "prod reaches ECR, CloudWatch Logs, SSM, SQS, STS and S3 through VPC endpoints."
  }

  assert {
    condition     = local.task_https_egress == { cidr_block = "10.30.0.0/16", prefix_list_ids = tolist(["pl-6ea54007"]) }
    error_message = "prod's tasks open HTTPS to the VPC (its interface endpoints) and S3's gateway endpoint only, never 0.0.0.0/0."
  }

  assert {
    condition     = length(module.waf) == 1 && output.flow_log_group_name == "/vpc/rates-prod/flow-logs"
    error_message = "prod has WAF on the load balancer and flow logs."
  }

  assert {
    condition     = !local.settings.enable_execute_command && !module.service.execute_command_enabled && module.service.writable_paths == ["/tmp"]
    error_message = "prod runs without ECS Exec and without the agent's volumes."
  }

  assert {
    condition     = output.task_environments.migrate.SEED_FILE == ""
    error_message = "prod holds real data: the seed task imports nothing unless seed_file is set on purpose."
  }

  assert {
    condition     = output.api_url == "https://rates.example.com"
    error_message = "prod's clients and smoke test use https://<api_domain>, the name its certificate covers, not the load balancer's."
  }

  assert {
    condition     = alltrue([for t in values(output.task_environments) : t.DB_SSLMODE == "verify-full"])
    error_message = "prod verifies the database's certificate in every task."
  }
}

run "prod_without_certificate_is_refused" {
  command = plan

  variables {
    environment = "prod"
  }

  expect_failures = [terraform_data.workspace_guard]
}

# A certificate serves a domain: with one but no api_domain, the smoke test would call the load
# balancer's name, which the certificate never covers.
run "certificate_without_domain_is_refused" {
  command = plan

  variables {
    environment     = "prod"
    certificate_arn = "arn:aws:acm:eu-central-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
  }

  expect_failures = [terraform_data.workspace_guard]
}

run "domain_without_certificate_is_refused" {
  command = plan

  variables {
    environment = "dev"
    api_domain  = "rates-dev.example.com"
  }

  expect_failures = [terraform_data.workspace_guard]
}

run "domain_must_be_a_dns_name" {
  command = plan

  variables {
    environment     = "dev"
    certificate_arn = "arn:aws:acm:eu-central-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
    api_domain      = "https://rates.example.com"
  }

  expect_failures = [var.api_domain]
}

run "dev_and_staging_are_scaled_down_copies_of_prod" {
  command = plan

  variables {
    environment     = "prod"
    certificate_arn = "arn:aws:acm:eu-central-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
    api_domain      = "rates.example.com"
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
      s.az_count <= run.prod.settings.az_count &&
      s.worker_cpu <= run.prod.settings.worker_cpu &&
      s.worker_memory <= run.prod.settings.worker_memory &&
      s.worker_min_capacity <= run.prod.settings.worker_min_capacity &&
      s.worker_max_capacity <= run.prod.settings.worker_max_capacity
    ])
    error_message = "dev and staging must not be larger than prod."
  }

  assert {
    condition = (
      run.prod.settings.alarm_ingest_lag_objective_seconds == 600 &&
      run.staging.settings.alarm_ingest_lag_objective_seconds >= run.prod.settings.alarm_ingest_lag_objective_seconds &&
      run.dev.settings.alarm_ingest_lag_objective_seconds >= run.staging.settings.alarm_ingest_lag_objective_seconds
    )
    error_message = "prod holds the strictest freshness objective (10 minutes); dev and staging may be looser."
  }
}

run "a_read_replica_serves_the_rates_reads" {
  command = plan

  variables {
    environment           = "staging"
    db_read_replica_count = 1
  }

  override_resource {
    target          = module.database.aws_db_instance.replica
    override_during = plan
    values = {
      address = "rates-staging-replica-1.abc.eu-central-1.rds.amazonaws.com"
    }
  }

  override_resource {
    target          = module.database.aws_db_instance.this
    override_during = plan
    values = {
      address = "rates-staging.abc.eu-central-1.rds.amazonaws.com"
    }
  }

  assert {
    condition = (
      length(module.database.replica_identifiers) == 1 &&
      module.database.replica_identifiers[0] == "rates-staging-replica-1" &&
      module.service.container_environment["DB_READ_HOST"] == "rates-staging-replica-1.abc.eu-central-1.rds.amazonaws.com"
    )
    error_message = "With a replica, the API's DB_READ_HOST is the first replica's address."
  }

  assert {
    condition     = module.service.container_environment["DB_HOST"] == "rates-staging.abc.eu-central-1.rds.amazonaws.com"
    error_message = "Writes stay on the primary."
  }
}

run "workspace_without_region_and_account_is_refused" {
  command = plan

  variables {
    environment = "dev"
    environments = {
      prod = { region = "eu-central-1", account_id = "123456789012" }
    }
  }

  expect_failures = [terraform_data.workspace_guard]
}

run "credentials_of_another_account_are_refused" {
  command = plan

  variables {
    environment = "dev"
  }

  override_data {
    target = data.aws_caller_identity.current
    values = {
      account_id = "999999999999"
    }
  }

  expect_failures = [terraform_data.workspace_guard]
}

run "another_region_is_refused" {
  command = plan

  variables {
    environment = "staging"
    environments = {
      staging = { region = "us-east-1", account_id = "123456789012" }
    }
  }

  expect_failures = [terraform_data.workspace_guard]
}

run "environments_must_hold_real_accounts_and_regions" {
  command = plan

  variables {
    environment = "dev"
    environments = {
      dev = { region = "eu-central-1", account_id = "12345" }
    }
  }

  expect_failures = [var.environments]
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
