variable "environment" {
  description = "Environment to build: the root module passes `terraform.workspace`. Selects the settings object of locals.tf (dev, staging or prod) and names every resource `rates-<environment>...`."
  type        = string
  nullable    = false
}

variable "environments" {
  description = "Region and AWS account of each workspace (the root module reads terraform/environments.auto.tfvars, which the bootstrap output environments_tfvars fills). The stack refuses to plan a workspace that is missing here, or whose provider region or credentials' account differ."
  type = map(object({
    region     = string
    account_id = string
  }))
  default  = {}
  nullable = false

  validation {
    condition = alltrue([
      for e in values(var.environments) : can(regex("^[0-9]{12}$", e.account_id)) && can(regex("^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$", e.region))
    ])
    error_message = "Each environment needs a region name such as eu-central-1 and a 12-digit account ID."
  }
}

variable "db_master_password" {
  description = "Master password of the database, ephemeral: it only reaches write-only arguments (RDS and the SSM SecureString) and never the state or a plan file. The root module generates it with Secrets Manager's GetRandomPassword."
  type        = string
  sensitive   = true
  ephemeral   = true
  nullable    = false
}

variable "db_master_password_version" {
  description = "Rotation knob of the database master password: increase it to write a newly generated password to RDS and to the SSM parameter in one apply (only the migration task uses it, reading it at each start)."
  type        = number
  default     = 1
}

variable "db_api_password" {
  description = "Password of the API's database role, ephemeral like db_master_password: only written to its SSM parameter."
  type        = string
  sensitive   = true
  ephemeral   = true
  nullable    = false
}

variable "db_worker_password" {
  description = "Password of the worker's database role, ephemeral like db_master_password: only written to its SSM parameter."
  type        = string
  sensitive   = true
  ephemeral   = true
  nullable    = false
}

variable "db_role_password_version" {
  description = "Rotation knob of the two role passwords: increase it to write newly generated passwords to their parameters (the next migration task sets them on the roles)."
  type        = number
  default     = 1
}

variable "certificate_arn" {
  description = "ARN of the ACM certificate of the API's domain. Null: the load balancer serves plain HTTP on port 80 (dev or staging without a domain; prod refuses it). Set: HTTPS on 443 and port 80 redirects."
  type        = string
  default     = null
}

variable "api_domain" {
  description = "Domain name of the API, which certificate_arn covers; set both or neither. Null: the load balancer's own name over plain HTTP."
  type        = string
  default     = null

  validation {
    condition     = var.api_domain == null || can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.api_domain))
    error_message = "The api_domain must be a lower-case DNS name such as api.example.com (no scheme, no port)."
  }
}

variable "alb_ingress_cidr_blocks" {
  description = "IPv4 CIDR blocks allowed to reach the load balancer."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "image_tag" {
  description = "Tag of the image in the task definition revision Terraform registers. The deploy workflow registers later revisions with the tag of each build (the service ignores Terraform's revision after creation). No image carries it: the first deployment's migration task creates the database roles the tasks connect as, so nothing can serve before it."
  type        = string
  default     = "bootstrap"

  validation {
    condition     = can(regex("^[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,127}$", var.image_tag))
    error_message = "The image_tag must be a valid image tag (letters, digits, _ . -, at most 128 characters)."
  }
}

variable "log_level" {
  description = "LOG_LEVEL of the service (debug, info, warn or error)."
  type        = string
  default     = "info"
}

variable "seed_file" {
  description = "SEED_FILE of the one-off seed task the deploy runs after the migration. Null keeps the workspace's setting (seed_file in locals.tf: the image's dump in dev, empty elsewhere); an empty string disables seeding."
  type        = string
  default     = null
}

variable "max_range_days" {
  description = "MAX_RANGE_DAYS of the service. Null keeps the service default."
  type        = number
  default     = null
}

variable "db_read_replica_count" {
  description = "Read replicas of the database, overriding the workspace setting db_read_replica_count (null keeps it). The API reads /rates from the first replica (DB_READ_HOST)."
  type        = number
  default     = null
}

variable "alarm_email" {
  description = "E-mail address subscribed to the alarm topic (it must confirm the subscription). Null: no subscription."
  type        = string
  default     = null
}
