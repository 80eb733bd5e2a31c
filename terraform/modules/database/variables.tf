variable "identifier" {
  description = "Identifier of the DB instance and prefix of its companion resources (for example `rates-dev`)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,50}[a-z0-9]$", var.identifier)) && !strcontains(var.identifier, "--")
    error_message = "The identifier must be 2-52 lowercase letters, digits or single hyphens, start with a letter and not end with a hyphen."
  }
}

variable "vpc_id" {
  description = "ID of the VPC of the database's security group."
  type        = string
}

variable "subnet_ids" {
  description = "IDs of the isolated database subnets (at least two zones) of the DB subnet group."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "A DB subnet group needs subnets in at least two availability zones."
  }
}

variable "allowed_security_group_ids" {
  description = "Security groups allowed to connect on the database port, keyed by a static label (for example `{ service = sg-... }`). Nothing else can reach the database."
  type        = map(string)
  default     = {}
}

variable "instance_class" {
  description = "DB instance class (for example db.t4g.micro for dev, db.m7g.large for prod)."
  type        = string
  default     = "db.t4g.micro"

  validation {
    condition     = startswith(var.instance_class, "db.")
    error_message = "The instance_class must be an RDS instance class such as db.t4g.micro."
  }
}

variable "allocated_storage" {
  description = "Initial storage in GiB (gp3)."
  type        = number
  default     = 20

  validation {
    condition     = var.allocated_storage >= 20 && var.allocated_storage <= 65536
    error_message = "The allocated_storage must be between 20 and 65536 GiB for gp3."
  }
}

variable "max_allocated_storage" {
  description = "Upper limit in GiB for storage autoscaling; equal to allocated_storage disables autoscaling."
  type        = number
  default     = 100

  validation {
    condition     = var.max_allocated_storage >= var.allocated_storage
    error_message = "The max_allocated_storage must not be below allocated_storage."
  }
}

variable "master_password" {
  description = "Master password, ephemeral: it is only sent to the write-only arguments `aws_db_instance.password_wo` and `aws_ssm_parameter.value_wo` and never stored in state or plan files. The caller generates it (the root module uses the ephemeral `aws_secretsmanager_random_password`)."
  type        = string
  sensitive   = true
  ephemeral   = true
  nullable    = false

  validation {
    condition     = length(var.master_password) >= 16 && length(var.master_password) <= 128 && !can(regex("[/@\" ]", var.master_password))
    error_message = "The master password must be 16-128 characters without '/', '@', '\"' or spaces (RDS rejects those)."
  }
}

variable "master_password_version" {
  description = "Rotation knob of the master password. Write-only arguments are only sent when their version changes: increase this number to write a newly generated password to the DB instance and to the SSM parameter in the same apply. Leaving it unchanged keeps the current password."
  type        = number
  default     = 1

  validation {
    condition     = var.master_password_version >= 1 && floor(var.master_password_version) == var.master_password_version
    error_message = "The master_password_version must be a whole number of at least 1."
  }
}

variable "password_parameter_name" {
  description = "Name of the SSM SecureString parameter holding the master password (the service reads it at start, through DB_PASSWORD_SSM_PARAMETER)."
  type        = string

  validation {
    condition     = can(regex("^/[a-zA-Z0-9_.\\-/]+$", var.password_parameter_name))
    error_message = "The password_parameter_name must be a hierarchical SSM parameter name starting with a slash."
  }
}

variable "api_role_name" {
  description = "Login role of the API (DB_USER of the service): member of rates_reader, SELECT on what GET /rates needs."
  type        = string
  default     = "rates_api"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_]{0,62}$", var.api_role_name))
    error_message = "The api_role_name must be a lower-case PostgreSQL identifier."
  }
}

