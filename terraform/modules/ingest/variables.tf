################################################################################
# Names
################################################################################

# Settings passed on to modules/ecs_task (family, container, log group, sizes, user, stop timeout,
# log retention) are validated there.

variable "name" {
  description = "Prefix of every resource of the module (for example `rates-dev`): queues `<name>-ingest` and `<name>-ingest-dlq`, key alias, IAM roles, security group, scaling policies and alarms."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "The name must be 2-31 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "bucket_name" {
  description = "Name of the ingestion bucket. Null: `<name>-ingest-<account id>-<region>`, unique across AWS."
  type        = string
  default     = null

  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", coalesce(var.bucket_name, "-")))
    error_message = "The bucket_name must be a valid S3 bucket name: 3-63 lowercase letters, digits, dots or hyphens."
  }
}

variable "service_name" {
  description = "Name of the worker's ECS service (for example `rates-dev-worker`)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,255}$", var.service_name))
    error_message = "The service_name must be 1-255 letters, digits, hyphens or underscores."
  }
}

variable "task_family" {
  description = "Family of the worker's task definition (for example `rates-dev-worker`). The deploy workflow registers its revisions in this family."
  type        = string
}

variable "container_name" {
  description = "Name of the container in the worker's task definition (the same as the API's, so the deploy workflow uses one name)."
  type        = string
  default     = "rates"
}

variable "log_group_name" {
  description = "Name of the worker's CloudWatch log group (for example `/ecs/rates-dev-worker`)."
  type        = string
}

################################################################################
# Bucket
################################################################################

variable "incoming_prefix" {
  description = "Key prefix of the batches: every object created under it is announced on the queue. The worker's role may only read below it."
  type        = string
  default     = "incoming/"

  validation {
    condition     = can(regex("^[a-zA-Z0-9_.-]+/$", var.incoming_prefix))
    error_message = "The incoming_prefix must be one folder name ending in a slash, such as incoming/."
  }
}

variable "reports_prefix" {
  description = "Key prefix of the reports of rejected batches (INGEST_REPORTS_PREFIX). The worker's role may only write below it. Must differ from incoming_prefix, or reports would be announced as batches."
  type        = string
  default     = "reports/"

  validation {
    condition     = can(regex("^[a-zA-Z0-9_.-]+/$", var.reports_prefix)) && var.reports_prefix != var.incoming_prefix
    error_message = "The reports_prefix must be one folder name ending in a slash, such as reports/, different from incoming_prefix."
  }
}

variable "incoming_expiration_days" {
  description = "Days after which batches under incoming_prefix expire (they are loaded within minutes; the rest is a window for replays and audits)."
  type        = number
  default     = 30

  validation {
    condition     = var.incoming_expiration_days >= 1 && floor(var.incoming_expiration_days) == var.incoming_expiration_days
    error_message = "The incoming_expiration_days must be a whole number of at least 1."
  }
}

variable "reports_expiration_days" {
  description = "Days after which the reports of rejected batches expire."
  type        = number
  default     = 90

  validation {
    condition     = var.reports_expiration_days >= 1 && floor(var.reports_expiration_days) == var.reports_expiration_days
    error_message = "The reports_expiration_days must be a whole number of at least 1."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which overwritten or expired object versions are deleted for good."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1 && floor(var.noncurrent_version_expiration_days) == var.noncurrent_version_expiration_days
    error_message = "The noncurrent_version_expiration_days must be a whole number of at least 1."
  }
}

variable "abort_incomplete_multipart_upload_days" {
  description = "Days after which multipart uploads that were never completed are aborted (their parts are billed until then)."
  type        = number
  default     = 7

  validation {
    condition     = var.abort_incomplete_multipart_upload_days >= 1 && floor(var.abort_incomplete_multipart_upload_days) == var.abort_incomplete_multipart_upload_days
    error_message = "The abort_incomplete_multipart_upload_days must be a whole number of at least 1."
  }
}

variable "force_destroy" {
  description = "Whether destroying the module deletes the bucket with all its objects and versions. Off by default: a destroy fails while the bucket holds objects."
  type        = bool
  default     = false
}

variable "kms_key_deletion_window_in_days" {
  description = "Waiting period before the bucket's KMS key is deleted after a destroy."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_key_deletion_window_in_days >= 7 && var.kms_key_deletion_window_in_days <= 30
    error_message = "The kms_key_deletion_window_in_days must be between 7 and 30."
  }
}

################################################################################
# Queues
################################################################################

