# One workspace's stack of the rates service: network, load balancer, image repository, database,
# batch ingestion (bucket, queues), the ECS cluster with its tasks and services (services.tf),
# monitoring and the permissions of the GitHub deploy role (deploy_role.tf). The root module (..)
# calls it with environment = terraform.workspace and the ephemeral passwords.

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

  # The only security groups the database admits: the API's tasks (the deploy's one-off tasks run
  # in them too) and the worker's.
  database_clients = {
    service = module.service["api"].security_group_id
    worker  = module.service["worker"].security_group_id
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

  allowed_security_group_ids = local.database_clients

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

# Batch ingestion: bucket, queue and dead-letter queue. The worker that loads the batches is a
# service of services.tf.
module "ingest" {
  source = "../modules/ingest"

  name                       = local.name_prefix
  max_batch_duration_seconds = local.ingest_max_batch_duration_seconds

  force_destroy                      = local.settings.ingest_bucket_force_destroy
  incoming_expiration_days           = local.settings.ingest_incoming_expiration_days
  reports_expiration_days            = local.settings.ingest_reports_expiration_days
  noncurrent_version_expiration_days = local.settings.ingest_noncurrent_expiration_days
  kms_key_deletion_window_in_days    = local.settings.kms_key_deletion_window_days
}

module "monitoring" {
  source = "../modules/monitoring"

  name              = local.name_prefix
  alarm_email       = var.alarm_email
  metrics_namespace = local.metrics_namespace

  alb_arn_suffix          = module.alb.arn_suffix
  target_group_arn_suffix = module.alb.target_group_arn_suffix
  ecs_cluster_name        = aws_ecs_cluster.this.name
  api_service_name        = module.service["api"].service_name
  worker_service_name     = module.service["worker"].service_name
  worker_log_group_name   = module.task["worker"].log_group_name
  db_instance_identifier  = module.database.instance_identifier
  queue_name              = module.ingest.queue_name
  dlq_name                = module.ingest.dlq_name

  batch_deadline_seconds          = local.ingest_max_batch_duration_seconds
  db_connections_threshold        = local.settings.alarm_db_connections_threshold
  ingest_lag_objective_seconds    = local.settings.alarm_ingest_lag_objective_seconds
  db_free_storage_threshold_bytes = local.settings.alarm_db_free_storage_threshold_gb * 1073741824
  kms_key_deletion_window_in_days = local.settings.kms_key_deletion_window_days
}
