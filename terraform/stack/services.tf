# The ECS side of the workspace: one cluster, the three tasks of the image (modules/ecs_task) and
# the two services that run two of them (modules/ecs_service). Each task and each service is an
# entry of a map below, so whatever they share is written once.

resource "aws_ecs_cluster" "this" {
  name = local.names.ecs_cluster

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  configuration {
    execute_command_configuration {
      logging = "DEFAULT"
    }
  }

  tags = { Name = local.names.ecs_cluster }
}

locals {
  # Every task's database and logs; each adds its own role and password parameter.
  db_environment = {
    DB_HOST    = module.database.address
    DB_PORT    = tostring(module.database.port)
    DB_NAME    = module.database.db_name
    LOG_FORMAT = "json"
    LOG_LEVEL  = var.log_level
  }

  # api and worker run as services; migrate is the deploy's one-off task: `rates migrate up` as the
  # master user (it also creates or updates the services' roles with the passwords of their
  # parameters), then, where SEED_FILE is set, `rates seed` with the same task definition. The
  # deploy runs it with the new image in the API's subnets and security group and waits for exit
  # 0. The services neither migrate (MIGRATE_ON_START unset: they check the schema) nor seed.
  # Each task has a role of its own: only the migration task reads the master password.
  tasks = {
    api = {
      role_prefix  = local.name_prefix
      service_name = local.names.ecs_service
      family       = local.names.task_definition_family
      log_group    = local.names.log_group
      command      = null
      cpu          = local.settings.task_cpu
      memory       = local.settings.task_memory
      # Above SHUTDOWN_TIMEOUT, the time the API drains its requests after SIGTERM.
      stop_timeout = 30
      port_mappings = [
        { name = "http", port = local.container_port, app_protocol = "http" },
        { name = "metrics", port = local.metrics_port, app_protocol = null },
      ]
      environment = merge(
        local.db_environment,
        {
          HTTP_ADDR                 = ":${local.container_port}"
          METRICS_ADDR              = ":${local.metrics_port}"
          DB_USER                   = module.database.api_role_name
          DB_PASSWORD_SSM_PARAMETER = module.database.api_password_parameter_name
          SHUTDOWN_TIMEOUT          = "25s"
        },
        var.max_range_days == null ? {} : { MAX_RANGE_DAYS = tostring(var.max_range_days) },
        # /rates reads go to the first read replica when there is one (cmd/rates: openReads).
        length(module.database.replica_addresses) == 0 ? {} : { DB_READ_HOST = module.database.replica_addresses[0] },
      )
      password_parameter_arn    = module.database.api_password_parameter_arn
      additional_parameter_arns = []
      policy_name               = "read-database-password"
      role_purpose              = "reads the database password parameter"
      policy_statements         = "[]"
      metrics_namespace         = local.metrics_namespace
      enable_execute_command    = local.settings.enable_execute_command
    }

    worker = {
      role_prefix  = "${local.name_prefix}-worker"
      service_name = local.names.worker_service
      family       = local.names.worker_task_definition_family
      log_group    = local.names.worker_log_group
      command      = ["worker"]
      cpu          = local.settings.worker_cpu
      memory       = local.settings.worker_memory
      # SIGTERM stops the polling; the batch in hand then has SHUTDOWN_TIMEOUT to commit or roll
      # back before ECS kills the container (120 s, the Fargate maximum).
      stop_timeout  = 120
      port_mappings = [{ name = "metrics", port = local.metrics_port, app_protocol = null }]
      environment = merge(local.db_environment, module.ingest.worker_environment, {
        METRICS_ADDR              = ":${local.metrics_port}"
        DB_USER                   = module.database.worker_role_name
        DB_PASSWORD_SSM_PARAMETER = module.database.worker_password_parameter_name
        SHUTDOWN_TIMEOUT          = "110s"
      })
      password_parameter_arn    = module.database.worker_password_parameter_arn
      additional_parameter_arns = []
      policy_name               = "ingest-batches"
      role_purpose              = "reads incoming batches, writes reports, consumes the ingestion queue and sends it the parts of multi-part batches"
      policy_statements         = module.ingest.worker_policy_statements
      metrics_namespace         = local.metrics_namespace
      enable_execute_command    = local.settings.enable_execute_command
    }

    migrate = {
      role_prefix   = "${local.name_prefix}-migrate"
      service_name  = local.names.migrate_task_definition_family
      family        = local.names.migrate_task_definition_family
      log_group     = local.names.migrate_log_group
      command       = ["migrate", "up"]
      cpu           = local.settings.worker_cpu
      memory        = local.settings.worker_memory
      stop_timeout  = 30
      port_mappings = []
      environment = merge(local.db_environment, {
        DB_USER                          = module.database.username
        DB_PASSWORD_SSM_PARAMETER        = module.database.password_parameter_name
        DB_API_ROLE                      = module.database.api_role_name
        DB_API_PASSWORD_SSM_PARAMETER    = module.database.api_password_parameter_name
        DB_WORKER_ROLE                   = module.database.worker_role_name
        DB_WORKER_PASSWORD_SSM_PARAMETER = module.database.worker_password_parameter_name
        SEED_FILE                        = local.seed_file
      })
      password_parameter_arn    = module.database.password_parameter_arn
      additional_parameter_arns = [module.database.api_password_parameter_arn, module.database.worker_password_parameter_arn]
      policy_name               = "read-database-passwords"
      role_purpose              = "reads the master password and the passwords it sets on the services' database roles"
      policy_statements         = "[]"
      metrics_namespace         = null
      enable_execute_command    = false
    }
  }

  services = {
    api = {
      name          = local.name_prefix
      service_name  = local.names.ecs_service
      desired_count = local.settings.desired_count
      min_capacity  = local.settings.min_capacity
      max_capacity  = local.settings.max_capacity
      load_balancer = {
        target_group_arn  = module.alb.target_group_arn
        security_group_id = module.alb.security_group_id
        container_name    = local.names.container
        container_port    = local.container_port
        resource_label    = "${module.alb.arn_suffix}/${module.alb.target_group_arn_suffix}"
      }
      queue_name = null
    }

    worker = {
      name          = "${local.name_prefix}-worker"
      service_name  = local.names.worker_service
      desired_count = local.settings.worker_min_capacity
      min_capacity  = local.settings.worker_min_capacity
      max_capacity  = local.settings.worker_max_capacity
      load_balancer = null
      queue_name    = module.ingest.queue_name
    }
  }
}

