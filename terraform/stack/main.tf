# One workspace's stack of the rates service: network, load balancer, image repository, database,
# ECS service, batch ingestion (bucket, queues, worker), monitoring and the GitHub deploy role. The
# root module (..) calls it with environment = terraform.workspace and the ephemeral master
# password.

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  # Where the tasks' HTTPS may go. With VPC endpoints (prod) the AWS APIs they call are the
  # interface endpoints in the VPC and S3's gateway endpoint, so nothing else is reachable;
  # without them, the APIs' public addresses through NAT, which have no fixed range.
  task_https_egress = local.settings.enable_vpc_endpoints ? {
    cidr_block      = module.network.vpc_cidr_block
    prefix_list_ids = tolist([module.network.s3_prefix_list_id])
    } : {
    cidr_block      = "0.0.0.0/0"
    prefix_list_ids = tolist([])
  }

  # The apply role may create roles only with this boundary on them (terraform/bootstrap).
  permissions_boundary_arn = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:policy/rates-ci/${local.names.permissions_boundary}"
}

resource "terraform_data" "workspace_guard" {
  input = local.environment

  lifecycle {
    precondition {
      condition     = local.known_environment
      error_message = "Workspace \"${local.environment}\" has no settings. Select one of ${join(", ", keys(local.workspace_settings))} (for example: terraform workspace select dev), or add a settings object for it in terraform/stack/locals.tf."
    }

    precondition {
      condition     = local.placement != null
      error_message = "Workspace \"${local.environment}\" has no region and account in terraform/environments.auto.tfvars: write the output environments_tfvars of terraform/bootstrap (run in the environment's account) there and commit it."
    }

    # A workspace belongs to one region and one account. Credentials of another account, or a
    # provider pointed at another region, would plan a second copy of the stack and orphan the
    # first: refuse before anything is created.
    precondition {
      condition     = local.placement == null || data.aws_region.current.name == try(local.placement.region, "")
      error_message = "Workspace \"${local.environment}\" lives in region ${try(local.placement.region, "?")}, but the AWS provider is configured for ${data.aws_region.current.name}."
    }

    precondition {
      condition     = local.placement == null || data.aws_caller_identity.current.account_id == try(local.placement.account_id, "")
      error_message = "Workspace \"${local.environment}\" lives in account ${try(local.placement.account_id, "?")}, but the credentials in use belong to account ${data.aws_caller_identity.current.account_id}."
    }

    precondition {
      condition     = !local.settings.require_certificate || var.certificate_arn != null
      error_message = "Workspace \"${local.environment}\" serves the API over HTTPS only and no certificate is set: set certificate_arn (an issued ACM certificate of the API's domain, in region ${try(local.placement.region, "of the workspace")}) and api_domain (that domain). In CI both go into the GitHub variable TF_VARS_${upper(local.environment)}; docs/operations.md, \"Certificate and DNS of prod\", has the steps."
    }

    # HTTPS needs the name its certificate covers: the load balancer's own name matches no
    # certificate of the API's domain, and the deploy's smoke test verifies it (api_url).
    precondition {
      condition     = (var.certificate_arn == null) == (var.api_domain == null)
      error_message = "Workspace \"${local.environment}\": certificate_arn and api_domain go together. Set the domain the certificate covers as api_domain (the smoke test calls https://<api_domain>), or leave both unset for plain HTTP."
    }
  }
}

module "network" {
  source = "../modules/network"

  name               = local.name_prefix
  cidr_block         = local.settings.vpc_cidr
  az_count           = local.settings.az_count
  single_nat_gateway = local.settings.single_nat_gateway

  enable_vpc_endpoints    = local.settings.enable_vpc_endpoints
  enable_flow_logs        = true
  flow_log_retention_days = local.settings.log_retention_days

  permissions_boundary_arn = local.permissions_boundary_arn
}

module "ecr" {
  source = "../modules/ecr"

  name         = local.names.ecr_repository
  force_delete = local.settings.ecr_force_delete
}

module "alb" {
  source = "../modules/alb"

  name                       = local.names.load_balancer
  vpc_id                     = module.network.vpc_id
  vpc_cidr_block             = module.network.vpc_cidr_block
  subnet_ids                 = module.network.public_subnet_ids
  ingress_cidr_blocks        = var.alb_ingress_cidr_blocks
  certificate_arn            = var.certificate_arn
  target_port                = local.container_port
  health_check_path          = local.health_check_path
  enable_deletion_protection = local.settings.alb_deletion_protection

  enable_access_logs          = true
  access_logs_expiration_days = local.settings.log_retention_days
  access_logs_force_destroy   = local.settings.alb_access_logs_force_destroy
}

module "waf" {
  source = "../modules/waf"
  count  = local.settings.enable_waf ? 1 : 0

  name              = local.name_prefix
  load_balancer_arn = module.alb.arn
}

module "database" {
  source = "../modules/database"

  identifier = local.names.db_instance
  vpc_id     = module.network.vpc_id
  subnet_ids = module.network.database_subnet_ids

