################################################################################
# Names and notifications
################################################################################

variable "name" {
  description = "Prefix of every name (for example `rates-dev`): topic `<name>-alarms`, dashboard `<name>`, alarms `<name>-<alarm>`."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,40}$", var.name))
    error_message = "The name must be 2-41 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the application's metrics (the tasks' METRICS_EMF_NAMESPACE, for example `rates-dev`); the worker's error-line metric goes there too."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9._/#:-]{1,255}$", var.metrics_namespace)) && !startswith(var.metrics_namespace, "AWS/")
    error_message = "The metrics_namespace must be 1-255 letters, digits and . _ / # : -, not starting with AWS/."
  }
}

variable "alarm_email" {
  description = "E-mail address subscribed to the alarm topic. Null: no subscription (subscribe later, for example a chat integration). AWS sends a confirmation message first."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", coalesce(var.alarm_email, "-")))
    error_message = "The alarm_email must be an e-mail address."
  }
}

variable "kms_key_deletion_window_in_days" {
  description = "Waiting period before the topic's KMS key is deleted after a destroy."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_key_deletion_window_in_days >= 7 && var.kms_key_deletion_window_in_days <= 30
    error_message = "The kms_key_deletion_window_in_days must be between 7 and 30."
  }
}

################################################################################
# What is watched
################################################################################

variable "alb_arn_suffix" {
  description = "ARN suffix of the load balancer (`app/<name>/<id>`, the LoadBalancer dimension)."
  type        = string
}

variable "target_group_arn_suffix" {
  description = "ARN suffix of the API's target group (`targetgroup/<name>/<id>`, the TargetGroup dimension)."
  type        = string
}

variable "ecs_cluster_name" {
  description = "Name of the ECS cluster of the API and the worker."
  type        = string
}

variable "api_service_name" {
  description = "Name of the API's ECS service."
  type        = string
}

variable "worker_service_name" {
  description = "Name of the ingest worker's ECS service."
  type        = string
}

variable "worker_log_group_name" {
  description = "Log group of the worker: its JSON lines with level ERROR are counted as the custom metric WorkerErrors."
  type        = string
}

variable "db_instance_identifier" {
  description = "Identifier of the RDS instance."
  type        = string
}

variable "queue_name" {
  description = "Name of the ingestion queue."
  type        = string
}

variable "dlq_name" {
  description = "Name of the ingestion queue's dead-letter queue."
  type        = string
}

################################################################################
# Thresholds
################################################################################

variable "batch_deadline_seconds" {
  description = "INGEST_MAX_BATCH_DURATION of the worker in seconds: a multi-part batch still staging its parts after this long fires staged-batch-age, and a loaded batch that took half of it fires batch-duration."
  type        = number

  validation {
    condition     = var.batch_deadline_seconds >= 60
    error_message = "The batch_deadline_seconds must be at least 60."
  }
}

variable "db_free_storage_threshold_bytes" {
  description = "Free storage (bytes) of the database instance below which the alarm fires. Default 2 GiB."
  type        = number
  default     = 2147483648

  validation {
    condition     = var.db_free_storage_threshold_bytes > 0
    error_message = "The db_free_storage_threshold_bytes must be positive."
  }
}

variable "db_connections_threshold" {
  description = "Connections to the database instance above which the alarm fires after 10 minutes; set it to about 80 % of the instance class's max_connections."
  type        = number
  default     = 80

  validation {
    condition     = var.db_connections_threshold >= 1
    error_message = "The db_connections_threshold must be at least 1."
  }
}

variable "ingest_lag_objective_seconds" {
  description = "Freshness objective: 99th percentile (per 5 minutes) of the time from a batch's S3 event or upload to its commit (rates_ingest_lag_seconds) above which the alarm fires. Percentiles read as their bucket's upper bound, so pick a bound: 60, 120, 300, 600, 1800, 3600, 7200 ..."
  type        = number
  default     = 1800

  validation {
    condition     = var.ingest_lag_objective_seconds >= 60
    error_message = "The ingest_lag_objective_seconds must be at least 60."
  }
}