module "task" {
  source   = "../modules/ecs_task"
  for_each = local.tasks

  name           = each.value.role_prefix
  service_name   = each.value.service_name
  task_family    = each.value.family
  container_name = local.names.container
  log_group_name = each.value.log_group

  image         = "${module.ecr.repository_url}:${var.image_tag}"
  command       = each.value.command
  environment   = each.value.environment
  cpu           = each.value.cpu
  memory        = each.value.memory
  stop_timeout  = each.value.stop_timeout
  port_mappings = each.value.port_mappings

  log_retention_days        = local.settings.log_retention_days
  ecr_repository_arn        = module.ecr.repository_arn
  db_password_parameter_arn = each.value.password_parameter_arn
  additional_parameter_arns = each.value.additional_parameter_arns
  db_password_kms_key_arn   = module.database.kms_key_arn
  task_policy_name          = each.value.policy_name
  task_role_purpose         = each.value.role_purpose
  task_policy_statements    = each.value.policy_statements
  enable_execute_command    = each.value.enable_execute_command
  metrics_namespace         = each.value.metrics_namespace

  permissions_boundary_arn = local.permissions_boundary_arn
}

module "service" {
  source   = "../modules/ecs_service"
  for_each = local.services

  name                   = each.value.name
  service_name           = each.value.service_name
  cluster_arn            = aws_ecs_cluster.this.arn
  cluster_name           = aws_ecs_cluster.this.name
  task_definition_arn    = module.task[each.key].task_definition_arn
  enable_execute_command = local.settings.enable_execute_command

  vpc_id                     = module.network.vpc_id
  subnet_ids                 = module.network.private_subnet_ids
  database_security_group_id = module.database.security_group_id
  db_port                    = module.database.port
  https_egress               = local.task_https_egress

  desired_count = each.value.desired_count
  min_capacity  = each.value.min_capacity
  max_capacity  = each.value.max_capacity
  load_balancer = each.value.load_balancer
  queue_name    = each.value.queue_name
}