  allowed_security_group_ids = {
    service = module.service.security_group_id
    worker  = module.ingest.worker_security_group_id
  }

  instance_class                  = local.settings.db_instance_class
  allocated_storage               = local.settings.db_allocated_storage
  max_allocated_storage           = local.settings.db_max_allocated_storage
  multi_az                        = local.settings.db_multi_az
  deletion_protection             = local.settings.db_deletion_protection
  skip_final_snapshot             = local.settings.db_skip_final_snapshot
  backup_retention_period         = local.settings.db_backup_retention_period
  apply_immediately               = local.settings.db_apply_immediately
  log_retention_days              = local.settings.log_retention_days
  kms_key_deletion_window_in_days = local.settings.kms_key_deletion_window_days
  read_replica_count              = coalesce(var.db_read_replica_count, local.settings.db_read_replica_count)

  master_password         = var.db_master_password
  master_password_version = var.db_master_password_version
  password_parameter_name = local.names.db_password_parameter

  api_role_name                  = local.names.db_api_role
  worker_role_name               = local.names.db_worker_role
  api_password                   = var.db_api_password
  worker_password                = var.db_worker_password
  role_password_version          = var.db_role_password_version
  api_password_parameter_name    = local.names.db_api_password_parameter
  worker_password_parameter_name = local.names.db_worker_password_parameter
}

module "service" {
  source = "../modules/service"

  name           = local.name_prefix
  cluster_name   = local.names.ecs_cluster
  service_name   = local.names.ecs_service
  task_family    = local.names.task_definition_family
  container_name = local.names.container
  log_group_name = local.names.log_group

  image          = "${module.ecr.repository_url}:${var.image_tag}"
  cpu            = local.settings.task_cpu
  memory         = local.settings.task_memory
  container_port = local.container_port
  metrics_port   = local.metrics_port

  # No rule opens the metrics port: nothing in AWS scrapes it (the tasks publish their metrics
  # on the log output, METRICS_EMF_NAMESPACE), and the load balancer never routes to it.
  https_egress_cidr_block      = local.task_https_egress.cidr_block
  https_egress_prefix_list_ids = local.task_https_egress.prefix_list_ids

  log_level          = var.log_level
  max_range_days     = var.max_range_days
  log_retention_days = local.settings.log_retention_days

  db_host                    = module.database.address
  db_read_host               = try(module.database.replica_addresses[0], null)
  db_port                    = module.database.port
  db_name                    = module.database.db_name
  db_user                    = module.database.api_role_name
  db_password_parameter_name = module.database.api_password_parameter_name
  db_password_parameter_arn  = module.database.api_password_parameter_arn
  db_password_kms_key_arn    = module.database.kms_key_arn
  database_security_group_id = module.database.security_group_id

  vpc_id                  = module.network.vpc_id
  subnet_ids              = module.network.private_subnet_ids
  alb_security_group_id   = module.alb.security_group_id
  target_group_arn        = module.alb.target_group_arn
  alb_arn_suffix          = module.alb.arn_suffix
  target_group_arn_suffix = module.alb.target_group_arn_suffix
  ecr_repository_arn      = module.ecr.repository_arn

  desired_count          = local.settings.desired_count
  min_capacity           = local.settings.min_capacity
  max_capacity           = local.settings.max_capacity
  enable_execute_command = local.settings.enable_execute_command
  metrics_namespace      = local.metrics_namespace

  permissions_boundary_arn = local.permissions_boundary_arn
}

# Batch ingestion: bucket, queue and dead-letter queue, and the worker as a second service in the
# API's cluster, from the same image and repository.
module "ingest" {
  source = "../modules/ingest"

  name           = local.name_prefix
  service_name   = local.names.worker_service
  task_family    = local.names.worker_task_definition_family
  container_name = local.names.container
  log_group_name = local.names.worker_log_group

  image        = "${module.ecr.repository_url}:${var.image_tag}"
  cluster_arn  = module.service.cluster_arn
  cluster_name = module.service.cluster_name
  cpu          = local.settings.worker_cpu
  memory       = local.settings.worker_memory
  metrics_port = local.metrics_port

  # As for the API: no rule opens the metrics port; HTTPS only where the AWS APIs are.
  https_egress_cidr_block      = local.task_https_egress.cidr_block
  https_egress_prefix_list_ids = local.task_https_egress.prefix_list_ids

  log_level          = var.log_level
  log_retention_days = local.settings.log_retention_days

  force_destroy                      = local.settings.ingest_bucket_force_destroy
  incoming_expiration_days           = local.settings.ingest_incoming_expiration_days
  reports_expiration_days            = local.settings.ingest_reports_expiration_days
  noncurrent_version_expiration_days = local.settings.ingest_noncurrent_expiration_days
  kms_key_deletion_window_in_days    = local.settings.kms_key_deletion_window_days

  db_host                    = module.database.address
  db_port                    = module.database.port
  db_name                    = module.database.db_name
  db_user                    = module.database.worker_role_name
  db_password_parameter_name = module.database.worker_password_parameter_name
  db_password_parameter_arn  = module.database.worker_password_parameter_arn
  db_password_kms_key_arn    = module.database.kms_key_arn
  database_security_group_id = module.database.security_group_id

