################################################################################
# Names
################################################################################

# Settings passed on to modules/ecs_task (family, container, log group, sizes, user, stop timeout,
# log retention) are validated there.

variable "name" {
  description = "Prefix of the IAM roles, security group and scaling policies (for example `rates-dev`)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,40}$", var.name))
    error_message = "The name must be 2-41 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "cluster_name" {
  description = "Name of the ECS cluster (for example `rates-dev`)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,255}$", var.cluster_name))
    error_message = "The cluster_name must be 1-255 letters, digits, hyphens or underscores."
  }
}

variable "service_name" {
  description = "Name of the ECS service (for example `rates-dev-api`)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,255}$", var.service_name))
    error_message = "The service_name must be 1-255 letters, digits, hyphens or underscores."
  }
}

variable "task_family" {
  description = "Family of the task definition (for example `rates-dev-api`). The deploy workflow registers its revisions in this family."
  type        = string
}

variable "container_name" {
  description = "Name of the application container in the task definition."
  type        = string
  default     = "rates"
}

variable "log_group_name" {
  description = "Name of the CloudWatch log group of the container (for example `/ecs/rates-dev`)."
  type        = string
}

################################################################################
# Task
################################################################################

variable "image" {
  description = "Image of the container in the task definition Terraform registers (`<repository url>:<tag>`). Deployments register newer revisions with other images; Terraform does not roll the service back to this one."
  type        = string
}

variable "cpu" {
  description = "Task CPU units (256 = 0.25 vCPU)."
  type        = number
  default     = 256
}

variable "memory" {
  description = "Task memory in MiB; must be a combination Fargate supports for the chosen cpu."
  type        = number
  default     = 512
}

variable "cpu_architecture" {
  description = "CPU architecture of the image: X86_64 or ARM64 (Graviton)."
  type        = string
  default     = "X86_64"
}

variable "container_port" {
  description = "Port of the HTTP API in the container (HTTP_ADDR); the only port the load balancer routes to."
  type        = number
  default     = 3000

  validation {
    condition     = var.container_port >= 1 && var.container_port <= 65535
    error_message = "The container_port must be between 1 and 65535."
  }
}

variable "metrics_port" {
  description = "Port of the Prometheus metrics endpoint in the container (METRICS_ADDR). Never behind the load balancer."
  type        = number
  default     = 9090

  validation {
    condition     = var.metrics_port >= 1 && var.metrics_port <= 65535 && var.metrics_port != var.container_port
    error_message = "The metrics_port must be between 1 and 65535 and differ from container_port."
  }
}

variable "metrics_ingress_cidr_blocks" {
  description = "IPv4 CIDR blocks (inside the VPC) allowed to scrape the metrics port. Empty: nobody."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.metrics_ingress_cidr_blocks : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "Every entry must be a valid IPv4 CIDR block, and the metrics port must not be opened to 0.0.0.0/0."
  }
}

variable "container_user" {
  description = "User (uid:gid) the container runs as. Must not be root."
  type        = string
  default     = "65532:65532"
}

variable "stop_timeout" {
  description = "Seconds ECS waits after SIGTERM before it kills the container; keep it above shutdown_timeout."
  type        = number
  default     = 30
}

variable "log_retention_days" {
  description = "Days the container logs are kept."
  type        = number
  default     = 30
}

################################################################################
# Application settings (environment of the container)
################################################################################

variable "log_level" {
  description = "LOG_LEVEL of the service."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["debug", "info", "warn", "error"], var.log_level)
    error_message = "The log_level must be debug, info, warn or error."
  }
}

variable "shutdown_timeout" {
  description = "SHUTDOWN_TIMEOUT of the service (Go duration): how long it drains requests after SIGTERM. Keep it below stop_timeout."
  type        = string
  default     = "25s"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$", var.shutdown_timeout))
    error_message = "The shutdown_timeout must be a Go duration such as 25s or 1m30s."
  }
}

variable "max_range_days" {
  description = "MAX_RANGE_DAYS of the service (longest date range a request may ask for). Null keeps the service default."
  type        = number
  default     = null

  validation {
    condition     = var.max_range_days == null || try(var.max_range_days >= 1, false)
    error_message = "The max_range_days must be null or at least 1."
  }
}

variable "extra_environment" {
  description = "Additional environment variables of the container. They cannot override the variables this module sets."
  type        = map(string)
  default     = {}
}

################################################################################
# Database
################################################################################

variable "db_host" {
  description = "DB_HOST: host name of the PostgreSQL instance."
  type        = string
}

variable "db_read_host" {
  description = "DB_READ_HOST: host name of one read replica that serves the /rates reads (data generation and answers). Null: every read goes to db_host."
  type        = string
  default     = null
}

variable "db_port" {
  description = "DB_PORT: port of the PostgreSQL instance (also the service's egress rule towards it)."
  type        = number
  default     = 5432
}

variable "db_name" {
  description = "DB_NAME: name of the database."
  type        = string
}

variable "db_user" {
  description = "DB_USER: user the service connects as."
  type        = string
}

variable "db_password_parameter_name" {
  description = "DB_PASSWORD_SSM_PARAMETER: name of the SSM SecureString holding the database password."
  type        = string
}

variable "db_password_parameter_arn" {
  description = "ARN of that SSM parameter: the only parameter the task role may read."
  type        = string
}

