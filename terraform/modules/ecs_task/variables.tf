################################################################################
# Names
################################################################################

variable "name" {
  description = "Prefix of the two IAM roles: `<name>-task-execution` and `<name>-task` (for example `rates-dev` or `rates-dev-worker`)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,40}$", var.name))
    error_message = "The name must be 2-41 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "service_name" {
  description = "Name of the ECS service that runs the task (for example `rates-dev-api`); used in the roles' descriptions."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,255}$", var.service_name))
    error_message = "The service_name must be 1-255 letters, digits, hyphens or underscores."
  }
}

variable "task_family" {
  description = "Family of the task definition (for example `rates-dev-api`). The deploy workflow registers its revisions in this family."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,255}$", var.task_family))
    error_message = "The task_family must be 1-255 letters, digits, hyphens or underscores."
  }
}

variable "container_name" {
  description = "Name of the one container in the task definition."
  type        = string
  default     = "rates"

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,255}$", var.container_name))
    error_message = "The container_name must be 1-255 letters, digits, hyphens or underscores."
  }
}

variable "log_group_name" {
  description = "Name of the CloudWatch log group of the container (for example `/ecs/rates-dev`)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_./#-]{1,512}$", var.log_group_name))
    error_message = "The log_group_name must be 1-512 characters of letters, digits and _ . / # -."
  }
}

variable "log_retention_days" {
  description = "Days the container logs are kept."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "The log_retention_days must be one of the retention periods CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

################################################################################
# Task and container
################################################################################

variable "image" {
  description = "Image of the container in the task definition Terraform registers (`<repository url>:<tag>`). Deployments register newer revisions with other images."
  type        = string
}

variable "command" {
  description = "Command of the container (arguments to the image's entry point). Null keeps the image's CMD."
  type        = list(string)
  default     = null
}

variable "environment" {
  description = "Environment variables of the container (sorted by name in the task definition, as ECS returns them). METRICS_EMF_NAMESPACE and METRICS_EMF_SERVICE (from metrics_namespace), AWS_REGION, DB_SSLMODE (verify-full) and DB_SSLROOTCERT (the image's RDS bundle) are set by the module and win over this map."
  type        = map(string)
  default     = {}
}

variable "port_mappings" {
  description = "Ports of the container (TCP, hostPort = containerPort as awsvpc requires): name, port and, for HTTP ports, app_protocol (`http`, `http2` or `grpc`)."
  type = list(object({
    name         = string
    port         = number
    app_protocol = optional(string)
  }))
  default = []

  validation {
    condition     = alltrue([for p in var.port_mappings : p.port >= 1 && p.port <= 65535 && (p.app_protocol == null || contains(["http", "http2", "grpc"], coalesce(p.app_protocol, "-")))])
    error_message = "Every port must be between 1 and 65535, with app_protocol null, http, http2 or grpc."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the application's metrics: sets METRICS_EMF_NAMESPACE (and METRICS_EMF_SERVICE to service_name), so the binary writes its metrics in embedded metric format to its log output, which the awslogs driver ships to the log group. Null publishes none (/metrics is served either way)."
  type        = string
  default     = null

  validation {
    condition     = var.metrics_namespace == null || (can(regex("^[a-zA-Z0-9._/#:-]{1,255}$", coalesce(var.metrics_namespace, "-"))) && !startswith(coalesce(var.metrics_namespace, "-"), "AWS/"))
    error_message = "The metrics_namespace must be 1-255 letters, digits and . _ / # : -, not starting with AWS/ (reserved for AWS services)."
  }
}

variable "cpu" {
  description = "Task CPU units (256 = 0.25 vCPU)."
  type        = number
  default     = 256

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.cpu)
    error_message = "The cpu must be one of the Fargate sizes 256, 512, 1024, 2048, 4096, 8192 or 16384."
  }
}