variable "max_batch_duration_seconds" {
  description = "INGEST_MAX_BATCH_DURATION of the worker: the deadline of one batch from its first statement to its commit (download, COPY, validation, insert); statement_timeout and lock_timeout derive from it. Past it the load rolls back and the message comes back for a retry, up to max_receive_count receives. The queue's visibility timeout must be longer."
  type        = number
  default     = 600

  validation {
    condition     = var.max_batch_duration_seconds >= 1 && floor(var.max_batch_duration_seconds) == var.max_batch_duration_seconds
    error_message = "The max_batch_duration_seconds must be a whole number of at least 1."
  }
}

variable "visibility_timeout_seconds" {
  description = "Visibility timeout of the queue and INGEST_VISIBILITY_TIMEOUT of the worker: how long a received message stays hidden. Longer than max_batch_duration_seconds, so a batch that is still loading is not handed to a second worker; it also bounds how soon the message of a crashed worker is retried. At most 12 hours."
  type        = number
  default     = 900

  validation {
    condition     = var.visibility_timeout_seconds > var.max_batch_duration_seconds && var.visibility_timeout_seconds <= 43200 && floor(var.visibility_timeout_seconds) == var.visibility_timeout_seconds
    error_message = "The visibility_timeout_seconds must be a whole number of seconds greater than max_batch_duration_seconds and at most 43200 (12 hours)."
  }
}

variable "message_retention_seconds" {
  description = "How long the queue keeps a message that nobody has processed (60 s to 14 days). The dead-letter queue keeps its messages 14 days, which SQS counts from the original enqueue time."
  type        = number
  default     = 345600

  validation {
    condition     = var.message_retention_seconds >= 60 && var.message_retention_seconds <= 1209600
    error_message = "The message_retention_seconds must be between 60 and 1209600 (14 days)."
  }
}

variable "max_receive_count" {
  description = "Receives after which a message that was never deleted moves to the dead-letter queue (redrive policy). Transient errors (database down, S3 timeout) leave the message for a retry; this bounds the retries."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000 && floor(var.max_receive_count) == var.max_receive_count
    error_message = "The max_receive_count must be a whole number between 1 and 1000."
  }
}

variable "receive_wait_time_seconds" {
  description = "Long-poll wait of the queue and INGEST_WAIT_TIME of the worker (0 to 20 seconds): an idle worker makes one request per wait."
  type        = number
  default     = 20

  validation {
    condition     = var.receive_wait_time_seconds >= 0 && var.receive_wait_time_seconds <= 20 && floor(var.receive_wait_time_seconds) == var.receive_wait_time_seconds
    error_message = "The receive_wait_time_seconds must be a whole number between 0 and 20."
  }
}

################################################################################
# Worker task
################################################################################

variable "image" {
  description = "Image of the worker container in the task definition Terraform registers (`<repository url>:<tag>`, the API's image). Deployments register newer revisions."
  type        = string
}

variable "cluster_arn" {
  description = "ARN of the ECS cluster the worker service runs in (the API's cluster)."
  type        = string
}

variable "cluster_name" {
  description = "Name of that ECS cluster (part of the autoscaling resource ID)."
  type        = string
}

variable "cpu" {
  description = "Task CPU units of the worker (256 = 0.25 vCPU)."
  type        = number
  default     = 256
}

variable "memory" {
  description = "Task memory of the worker in MiB; must be a combination Fargate supports for the chosen cpu. The loader streams, so its memory does not grow with the batch size."
  type        = number
  default     = 512
}

variable "cpu_architecture" {
  description = "CPU architecture of the image: X86_64 or ARM64 (Graviton). The same as the API's."
  type        = string
  default     = "X86_64"
}

variable "container_user" {
  description = "User (uid:gid) the worker container runs as. Must not be root."
  type        = string
  default     = "65532:65532"
}

variable "stop_timeout" {
  description = "Seconds ECS waits after SIGTERM before it kills the worker container (stopTimeout; 120 is the Fargate maximum). Keep it above shutdown_timeout_seconds."
  type        = number
  default     = 120
}

variable "shutdown_timeout_seconds" {
  description = "SHUTDOWN_TIMEOUT of the worker in seconds: after SIGTERM it stops polling and gives the batch in hand this long to commit, then rolls it back (the message then comes back). Below stop_timeout."
  type        = number
  default     = 110

  validation {
    condition     = var.shutdown_timeout_seconds >= 1 && var.shutdown_timeout_seconds < var.stop_timeout && floor(var.shutdown_timeout_seconds) == var.shutdown_timeout_seconds
    error_message = "The shutdown_timeout_seconds must be a whole number of at least 1 and below stop_timeout."
  }
}

variable "metrics_port" {
  description = "Port of the Prometheus metrics endpoint in the worker container (METRICS_ADDR)."
  type        = number
  default     = 9090

  validation {
    condition     = var.metrics_port >= 1 && var.metrics_port <= 65535
    error_message = "The metrics_port must be between 1 and 65535."
  }
}