variable "db_password_kms_key_arn" {
  description = "ARN of the KMS key encrypting that parameter: the task role may decrypt with it, through SSM only."
  type        = string
}

variable "database_security_group_id" {
  description = "ID of the database's security group: the service may open connections to it on db_port."
  type        = string
}

################################################################################
# Network and load balancer
################################################################################

variable "vpc_id" {
  description = "ID of the VPC of the service's security group."
  type        = string
}

variable "subnet_ids" {
  description = "IDs of the private subnets the tasks run in (no public IP is assigned)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 1
    error_message = "At least one subnet is needed."
  }
}

variable "alb_security_group_id" {
  description = "ID of the load balancer's security group: the only source admitted on container_port."
  type        = string
}

variable "target_group_arn" {
  description = "ARN of the load balancer's target group (type ip) the service registers its tasks in."
  type        = string
}

variable "alb_arn_suffix" {
  description = "ARN suffix of the load balancer, for the ALBRequestCountPerTarget scaling metric."
  type        = string
}

variable "target_group_arn_suffix" {
  description = "ARN suffix of the target group, for the ALBRequestCountPerTarget scaling metric."
  type        = string
}

variable "ecr_repository_arn" {
  description = "ARN of the ECR repository the execution role may pull from."
  type        = string
}

################################################################################
# Service, deployments and scaling
################################################################################

variable "desired_count" {
  description = "Number of tasks the service starts with (autoscaling moves it between min_capacity and max_capacity afterwards)."
  type        = number
  default     = 1

  validation {
    condition     = var.desired_count >= var.min_capacity && var.desired_count <= var.max_capacity
    error_message = "The desired_count must lie between min_capacity and max_capacity."
  }
}

variable "min_capacity" {
  description = "Lowest number of tasks autoscaling may scale in to."
  type        = number
  default     = 1

  validation {
    condition     = var.min_capacity >= 1
    error_message = "The min_capacity must be at least 1."
  }
}

variable "max_capacity" {
  description = "Highest number of tasks autoscaling may scale out to."
  type        = number
  default     = 2

  validation {
    condition     = var.max_capacity >= var.min_capacity
    error_message = "The max_capacity must not be below min_capacity."
  }
}

variable "cpu_target_value" {
  description = "Average CPU utilisation (percent) the CPU scaling policy keeps the service at."
  type        = number
  default     = 60

  validation {
    condition     = var.cpu_target_value > 0 && var.cpu_target_value <= 100
    error_message = "The cpu_target_value must be a percentage between 0 and 100."
  }
}

variable "requests_per_target" {
  description = "Requests per task and minute (ALBRequestCountPerTarget) the request scaling policy keeps the service at."
  type        = number
  default     = 1000

  validation {
    condition     = var.requests_per_target >= 1
    error_message = "The requests_per_target must be at least 1."
  }
}

variable "scale_in_cooldown" {
  description = "Seconds after a scale-in before another scale-in may start."
  type        = number
  default     = 300
}

variable "scale_out_cooldown" {
  description = "Seconds after a scale-out before another scale-out may start."
  type        = number
  default     = 60
}

variable "health_check_grace_period_seconds" {
  description = "Seconds ECS ignores failing load balancer health checks of a new task: long enough for the migrations and the seed import that run before /readyz turns 200."
  type        = number
  default     = 120

  validation {
    condition     = var.health_check_grace_period_seconds >= 0 && var.health_check_grace_period_seconds <= 2147483647
    error_message = "The health_check_grace_period_seconds must not be negative."
  }
}

variable "enable_execute_command" {
  description = "Whether ECS Exec (`aws ecs execute-command`) is enabled. It adds the SSM Messages permissions to the task role."
  type        = bool
  default     = false
}

variable "metrics_namespace" {
  description = "CloudWatch namespace the binary publishes its metrics to in embedded metric format (modules/ecs_task `metrics_namespace`; dimension `Service` = service_name). Null publishes none."
  type        = string
  default     = null
}

variable "container_insights" {
  description = "Container Insights level of the cluster: enhanced, enabled or disabled."
  type        = string
  default     = "enabled"

  validation {
    condition     = contains(["enhanced", "enabled", "disabled"], var.container_insights)
    error_message = "The container_insights must be enhanced, enabled or disabled."
  }
}

variable "tags" {
  description = "Tags added to every resource (on top of the provider's default tags)."
  type        = map(string)
  default     = {}
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary of the task and execution roles (passed to modules/ecs_task)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:policy/.+$", var.permissions_boundary_arn))
    error_message = "The permissions_boundary_arn must be the ARN of an IAM policy."
  }
}

variable "https_egress_cidr_block" {
  description = "Where the tasks may open HTTPS connections: the AWS APIs they call. Default: anywhere, through the NAT gateway (AWS endpoints have no fixed addresses). With VPC endpoints: the VPC's CIDR block, where the interface endpoints are."
  type        = string
  default     = "0.0.0.0/0"
  nullable    = false

  validation {
    condition     = can(cidrhost(var.https_egress_cidr_block, 0))
    error_message = "The https_egress_cidr_block must be an IPv4 CIDR block."
  }
}

variable "https_egress_prefix_list_ids" {
  description = "Prefix lists the tasks may also reach over HTTPS: the S3 gateway endpoint's (image layers from ECR, S3 objects) when https_egress_cidr_block is the VPC's. Empty: none."
  type        = list(string)
  default     = []
  nullable    = false
}