  vpc_id             = module.network.vpc_id
  subnet_ids         = module.network.private_subnet_ids
  ecr_repository_arn = module.ecr.repository_arn

  min_capacity           = local.settings.worker_min_capacity
  max_capacity           = local.settings.worker_max_capacity
  enable_execute_command = local.settings.enable_execute_command
  metrics_namespace      = local.metrics_namespace

  permissions_boundary_arn = local.permissions_boundary_arn
}

# The one-off tasks of the deploy, before any service changes: `rates migrate up` as the master
# user (it also creates or updates the services' roles with the passwords of their parameters),
# then, where seed_file is set, `rates seed` with the same task definition. The deploy runs them
# with the new image in the API's subnets and security group (which the database admits), and
# waits for exit 0. A task role of its own: only this task reads the master password.
module "migrate" {
  source = "../modules/ecs_task"

  name           = "${local.name_prefix}-migrate"
  service_name   = local.names.migrate_task_definition_family
  task_family    = local.names.migrate_task_definition_family
  container_name = local.names.container
  log_group_name = local.names.migrate_log_group

  image   = "${module.ecr.repository_url}:${var.image_tag}"
  command = ["migrate", "up"]
  environment = {
    DB_HOST                          = module.database.address
    DB_PORT                          = tostring(module.database.port)
    DB_NAME                          = module.database.db_name
    DB_USER                          = module.database.username
    DB_PASSWORD_SSM_PARAMETER        = module.database.password_parameter_name
    DB_API_ROLE                      = module.database.api_role_name
    DB_API_PASSWORD_SSM_PARAMETER    = module.database.api_password_parameter_name
    DB_WORKER_ROLE                   = module.database.worker_role_name
    DB_WORKER_PASSWORD_SSM_PARAMETER = module.database.worker_password_parameter_name
    SEED_FILE                        = local.seed_file
    LOG_FORMAT                       = "json"
    LOG_LEVEL                        = var.log_level
  }
  cpu    = local.settings.worker_cpu
  memory = local.settings.worker_memory

  log_retention_days        = local.settings.log_retention_days
  ecr_repository_arn        = module.ecr.repository_arn
  db_password_parameter_arn = module.database.password_parameter_arn
  db_password_kms_key_arn   = module.database.kms_key_arn
  additional_parameter_arns = [module.database.api_password_parameter_arn, module.database.worker_password_parameter_arn]
  task_policy_name          = "read-database-passwords"
  task_role_purpose         = "reads the master password and the passwords it sets on the services' database roles"
  permissions_boundary_arn  = local.permissions_boundary_arn
}

module "monitoring" {
  source = "../modules/monitoring"

  name              = local.name_prefix
  alarm_email       = var.alarm_email
  metrics_namespace = local.metrics_namespace

  alb_arn_suffix          = module.alb.arn_suffix
  target_group_arn_suffix = module.alb.target_group_arn_suffix
  ecs_cluster_name        = module.service.cluster_name
  api_service_name        = module.service.service_name
  worker_service_name     = module.ingest.worker_service_name
  worker_log_group_name   = module.ingest.worker_log_group_name
  db_instance_identifier  = module.database.instance_identifier
  queue_name              = module.ingest.queue_name
  dlq_name                = module.ingest.dlq_name

  db_connections_threshold        = local.settings.alarm_db_connections_threshold
  ingest_lag_objective_seconds    = local.settings.alarm_ingest_lag_objective_seconds
  db_free_storage_threshold_bytes = local.settings.alarm_db_free_storage_threshold_gb * 1073741824
  kms_key_deletion_window_in_days = local.settings.kms_key_deletion_window_days
}

# The deploy role of the workspace, its trust (jobs of the GitHub environment of the same name) and
# the account's GitHub OIDC provider come from terraform/bootstrap; the workspace looks them up and
# attaches the permissions on its own resources. Destroying a workspace leaves them in place.
module "github_oidc" {
  source = "../modules/github_oidc"

  deploy_role_name = local.names.github_deploy_role

  ecr_repository_arn = module.ecr.repository_arn
  ecs_service_arns   = [module.service.service_id, module.ingest.worker_service_arn]
  pass_role_arns = [
    module.service.task_role_arn,
    module.service.execution_role_arn,
    module.ingest.worker_task_role_arn,
    module.ingest.worker_execution_role_arn,
    module.migrate.task_role_arn,
    module.migrate.execution_role_arn,
  ]

  # One-off tasks: the migration (and seed) task, and the worker's start check.
  run_task_definition_arns = [
    for arn in [module.migrate.task_definition_arn, module.ingest.worker_task_definition_arn] : replace(arn, "/:[0-9]+$/", ":*")
  ]
  cluster_arn         = module.service.cluster_arn
  read_log_group_arns = [module.migrate.log_group_arn, module.ingest.worker_log_group_arn]
}