variable "metrics_ingress_cidr_blocks" {
  description = "IPv4 CIDR blocks (inside the VPC) allowed to scrape the worker's metrics port. Empty: nobody. Nothing else may connect to the worker."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.metrics_ingress_cidr_blocks : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "Every entry must be a valid IPv4 CIDR block, and the metrics port must not be opened to 0.0.0.0/0."
  }
}

variable "log_level" {
  description = "LOG_LEVEL of the worker."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["debug", "info", "warn", "error"], var.log_level)
    error_message = "The log_level must be debug, info, warn or error."
  }
}

variable "log_retention_days" {
  description = "Days the worker's logs are kept."
  type        = number
  default     = 30
}

variable "extra_environment" {
  description = "Additional environment variables of the worker container. They cannot override the variables this module sets."
  type        = map(string)
  default     = {}
}

variable "ecr_repository_arn" {
  description = "ARN of the ECR repository the worker's execution role may pull from (the API's repository)."
  type        = string
}

################################################################################
# Database
################################################################################

variable "db_host" {
  description = "DB_HOST: host name of the PostgreSQL instance."
  type        = string
}

variable "db_port" {
  description = "DB_PORT: port of the PostgreSQL instance (also the worker's egress rule towards it)."
  type        = number
  default     = 5432
}

variable "db_name" {
  description = "DB_NAME: name of the database."
  type        = string
}

variable "db_user" {
  description = "DB_USER: user the worker connects as."
  type        = string
}

variable "db_password_parameter_name" {
  description = "DB_PASSWORD_SSM_PARAMETER: name of the SSM SecureString holding the database password."
  type        = string
}

variable "db_password_parameter_arn" {
  description = "ARN of that SSM parameter: the only parameter the worker's task role may read."
  type        = string
}

variable "db_password_kms_key_arn" {
  description = "ARN of the KMS key encrypting that parameter: the task role may decrypt with it, through SSM only."
  type        = string
}

variable "database_security_group_id" {
  description = "ID of the database's security group: the worker may open connections to it on db_port (the database must admit the worker's security group, output worker_security_group_id)."
  type        = string
}

################################################################################
# Network, service and scaling
################################################################################

variable "vpc_id" {
  description = "ID of the VPC of the worker's security group."
  type        = string
}

variable "subnet_ids" {
  description = "IDs of the private subnets the worker tasks run in (no public IP is assigned)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 1
    error_message = "At least one subnet is needed."
  }
}

variable "min_capacity" {
  description = "Fewest worker tasks: 0 lets an idle environment run none (the first message then waits for a task to start, about a minute); 1 keeps one polling."
  type        = number
  default     = 0

  validation {
    condition     = var.min_capacity >= 0 && floor(var.min_capacity) == var.min_capacity
    error_message = "The min_capacity must be a whole number of at least 0."
  }
}

variable "max_capacity" {
  description = "Most worker tasks the queue's backlog may scale out to (each loads one batch at a time; mind the database's connections)."
  type        = number
  default     = 2

  validation {
    condition     = var.max_capacity >= 1 && var.max_capacity >= var.min_capacity && floor(var.max_capacity) == var.max_capacity
    error_message = "The max_capacity must be a whole number of at least 1 and not below min_capacity."
  }
}

variable "scale_out_cooldown" {
  description = "Seconds after a scale-out step before the next one may start (time for the new tasks to start polling)."
  type        = number
  default     = 120

  validation {
    condition     = var.scale_out_cooldown >= 0
    error_message = "The scale_out_cooldown must not be negative."
  }
}

variable "scale_in_cooldown" {
  description = "Seconds after a scale-in before another scaling activity of the scale-in policy may start."
  type        = number
  default     = 60

  validation {
    condition     = var.scale_in_cooldown >= 0
    error_message = "The scale_in_cooldown must not be negative."
  }
}

variable "scale_in_idle_minutes" {
  description = "Minutes the queue must have had no message waiting or in flight before the worker service goes back to min_capacity."
  type        = number
  default     = 15

  validation {
    condition     = var.scale_in_idle_minutes >= 1 && var.scale_in_idle_minutes <= 1440 && floor(var.scale_in_idle_minutes) == var.scale_in_idle_minutes
    error_message = "The scale_in_idle_minutes must be a whole number between 1 and 1440."
  }
}

variable "enable_execute_command" {
  description = "Whether ECS Exec (`aws ecs execute-command`) is enabled on the worker. It adds the SSM Messages permissions to the task role."
  type        = bool
  default     = false
}

variable "metrics_namespace" {
  description = "CloudWatch namespace the binary publishes its metrics to in embedded metric format (modules/ecs_task `metrics_namespace`; dimension `Service` = service_name). Null publishes none."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource (on top of the provider's default tags)."
  type        = map(string)
  default     = {}
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary of the worker's task and execution roles (passed to modules/ecs_task)."
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
