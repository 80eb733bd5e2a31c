variable "name" {
  description = "Prefix of every resource of the module (for example `rates-dev`): bucket `<name>-ingest-<account id>-<region>`, queues `<name>-ingest` and `<name>-ingest-dlq`, key alias `alias/<name>-ingest`."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "The name must be 2-31 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "max_batch_duration_seconds" {
  description = "INGEST_MAX_BATCH_DURATION of the worker: the deadline of one batch from its first statement to its commit (download, COPY, validation, insert); statement_timeout and lock_timeout derive from it. Past it the load rolls back and the message comes back for a retry. The queue's visibility timeout is 5 minutes longer."
  type        = number

  validation {
    condition     = var.max_batch_duration_seconds >= 1 && var.max_batch_duration_seconds <= 42900 && floor(var.max_batch_duration_seconds) == var.max_batch_duration_seconds
    error_message = "The max_batch_duration_seconds must be a whole number from 1 to 42900 (the queue's visibility timeout, 300 s longer, may not exceed 12 hours)."
  }
}

variable "incoming_expiration_days" {
  description = "Days after which batches under incoming/ expire (they are loaded within minutes; the rest is a window for replays and audits)."
  type        = number

  validation {
    condition     = var.incoming_expiration_days >= 1 && floor(var.incoming_expiration_days) == var.incoming_expiration_days
    error_message = "The incoming_expiration_days must be a whole number of at least 1."
  }
}

variable "reports_expiration_days" {
  description = "Days after which the reports of rejected batches (under reports/) expire."
  type        = number

  validation {
    condition     = var.reports_expiration_days >= 1 && floor(var.reports_expiration_days) == var.reports_expiration_days
    error_message = "The reports_expiration_days must be a whole number of at least 1."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which overwritten or expired object versions are deleted for good."
  type        = number

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1 && floor(var.noncurrent_version_expiration_days) == var.noncurrent_version_expiration_days
    error_message = "The noncurrent_version_expiration_days must be a whole number of at least 1."
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
