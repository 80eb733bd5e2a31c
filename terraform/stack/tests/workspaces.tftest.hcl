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
  # validation. The deploy role's statements are checked on data.aws_iam_policy_document.deploy.
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
  target          = module.service["api"].aws_security_group.this
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
  target          = module.service["worker"].aws_security_group.this
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

  override_resource {
    target          = module.alb.aws_lb_target_group.this
    override_during = plan
    values = {
      arn        = "arn:aws:elasticloadbalancing:eu-central-1:123456789012:targetgroup/api-20260101/0123456789abcdef"
      arn_suffix = "targetgroup/api-20260101/0123456789abcdef"
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
      output.ecs_cluster_name == "rates-dev" &&
      output.ecs_service_name == "rates-dev-api" &&
      output.task_definition_family == "rates-dev-api" &&
      output.container_name == "rates" &&
      output.log_group_name == "/ecs/rates-dev" &&
      output.db_password_parameter_name == "/rates/dev/db/password" &&
      output.worker_service_name == "rates-dev-worker" &&
      output.worker_task_definition_family == "rates-dev-worker" &&
      output.worker_log_group_name == "/ecs/rates-dev-worker" &&
      module.ingest.queue_name == "rates-dev-ingest" &&
      module.ingest.dlq_name == "rates-dev-ingest-dlq" &&
      output.dashboard_name == "rates-dev" &&
      data.aws_iam_role.deploy.name == "rates-dev-github-deploy"
    )
    error_message = "The resources must carry the contract's names."
  }

  # Every task of the stack is an instance of modules/ecs_task, which connects with verify-full
  # against the image's RDS bundle whatever the environment says (tested there).
  assert {
    condition     = keys(local.tasks) == ["api", "migrate", "worker"] && keys(local.services) == ["api", "worker"]
    error_message = "Three tasks of the image (API, migration, worker), two of them run as services."
  }

  assert {
    condition = (
      local.tasks.api.family == "rates-dev-api" && local.tasks.api.log_group == "/ecs/rates-dev" && local.tasks.api.role_prefix == "rates-dev" &&
      local.tasks.worker.family == "rates-dev-worker" && local.tasks.worker.log_group == "/ecs/rates-dev-worker" && local.tasks.worker.role_prefix == "rates-dev-worker" &&
      local.tasks.migrate.family == "rates-dev-migrate" && local.tasks.migrate.log_group == "/ecs/rates-dev-migrate" && local.tasks.migrate.role_prefix == "rates-dev-migrate"
    )
    error_message = "Each task has its family, log group and roles (rates-dev[-worker|-migrate]-task, -task-execution)."
  }

  assert {
    condition     = local.database_clients == { service = "sg-0service0000000000", worker = "sg-0worker0000000000" }
    error_message = "Only the API's and the worker's security groups may reach the database."
  }

  assert {
    condition = (
      local.settings.db_multi_az == false &&
      local.settings.db_deletion_protection == false &&
      local.settings.db_skip_final_snapshot == true &&
      local.settings.single_nat_gateway == true &&
      length(module.network.private_subnet_ids) == 2
    )
    error_message = "dev runs without multi-AZ, deletion protection or final snapshot, with one shared NAT gateway over two zones."
  }

  assert {
    condition = (
      [local.services.api.desired_count, local.services.api.min_capacity, local.services.api.max_capacity] == [1, 1, 2] &&
      [local.services.worker.desired_count, local.services.worker.min_capacity, local.services.worker.max_capacity] == [0, 0, 1]
    )
    error_message = "dev runs 1 API task scaling up to 2, and the worker from 0 up to 1 task."
  }

  assert {
    condition = (
      local.services.api.load_balancer.container_name == "rates" && local.services.api.load_balancer.container_port == 3000 &&
      local.services.api.load_balancer.resource_label == "app/rates-dev/0123456789abcdef/targetgroup/api-20260101/0123456789abcdef" &&
      local.services.api.queue_name == null &&
      local.services.worker.load_balancer == null && local.services.worker.queue_name == "rates-dev-ingest"
    )
    error_message = "The API runs behind the load balancer; the worker scales on the ingest queue."
  }

  # Part messages of multi-part batches go back to the queue the worker's scaling watches.
  assert {
    condition = [
      for st in jsondecode(local.tasks.worker.policy_statements) : st.Resource if contains(st.Action, "sqs:SendMessage")
    ] == ["arn:aws:sqs:eu-central-1:123456789012:rates-dev-ingest"]
    error_message = "The worker may send messages to the ingest queue only."
  }

  assert {
    condition = (
      local.tasks.api.password_parameter_arn == "arn:aws:ssm:eu-central-1:123456789012:parameter/rates/dev/db/api-password" &&
      local.tasks.api.additional_parameter_arns == [] &&
      local.tasks.worker.password_parameter_arn == "arn:aws:ssm:eu-central-1:123456789012:parameter/rates/dev/db/worker-password" &&
      local.tasks.worker.additional_parameter_arns == []
    )
    error_message = "The API's and the worker's task roles each read exactly their own role's password parameter."
  }

  assert {
    condition = (
      local.tasks.migrate.password_parameter_arn == "arn:aws:ssm:eu-central-1:123456789012:parameter/rates/dev/db/password" &&
      local.tasks.migrate.additional_parameter_arns == [
        "arn:aws:ssm:eu-central-1:123456789012:parameter/rates/dev/db/api-password",
        "arn:aws:ssm:eu-central-1:123456789012:parameter/rates/dev/db/worker-password",
      ]
    )
    error_message = "Only the migration task reads the master password, and the role passwords it sets."
  }

  assert {
    condition     = output.ingest_bucket_name == "rates-dev-ingest-123456789012-eu-central-1"
    error_message = "The bucket is named after the environment, the account and the region."
  }

  assert {
    condition = (
      output.github_oidc_provider_arn == "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com" &&
      output.github_deploy_role_arn == "arn:aws:iam::123456789012:role/rates-ci/rates-deploy-from-bootstrap" &&
      aws_iam_role_policy.deploy.role == "rates-dev-github-deploy"
    )
    error_message = "dev looks up the account's provider and its deploy role from bootstrap, creates neither, and attaches its permissions to that role."
  }

  assert {
    condition     = output.region == "eu-central-1" && output.account_id == "123456789012"
    error_message = "The workspace's region and account come from var.environments."
  }

  assert {
    condition = alltrue(flatten([
      for st in data.aws_iam_policy_document.deploy.statement : [for a in st.actions : !strcontains(a, "*")]
    ]))
    error_message = "No statement of the deploy policy may use a wildcard action."
  }

  assert {
    condition = (
      local.tasks.api.metrics_namespace == "rates-dev" && local.tasks.worker.metrics_namespace == "rates-dev" &&
      local.tasks.migrate.metrics_namespace == null &&
      local.tasks.api.service_name == output.ecs_service_name && local.tasks.worker.service_name == output.worker_service_name
    )
    error_message = "The API's and the worker's tasks publish their metrics into the namespace the monitoring module reads, with their ECS service's name as the Service dimension the alarms use."
  }

  assert {
    condition = alltrue(flatten([
      for t in values(local.tasks) : [for st in jsondecode(t.policy_statements) : [for a in st.Action : !startswith(lower(a), "cloudwatch:")]]
    ]))
    error_message = "Publishing metrics needs no CloudWatch permission in the task roles."
  }

  assert {
    condition = (
      local.tasks.api.enable_execute_command == local.settings.enable_execute_command &&
      local.tasks.worker.enable_execute_command == local.settings.enable_execute_command &&
      local.tasks.migrate.enable_execute_command == false
    )
    error_message = "ECS Exec (and with it the agent's writable volumes, modules/ecs_task) is on exactly where the setting says, never for the one-off task."
  }

  assert {
    condition     = !local.settings.enable_vpc_endpoints && length(module.waf) == 0
    error_message = "dev runs without VPC endpoints (NAT only) and without WAF."
  }

  assert {
    condition     = local.task_https_egress == { cidr_block = "0.0.0.0/0", prefix_list_ids = tolist([]) }
    error_message = "Without endpoints the tasks reach the AWS APIs through NAT: HTTPS anywhere."
  }

  assert {
    condition = (
      !contains(keys(local.tasks.api.environment), "DB_READ_HOST") &&
      local.tasks.api.environment.DB_HOST == "rates-dev.abcdefghijkl.eu-central-1.rds.amazonaws.com" &&
      module.database.replica_addresses == []
    )
    error_message = "Without replicas the API reads from the primary (no DB_READ_HOST)."
  }

  assert {
    condition = local.tasks.api.environment == {
      DB_HOST                   = "rates-dev.abcdefghijkl.eu-central-1.rds.amazonaws.com"
      DB_PORT                   = "5432"
      DB_NAME                   = "rates"
      DB_USER                   = "rates_api"
      DB_PASSWORD_SSM_PARAMETER = "/rates/dev/db/api-password"
      HTTP_ADDR                 = ":3000"
      METRICS_ADDR              = ":9090"
      LOG_FORMAT                = "json"
      LOG_LEVEL                 = "info"
      SHUTDOWN_TIMEOUT          = "25s"
    }
    error_message = "The API's environment: its own role and password, no MIGRATE_ON_START, no SEED_FILE (both are the deploy's one-off task), the ports of the binary."
  }

  assert {
    condition = local.tasks.worker.environment == {
      DB_HOST                   = "rates-dev.abcdefghijkl.eu-central-1.rds.amazonaws.com"
      DB_PORT                   = "5432"
      DB_NAME                   = "rates"
      DB_USER                   = "rates_worker"
      DB_PASSWORD_SSM_PARAMETER = "/rates/dev/db/worker-password"
      METRICS_ADDR              = ":9090"
      LOG_FORMAT                = "json"
      LOG_LEVEL                 = "info"
      SHUTDOWN_TIMEOUT          = "110s"
      INGEST_QUEUE_URL          = "https://sqs.eu-central-1.amazonaws.com/123456789012/rates-dev-ingest"
      INGEST_REPORTS_PREFIX     = "reports/"
      INGEST_VISIBILITY_TIMEOUT = "15m"
      INGEST_WAIT_TIME          = "20"
      INGEST_MAX_BATCH_DURATION = "600s"
    }
    error_message = "The worker's environment: its own role and password, the dev queue, the batch deadline the stack sets, 110 s to finish a batch after SIGTERM."
  }

  assert {
    condition = (
      local.tasks.worker.command == ["worker"] && local.tasks.worker.stop_timeout == 120 &&
      local.tasks.api.command == null && local.tasks.api.stop_timeout == 30 &&
      local.tasks.migrate.command == ["migrate", "up"]
    )
    error_message = "The worker runs `rates worker` with 120 s to stop; the API the image's CMD; the one-off task `rates migrate up`."
  }

  assert {
    condition = (
      local.tasks.migrate.environment.DB_USER == "rates" &&
      local.tasks.migrate.environment.DB_PASSWORD_SSM_PARAMETER == "/rates/dev/db/password" &&
      local.tasks.migrate.environment.DB_API_ROLE == "rates_api" &&
      local.tasks.migrate.environment.DB_API_PASSWORD_SSM_PARAMETER == "/rates/dev/db/api-password" &&
      local.tasks.migrate.environment.DB_WORKER_ROLE == "rates_worker" &&
      local.tasks.migrate.environment.DB_WORKER_PASSWORD_SSM_PARAMETER == "/rates/dev/db/worker-password"
    )
    error_message = "The migration task migrates as the master user, then sets both roles' passwords from their parameters."
  }

  assert {
    condition     = local.tasks.migrate.environment.SEED_FILE == "/usr/share/rates/rates.sql"
    error_message = "dev seeds the image's synthetic dump through the one-off seed task."
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
      local.settings.db_multi_az == false &&
      local.settings.db_deletion_protection == true &&
      local.settings.db_skip_final_snapshot == false
    )
    error_message = "staging keeps deletion protection and a final snapshot, without multi-AZ."
  }

  assert {
    condition = (
      [local.services.api.desired_count, local.services.api.min_capacity, local.services.api.max_capacity] == [2, 2, 4] &&
      [local.services.worker.desired_count, local.services.worker.min_capacity, local.services.worker.max_capacity] == [0, 0, 2]
    )
    error_message = "staging runs 2 API tasks scaling up to 4, and the worker from 0 up to 2 tasks."
  }

  assert {
    condition = (
      local.tasks.api.enable_execute_command == local.settings.enable_execute_command &&
      local.tasks.worker.enable_execute_command == local.settings.enable_execute_command
    )
    error_message = "ECS Exec is on exactly where the setting says."
  }

  assert {
    condition     = !local.settings.enable_vpc_endpoints && length(module.waf) == 1
    error_message = "staging runs with WAF (like prod), without VPC endpoints."
  }

  assert {
    condition     = local.tasks.migrate.environment.SEED_FILE == ""
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
    condition     = local.tasks.migrate.environment.SEED_FILE == "/usr/share/rates/rates.sql"
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
    condition     = local.tasks.migrate.environment.SEED_FILE == ""
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
    target          = module.service["api"].aws_ecs_service.this
    override_during = plan
    values = {
      id = "arn:aws:ecs:eu-central-1:123456789012:service/rates-prod/rates-prod-api"
    }
  }

  override_resource {
    target          = module.service["worker"].aws_ecs_service.this
    override_during = plan
    values = {
      id = "arn:aws:ecs:eu-central-1:123456789012:service/rates-prod/rates-prod-worker"
    }
  }

  override_resource {
    target          = module.task["api"].aws_iam_role.task
    override_during = plan
    values = {
      arn = "arn:aws:iam::123456789012:role/rates-prod-task"
    }
  }

  override_resource {
    target          = module.task["api"].aws_iam_role.execution
    override_during = plan
    values = {
      arn = "arn:aws:iam::123456789012:role/rates-prod-task-execution"
    }
  }

  override_resource {
    target          = module.task["worker"].aws_iam_role.task
    override_during = plan
    values = {
      arn = "arn:aws:iam::123456789012:role/rates-prod-worker-task"
    }
  }

  override_resource {
    target          = module.task["worker"].aws_iam_role.execution
    override_during = plan
    values = {
      arn = "arn:aws:iam::123456789012:role/rates-prod-worker-task-execution"
    }
  }

  # The one-off tasks the deploy role may run: migration (and seed), worker start check.
  override_resource {
    target          = module.task["migrate"].aws_iam_role.task
    override_during = plan
    values = {
      arn = "arn:aws:iam::123456789012:role/rates-prod-migrate-task"
    }
  }

  override_resource {
    target          = module.task["migrate"].aws_iam_role.execution
    override_during = plan
    values = {
      arn = "arn:aws:iam::123456789012:role/rates-prod-migrate-task-execution"
    }
  }

  override_resource {
    target          = module.task["migrate"].aws_ecs_task_definition.this
    override_during = plan
    values = {
      arn = "arn:aws:ecs:eu-central-1:123456789012:task-definition/rates-prod-migrate:3"
    }
  }

  override_resource {
    target          = module.task["worker"].aws_ecs_task_definition.this
    override_during = plan
    values = {
      arn = "arn:aws:ecs:eu-central-1:123456789012:task-definition/rates-prod-worker:12"
    }
  }

  override_resource {
    target          = aws_ecs_cluster.this
    override_during = plan
    values = {
      arn = "arn:aws:ecs:eu-central-1:123456789012:cluster/rates-prod"
    }
  }

  override_resource {
    target          = module.task["migrate"].aws_cloudwatch_log_group.this
    override_during = plan
    values = {
      arn = "arn:aws:logs:eu-central-1:123456789012:log-group:/ecs/rates-prod-migrate"
    }
  }

  override_resource {
    target          = module.task["worker"].aws_cloudwatch_log_group.this
    override_during = plan
    values = {
      arn = "arn:aws:logs:eu-central-1:123456789012:log-group:/ecs/rates-prod-worker"
    }
  }

  assert {
    condition = (
      local.settings.db_multi_az == true &&
      local.settings.db_deletion_protection == true &&
      local.settings.db_skip_final_snapshot == false &&
      local.settings.single_nat_gateway == false &&
      length(module.network.private_subnet_ids) == 3
    )
    error_message = "prod needs multi-AZ, deletion protection and a final snapshot, and spans three zones with one NAT gateway each."
  }

  assert {
    condition = (
      [local.services.api.desired_count, local.services.api.min_capacity, local.services.api.max_capacity] == [3, 3, 12] &&
      [local.services.worker.desired_count, local.services.worker.min_capacity, local.services.worker.max_capacity] == [1, 1, 4]
    )
    error_message = "prod runs 3 API tasks scaling up to 12, and keeps one worker polling, up to 4."
  }

  assert {
    condition     = local.database_clients == { service = "sg-0service0000000000", worker = "sg-0worker0000000000" }
    error_message = "Only the API's and the worker's security groups may reach the database."
  }

  assert {
    condition = (
      local.tasks.api.password_parameter_arn == "arn:aws:ssm:eu-central-1:123456789012:parameter/rates/prod/db/api-password" &&
      local.tasks.worker.password_parameter_arn == "arn:aws:ssm:eu-central-1:123456789012:parameter/rates/prod/db/worker-password"
    )
    error_message = "The API's and the worker's task roles read exactly their prod role's password parameter."
  }

  assert {
    condition = {
      for st in data.aws_iam_policy_document.deploy.statement : st.sid => st.resources
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
    condition = {
      for st in data.aws_iam_policy_document.deploy.statement : st.sid => [for c in st.condition : [c.test, c.variable, c.values]] if length(st.condition) > 0
      } == {
      RunOneOffTasks = [["ArnEquals", "ecs:cluster", tolist(["arn:aws:ecs:eu-central-1:123456789012:cluster/rates-prod"])]]
      PassTaskRoles  = [["StringEquals", "iam:PassedToService", tolist(["ecs-tasks.amazonaws.com"])]]
    }
    error_message = "One-off tasks run in the prod cluster only, and the roles may only be passed to ECS tasks."
  }

  assert {
    condition = (
      alltrue([for st in data.aws_iam_policy_document.deploy.statement : st.effect == "Allow" && length(coalesce(st.not_actions, [])) == 0 && length(coalesce(st.not_resources, [])) == 0]) &&
      alltrue(flatten([for st in data.aws_iam_policy_document.deploy.statement : [for a in st.actions : !strcontains(a, "*")]])) &&
      [for st in data.aws_iam_policy_document.deploy.statement : st.sid if contains(st.resources, "*")] == ["EcrLogin", "RegisterTaskDefinitions"]
    )
    error_message = "No wildcard action, no NotAction or NotResource; resource \"*\" only for ecr:GetAuthorizationToken and the task definition actions, which have no resource-level permissions."
  }

  assert {
    condition = (
      local.tasks.api.enable_execute_command == false && local.tasks.worker.enable_execute_command == false &&
      !local.settings.enable_execute_command
    )
    error_message = "prod runs without ECS Exec, so the task roles have no wildcard statement and the tasks no agent volumes (modules/ecs_task)."
  }

  assert {
    condition     = local.settings.enable_vpc_endpoints && local.task_https_egress == { cidr_block = "10.30.0.0/16", prefix_list_ids = tolist(["pl-6ea54007"]) }
    error_message = "prod's tasks open HTTPS to the VPC (its interface endpoints) and S3's gateway endpoint only, never 0.0.0.0/0."
  }

  assert {
    condition     = length(module.waf) == 1
    error_message = "prod has WAF on the load balancer."
  }

  assert {
    condition     = local.tasks.migrate.environment.SEED_FILE == ""
    error_message = "prod holds real data: the seed task imports nothing unless seed_file is set on purpose."
  }

  assert {
    condition     = output.api_url == "https://rates.example.com"
    error_message = "prod's clients and smoke test use https://<api_domain>, the name its certificate covers, not the load balancer's."
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
    environment = "dev"
  }

  assert {
    condition = (
      keys(local.workspace_settings) == ["dev", "prod", "staging"] &&
      keys(local.workspace_settings.dev) == keys(local.workspace_settings.prod) &&
      keys(local.workspace_settings.staging) == keys(local.workspace_settings.prod)
    )
    error_message = "Every workspace must define the same settings."
  }

  assert {
    condition = alltrue([
      for s in [local.workspace_settings.dev, local.workspace_settings.staging] :
      s.task_cpu <= local.workspace_settings.prod.task_cpu &&
      s.task_memory <= local.workspace_settings.prod.task_memory &&
      s.max_capacity <= local.workspace_settings.prod.max_capacity &&
      s.az_count <= local.workspace_settings.prod.az_count &&
      s.worker_cpu <= local.workspace_settings.prod.worker_cpu &&
      s.worker_memory <= local.workspace_settings.prod.worker_memory &&
      s.worker_min_capacity <= local.workspace_settings.prod.worker_min_capacity &&
      s.worker_max_capacity <= local.workspace_settings.prod.worker_max_capacity
    ])
    error_message = "dev and staging must not be larger than prod."
  }

  assert {
    condition = (
      local.workspace_settings.prod.alarm_ingest_lag_objective_seconds == 600 &&
      local.workspace_settings.staging.alarm_ingest_lag_objective_seconds >= local.workspace_settings.prod.alarm_ingest_lag_objective_seconds &&
      local.workspace_settings.dev.alarm_ingest_lag_objective_seconds >= local.workspace_settings.staging.alarm_ingest_lag_objective_seconds
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
      module.database.replica_addresses == ["rates-staging-replica-1.abc.eu-central-1.rds.amazonaws.com"] &&
      local.tasks.api.environment.DB_READ_HOST == "rates-staging-replica-1.abc.eu-central-1.rds.amazonaws.com"
    )
    error_message = "With a replica, the API's DB_READ_HOST is the first replica's address."
  }

  assert {
    condition     = local.tasks.api.environment.DB_HOST == "rates-staging.abc.eu-central-1.rds.amazonaws.com" && !contains(keys(local.tasks.worker.environment), "DB_READ_HOST")
    error_message = "Writes, and every read of the worker, stay on the primary."
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
