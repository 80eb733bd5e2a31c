locals {
  environment = var.environment

  # Naming contract. The deploy workflow and the service's tooling rely on these exact names.
  name_prefix = "rates-${local.environment}"

  names = {
    prefix                 = local.name_prefix
    ecs_cluster            = "rates-${local.environment}"
    ecs_service            = "rates-${local.environment}-api"
    task_definition_family = "rates-${local.environment}-api"
    container              = "rates"
    ecr_repository         = "rates-${local.environment}"
    log_group              = "/ecs/rates-${local.environment}"
    db_password_parameter  = "/rates/${local.environment}/db/password"

    # Least privilege in the database (db/migrations/000033_baseline.up.sql): the API and the worker
    # connect as their own roles, with their own password parameters; the migration task, as the
    # master user, keeps the roles in step with the parameters.
    db_api_role                    = "rates_api"
    db_worker_role                 = "rates_worker"
    db_api_password_parameter      = "/rates/${local.environment}/db/api-password"
    db_worker_password_parameter   = "/rates/${local.environment}/db/worker-password"
    migrate_task_definition_family = "rates-${local.environment}-migrate"
    migrate_log_group              = "/ecs/rates-${local.environment}-migrate"
    db_instance                    = "rates-${local.environment}"
    load_balancer                  = "rates-${local.environment}"

    # Ingestion (modules/ingest): the worker runs the same image and container name as the API.
    worker_service                = "rates-${local.environment}-worker"
    worker_task_definition_family = "rates-${local.environment}-worker"
    worker_log_group              = "/ecs/rates-${local.environment}-worker"
    ingest_queue                  = "rates-${local.environment}-ingest"
    ingest_dlq                    = "rates-${local.environment}-ingest-dlq"

    # Monitoring (modules/monitoring) and deployments (modules/github_oidc).
    alarm_topic        = "rates-${local.environment}-alarms"
    dashboard          = "rates-${local.environment}"
    github_deploy_role = "rates-${local.environment}-github-deploy"
    # Created by terraform/bootstrap under /rates-ci/: every role the stack creates carries it.
    permissions_boundary = "rates-${local.environment}-boundary"
  }

  # Container contract of the binary.
  container_port    = 3000
  metrics_port      = 9090
  health_check_path = "/readyz"

  # CloudWatch namespace of the application's metrics: the API and worker tasks publish into it
  # (embedded metric format on their log output), the monitoring module alarms on it. The
  # settings' alarm_ingest_lag_objective_seconds is the freshness objective (p99 of S3 event or
  # upload to commit) of alarm ingest-lag.
  metrics_namespace = local.name_prefix

  # INGEST_MAX_BATCH_DURATION of the worker: the deadline of one batch (and of the staging of a
  # multi-part batch's parts), which the queue's visibility timeout and the alarms on slow and
  # stuck batches follow.
  ingest_max_batch_duration_seconds = 600

  # One settings object per workspace. dev and staging are scaled-down copies of prod: same
  # resources and features, smaller sizes and counts, fewer protections.
  workspace_settings = {
    dev = {
      vpc_cidr           = "10.10.0.0/16"
      az_count           = 2
      single_nat_gateway = true

      # VPC endpoints instead of NAT for AWS traffic (hourly cost per zone and service).
      enable_vpc_endpoints = false
      # AWS WAF on the load balancer.
      enable_waf = false
      # A destroy deletes the load balancer's access logs with their bucket.
      alb_access_logs_force_destroy = true

      task_cpu               = 256
      task_memory            = 512
      desired_count          = 1
      min_capacity           = 1
      max_capacity           = 2
      enable_execute_command = true
      log_retention_days     = 14

      db_instance_class          = "db.t4g.micro"
      db_allocated_storage       = 20
      db_max_allocated_storage   = 50
      db_multi_az                = false
      db_deletion_protection     = false
      db_skip_final_snapshot     = true
      db_backup_retention_period = 1
      db_apply_immediately       = true
      # Read replicas serving /rates (docs/design.md: when to add one).
      db_read_replica_count = 0

      require_certificate          = false
      alb_deletion_protection      = false
      ecr_force_delete             = true
      kms_key_deletion_window_days = 7

      # The worker scales on the ingest queue's depth (batches, and the parts a multi-part batch
      # fans out into) up to worker_max_capacity: the cap on parallel loads, each task holding a
      # database pool of its own.
      worker_cpu          = 256
      worker_memory       = 512
      worker_min_capacity = 0
      worker_max_capacity = 1

      # The one-off seed task of the deploy imports the image's synthetic dump (skipped once
      # applied). Nowhere else: staging and prod hold real data, seeded on purpose only.
      seed_file = "/usr/share/rates/rates.sql"

      ingest_bucket_force_destroy        = true
      ingest_incoming_expiration_days    = 7
      ingest_reports_expiration_days     = 14
      ingest_noncurrent_expiration_days  = 7
      alarm_db_connections_threshold     = 60
      alarm_ingest_lag_objective_seconds = 3600
      alarm_db_free_storage_threshold_gb = 2
    }

    staging = {
      vpc_cidr           = "10.20.0.0/16"
      az_count           = 2
      single_nat_gateway = true

      # VPC endpoints instead of NAT for AWS traffic (hourly cost per zone and service).
      enable_vpc_endpoints = false
      # AWS WAF on the load balancer.
      enable_waf = true
      # A destroy deletes the load balancer's access logs with their bucket.
      alb_access_logs_force_destroy = false

      task_cpu               = 512
      task_memory            = 1024
      desired_count          = 2
      min_capacity           = 2
      max_capacity           = 4
      enable_execute_command = true
      log_retention_days     = 30

      db_instance_class          = "db.t4g.small"
      db_allocated_storage       = 20
      db_max_allocated_storage   = 100
      db_multi_az                = false
      db_deletion_protection     = true
      db_skip_final_snapshot     = false
      db_backup_retention_period = 7
      db_apply_immediately       = true
      # Read replicas serving /rates (docs/design.md: when to add one).
      db_read_replica_count = 0

      require_certificate          = false
      alb_deletion_protection      = false
      ecr_force_delete             = false
      kms_key_deletion_window_days = 30

      worker_cpu          = 256
      worker_memory       = 512
      worker_min_capacity = 0
      worker_max_capacity = 2

      seed_file = ""

      ingest_bucket_force_destroy        = false
      ingest_incoming_expiration_days    = 14
      ingest_reports_expiration_days     = 30
      ingest_noncurrent_expiration_days  = 14
      alarm_db_connections_threshold     = 170
      alarm_ingest_lag_objective_seconds = 1800
      alarm_db_free_storage_threshold_gb = 2
    }

    prod = {
      vpc_cidr           = "10.30.0.0/16"
      az_count           = 3
      single_nat_gateway = false

      # VPC endpoints instead of NAT for AWS traffic (hourly cost per zone and service).
      enable_vpc_endpoints = true
      # AWS WAF on the load balancer.
      enable_waf = true
      # A destroy deletes the load balancer's access logs with their bucket.
      alb_access_logs_force_destroy = false

      task_cpu               = 1024
      task_memory            = 2048
      desired_count          = 3
      min_capacity           = 3
      max_capacity           = 12
      enable_execute_command = false
      log_retention_days     = 90

      db_instance_class          = "db.m7g.large"
      db_allocated_storage       = 50
      db_max_allocated_storage   = 500
      db_multi_az                = true
      db_deletion_protection     = true
      db_skip_final_snapshot     = false
      db_backup_retention_period = 14
      db_apply_immediately       = false
      # Read replicas serving /rates (docs/design.md: when to add one).
      db_read_replica_count = 0

      require_certificate          = true
      alb_deletion_protection      = true
      ecr_force_delete             = false
      kms_key_deletion_window_days = 30

      worker_cpu          = 512
      worker_memory       = 1024
      worker_min_capacity = 1
      worker_max_capacity = 4

      seed_file = ""

      ingest_bucket_force_destroy        = false
      ingest_incoming_expiration_days    = 30
      ingest_reports_expiration_days     = 90
      ingest_noncurrent_expiration_days  = 30
      alarm_db_connections_threshold     = 700
      alarm_ingest_lag_objective_seconds = 600
      alarm_db_free_storage_threshold_gb = 10
    }
  }

  known_environment = contains(keys(local.workspace_settings), local.environment)

  # For an unknown workspace this falls back to the dev object only so that planning can reach the
  # precondition of terraform_data.workspace_guard, which then refuses the plan with a clear message.
  settings = local.known_environment ? local.workspace_settings[local.environment] : local.workspace_settings["dev"]

  # Region and account of the workspace (var.environments, from terraform/environments.auto.tfvars
  # written by bootstrap): account IDs are the team's data, not code, so they live in that file.
  placement = lookup(var.environments, local.environment, null)
  # null keeps the workspace's setting; "" turns seeding off (coalesce would skip an empty string).
  seed_file = var.seed_file != null ? var.seed_file : local.settings.seed_file
}
