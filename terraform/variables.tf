variable "environments" {
  description = "Region and AWS account of each workspace, set in environments.auto.tfvars (output environments_tfvars of bootstrap/). The selected workspace's entry configures the provider; a workspace without an entry, or credentials of another account, are refused."
  type = map(object({
    region     = string
    account_id = string
  }))
  default  = {}
  nullable = false
}

variable "db_master_password_version" {
  description = "Rotation knob of the database master password. Each plan generates a fresh random password, but it is only written (to RDS and to the SSM parameter, together) when this number changes. Increase it to rotate; only the migration task uses it, reading it at each start, so nothing needs a restart."
  type        = number
  default     = 1
}

variable "db_role_password_version" {
  description = "Rotation knob of the passwords of the API's and the worker's database roles: increase it to write newly generated passwords to their SSM parameters; the migration task of the deploy that follows sets them on the roles."
  type        = number
  default     = 1
}

variable "certificate_arn" {
  description = "ARN of the ACM certificate for the API's domain (api_domain), in the workspace's region; set both or neither. Null: plain HTTP on port 80 (dev or staging without a domain; the prod workspace refuses to plan without it)."
  type        = string
  default     = null
}

variable "api_domain" {
  description = "Domain name of the API, which certificate_arn covers and whose DNS record points at the load balancer (output alb_dns_name); set both or neither. The deploy's smoke test calls https://<api_domain> (output api_url), connecting to the load balancer. Null: the load balancer's own name over plain HTTP."
  type        = string
  default     = null

  validation {
    condition     = var.api_domain == null || can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.api_domain))
    error_message = "The api_domain must be a lower-case DNS name such as api.example.com (no scheme, no port)."
  }
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

variable "db_read_replica_count" {
  description = "Read replicas of the database, overriding the workspace setting (null keeps it). The API reads /rates from the first replica (DB_READ_HOST); see docs/design.md for when to add one."
  type        = number
  default     = null
}

variable "alarm_email" {
  description = "E-mail address subscribed to the environment's alarm topic (AWS asks it to confirm first). Null: no subscription."
  type        = string
  default     = null
}
