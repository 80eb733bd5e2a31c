variable "region" {
  description = "AWS region of the state bucket (usually the region of the environments)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$", var.region))
    error_message = "The region must be an AWS region name such as eu-central-1."
  }
}

variable "bucket_name" {
  description = "Name of the state bucket. Null (the default) derives `rates-tfstate-<account id>-<region>` from the credentials in use, which is unique without editing anything."
  type        = string
  default     = null

  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "The bucket_name must be a valid S3 bucket name (3-63 lowercase letters, digits, dots or hyphens)."
  }
}

variable "state_key" {
  description = "Object key of the default workspace's state; other workspaces are stored under workspace_key_prefix."
  type        = string
  default     = "rates.tfstate"
}

variable "workspace_key_prefix" {
  description = "Prefix of the state objects of the non-default workspaces: `<prefix>/<workspace>/<state_key>`."
  type        = string
  default     = "env"
}

variable "noncurrent_version_retention_days" {
  description = "Days older versions of a state object are kept (to roll back a broken state)."
  type        = number
  default     = 90

  validation {
    condition     = var.noncurrent_version_retention_days >= 1
    error_message = "The noncurrent_version_retention_days must be at least 1."
  }
}

variable "github_repository" {
  description = "GitHub repository (`owner/name`) whose workflows may assume the CI roles through OIDC."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$", var.github_repository))
    error_message = "The github_repository must be `owner/name`, for example my-org/rates."
  }
}

variable "environments" {
  description = "Environments (Terraform workspaces and GitHub environments of the same name) that live in this account: each gets an apply role and a deploy role trusted by its GitHub environment only."
  type        = list(string)
  default     = ["dev", "staging", "prod"]

  validation {
    condition     = length(var.environments) > 0 && alltrue([for e in var.environments : can(regex("^[a-z][a-z0-9]{0,15}$", e))])
    error_message = "Give at least one environment; each must be 1-16 lowercase letters or digits, starting with a letter (it becomes part of role and resource names)."
  }

  validation {
    condition     = length(distinct(var.environments)) == length(var.environments)
    error_message = "Each environment must be listed once."
  }
}

variable "create_github_oidc_provider" {
  description = "Create the account's GitHub OIDC provider (token.actions.githubusercontent.com). Set false when the account already has it (another project created it): it is then looked up, never changed."
  type        = bool
  default     = true
}
