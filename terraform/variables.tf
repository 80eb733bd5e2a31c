variable "region" {
  description = "AWS region of the environment (for example eu-central-1)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$", var.region))
    error_message = "The region must be an AWS region name such as eu-central-1."
  }
}

variable "allowed_account_ids" {
  description = "AWS account IDs Terraform may run against; null allows any. Set it (for example in a tfvars file per account) to guard against applying with the wrong credentials."
  type        = list(string)
  default     = null

  validation {
    condition     = var.allowed_account_ids == null || alltrue([for id in coalesce(var.allowed_account_ids, []) : can(regex("^[0-9]{12}$", id))])
    error_message = "Every allowed account ID must have 12 digits."
  }
}

variable "db_master_password_version" {
  description = "Rotation knob of the database master password. Each plan generates a fresh random password, but it is only written (to RDS and to the SSM parameter, together) when this number changes. Increase it to rotate, then restart the service."
  type        = number
  default     = 1
}

variable "db_role_password_version" {
  description = "Rotation knob of the passwords of the API's and the worker's database roles: increase it to write newly generated passwords to their SSM parameters; the migration task of the deploy that follows sets them on the roles."
  type        = number
  default     = 1
}

variable "certificate_arn" {
  description = "ARN of the ACM certificate for the API's domain, in the same region. Null: plain HTTP on port 80 (dev or staging without a domain; the prod workspace refuses to plan without it)."
  type        = string
  default     = null
}

variable "alb_ingress_cidr_blocks" {
  description = "IPv4 CIDR blocks allowed to reach the load balancer. Default: everyone."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "image_tag" {
  description = "Image tag of the task definition revision Terraform registers; deployments register their own revisions later."
  type        = string
  default     = "bootstrap"
}

variable "log_level" {
  description = "LOG_LEVEL of the service: debug, info, warn or error."
  type        = string
  default     = "info"
}

variable "seed_file" {
  description = "SEED_FILE of the one-off seed task the deploy runs after the migration (a dump in the image). Null keeps the workspace's setting: the image's synthetic dump in dev, none in staging and prod; set it to seed staging or prod on purpose (docs/operations.md)."
  type        = string
  default     = null
}

variable "max_range_days" {
  description = "MAX_RANGE_DAYS of the service. Null keeps the service default."
  type        = number
  default     = null
}

variable "github_repository" {
  description = "GitHub repository (`owner/name`) whose deploy workflow may assume the environment's deploy role through OIDC."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$", var.github_repository))
    error_message = "The github_repository must be `owner/name`, for example my-org/rates."
  }
}

variable "github_oidc_provider_arn" {
  description = "ARN of the account's existing GitHub OIDC provider (token.actions.githubusercontent.com). Null: this workspace creates it. An account holds only one, so when several workspaces share an account, all but the first pass the ARN (output github_oidc_provider_arn of the first)."
  type        = string
  default     = null
}

variable "alarm_email" {
  description = "E-mail address subscribed to the environment's alarm topic (AWS asks it to confirm first). Null: no subscription."
  type        = string
  default     = null
}