variable "memory" {
  description = "Task memory in MiB; must be a combination Fargate supports for the chosen cpu."
  type        = number
  default     = 512

  validation {
    condition = (
      var.cpu == 256 ? contains([512, 1024, 2048], var.memory) :
      var.cpu == 512 ? var.memory >= 1024 && var.memory <= 4096 && var.memory % 1024 == 0 :
      var.cpu == 1024 ? var.memory >= 2048 && var.memory <= 8192 && var.memory % 1024 == 0 :
      var.cpu == 2048 ? var.memory >= 4096 && var.memory <= 16384 && var.memory % 1024 == 0 :
      var.cpu == 4096 ? var.memory >= 8192 && var.memory <= 30720 && var.memory % 1024 == 0 :
      var.cpu == 8192 ? var.memory >= 16384 && var.memory <= 61440 && var.memory % 4096 == 0 :
      var.memory >= 32768 && var.memory <= 122880 && var.memory % 8192 == 0
    )
    error_message = "This cpu/memory combination is not supported by Fargate (for example 256 CPU takes 512, 1024 or 2048 MiB)."
  }
}

variable "stop_timeout" {
  description = "Seconds ECS waits after SIGTERM before it kills the container (stopTimeout)."
  type        = number
  default     = 30

  validation {
    condition     = var.stop_timeout >= 2 && var.stop_timeout <= 120
    error_message = "The stop_timeout must be between 2 and 120 seconds (the Fargate maximum)."
  }
}

################################################################################
# IAM
################################################################################

variable "ecr_repository_arn" {
  description = "ARN of the ECR repository the execution role may pull from."
  type        = string
}

variable "db_password_parameter_arn" {
  description = "ARN of the SSM parameter holding the password of the task's own database role: the only parameter the task role may read, besides additional_parameter_arns."
  type        = string
}

variable "additional_parameter_arns" {
  description = "Further SSM parameters the task role may read, encrypted with the same key: the migration task reads the passwords it sets on the services' roles. Empty for the services, which read their own password only."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.additional_parameter_arns : can(regex("^arn:[a-z-]+:ssm:[a-z0-9-]+:[0-9]{12}:parameter/", a))])
    error_message = "Every additional parameter must be an SSM parameter ARN."
  }
}

variable "db_password_kms_key_arn" {
  description = "ARN of the KMS key encrypting that parameter: the task role may decrypt with it, through SSM only."
  type        = string
}

variable "task_policy_name" {
  description = "Name of the task role's inline policy."
  type        = string
  default     = "read-database-password"

  validation {
    condition     = can(regex("^[a-zA-Z0-9+=,.@_-]{1,128}$", var.task_policy_name))
    error_message = "The task_policy_name must be 1-128 characters of letters, digits and + = , . @ _ -."
  }
}

variable "task_role_purpose" {
  description = "What the task role allows, in its description (`Task role of <service_name>: <purpose>`)."
  type        = string
  default     = "reads the database password parameter"
}

variable "task_policy_statements" {
  description = "Further statements of the task role's policy, as a JSON array (jsonencode([...])), placed before the password statements. Keep them to the task's own resources."
  type        = string
  default     = "[]"

  validation {
    condition     = can(length(jsondecode(var.task_policy_statements))) && startswith(trimspace(var.task_policy_statements), "[")
    error_message = "The task_policy_statements must be a JSON array of IAM policy statements."
  }
}

variable "enable_execute_command" {
  description = "Whether the service runs with ECS Exec. It adds the SSM Messages permissions to the task role and writable volumes at /var/lib/amazon and /var/log/amazon, where the injected SSM agent writes (the root filesystem is read-only)."
  type        = bool
  default     = false
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary of both roles (the environment's rates-<env>-boundary from terraform/bootstrap: its apply role may create roles only with it)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:policy/.+$", var.permissions_boundary_arn))
    error_message = "The permissions_boundary_arn must be the ARN of an IAM policy."
  }
}