variable "worker_role_name" {
  description = "Login role of the ingest worker (DB_USER of the worker): member of rates_loader, what ingestion needs."
  type        = string
  default     = "rates_worker"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_]{0,62}$", var.worker_role_name))
    error_message = "The worker_role_name must be a lower-case PostgreSQL identifier."
  }
}

variable "api_password" {
  description = "Password of the API's role, ephemeral like master_password: only written to the SSM parameter's write-only value."
  type        = string
  sensitive   = true
  ephemeral   = true
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9]{16,128}$", var.api_password))
    error_message = "The api_password must be 16-128 letters and digits."
  }
}

variable "worker_password" {
  description = "Password of the worker's role, ephemeral like master_password: only written to the SSM parameter's write-only value."
  type        = string
  sensitive   = true
  ephemeral   = true
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9]{16,128}$", var.worker_password))
    error_message = "The worker_password must be 16-128 letters and digits."
  }
}

variable "role_password_version" {
  description = "Rotation knob of the two role passwords: increase it to write newly generated passwords to their parameters; the next migration task sets them on the roles, and services started after it use them."
  type        = number
  default     = 1

  validation {
    condition     = var.role_password_version >= 1 && floor(var.role_password_version) == var.role_password_version
    error_message = "The role_password_version must be a whole number of at least 1."
  }
}

variable "api_password_parameter_name" {
  description = "Name of the SSM SecureString holding the API role's password (DB_PASSWORD_SSM_PARAMETER of the API)."
  type        = string

  validation {
    condition     = can(regex("^/[a-zA-Z0-9_.\\-/]+$", var.api_password_parameter_name))
    error_message = "The api_password_parameter_name must be a hierarchical SSM parameter name starting with a slash."
  }
}

variable "worker_password_parameter_name" {
  description = "Name of the SSM SecureString holding the worker role's password (DB_PASSWORD_SSM_PARAMETER of the worker)."
  type        = string

  validation {
    condition     = can(regex("^/[a-zA-Z0-9_.\\-/]+$", var.worker_password_parameter_name))
    error_message = "The worker_password_parameter_name must be a hierarchical SSM parameter name starting with a slash."
  }
}

variable "multi_az" {
  description = "Whether RDS keeps a synchronous standby in a second zone (prod)."
  type        = bool
  default     = false
}

variable "deletion_protection" {
  description = "Whether AWS refuses to delete the DB instance until this is turned off again."
  type        = bool
  default     = true
}

variable "skip_final_snapshot" {
  description = "Whether destroying the instance skips the final snapshot. Off by default: a destroy leaves a snapshot named `<identifier>-final`."
  type        = bool
  default     = false
}

variable "backup_retention_period" {
  description = "Days automated backups (point-in-time recovery) are kept."
  type        = number
  default     = 7

  validation {
    condition     = var.backup_retention_period >= 1 && var.backup_retention_period <= 35
    error_message = "The backup_retention_period must be between 1 and 35 days (0 would disable backups)."
  }
}

variable "log_retention_days" {
  description = "Days the exported PostgreSQL logs are kept in CloudWatch Logs."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "The log_retention_days must be one of the retention periods CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "apply_immediately" {
  description = "Whether changes that need a restart are applied at once instead of in the next maintenance window."
  type        = bool
  default     = false
}

variable "kms_key_deletion_window_in_days" {
  description = "Waiting period before the database's KMS key is deleted after a destroy."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_key_deletion_window_in_days >= 7 && var.kms_key_deletion_window_in_days <= 30
    error_message = "The kms_key_deletion_window_in_days must be between 7 and 30."
  }
}

variable "read_replica_count" {
  description = "Number of read replicas of the instance (0-5). The API reads /rates from the first one (DB_READ_HOST); see docs/design.md for when to add one."
  type        = number
  default     = 0

  validation {
    condition     = var.read_replica_count >= 0 && var.read_replica_count <= 5 && floor(var.read_replica_count) == var.read_replica_count
    error_message = "The read_replica_count must be a whole number from 0 to 5."
  }
}
