variable "name" {
  description = "Name of the load balancer and prefix of its security group and target group (for example `rates-dev`). At most 28 characters so that `<name>-api` fits the 32-character limit of target groups."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,26}[a-z0-9]$", var.name))
    error_message = "The name must be 2-28 lowercase letters, digits or hyphens, start with a letter and not end with a hyphen."
  }
}

variable "vpc_id" {
  description = "ID of the VPC the load balancer and its target group live in."
  type        = string
}

variable "vpc_cidr_block" {
  description = "CIDR block of the VPC. The load balancer may only send traffic (requests and health checks) to this range, on `target_port`."
  type        = string

  validation {
    condition     = can(cidrhost(var.vpc_cidr_block, 0))
    error_message = "The vpc_cidr_block must be a valid IPv4 CIDR block."
  }
}

variable "subnet_ids" {
  description = "IDs of the public subnets the load balancer is placed in (at least two zones)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "An application load balancer needs subnets in at least two availability zones."
  }
}

variable "ingress_cidr_blocks" {
  description = "IPv4 CIDR blocks allowed to reach the listeners. The default is the whole internet: the API is public."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = alltrue([for c in var.ingress_cidr_blocks : can(cidrhost(c, 0))])
    error_message = "Every entry of ingress_cidr_blocks must be a valid IPv4 CIDR block."
  }
}

variable "certificate_arn" {
  description = "ARN of an ACM certificate for the HTTPS listener. When set, port 443 serves HTTPS and port 80 redirects to it; when null (dev without a domain), port 80 forwards to the service."
  type        = string
  default     = null

  validation {
    condition     = var.certificate_arn == null || can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/.+$", var.certificate_arn))
    error_message = "The certificate_arn must be null or the ARN of an ACM certificate."
  }
}

variable "target_port" {
  description = "Container port the target group sends requests and health checks to."
  type        = number
  default     = 3000

  validation {
    condition     = var.target_port >= 1 && var.target_port <= 65535
    error_message = "The target_port must be between 1 and 65535."
  }
}

variable "health_check_path" {
  description = "Path of the target group's health check: the service's readiness endpoint."
  type        = string
  default     = "/readyz"

  validation {
    condition     = startswith(var.health_check_path, "/")
    error_message = "The health_check_path must start with a slash."
  }
}

variable "enable_deletion_protection" {
  description = "Whether AWS refuses to delete the load balancer until this is turned off again."
  type        = bool
  default     = true
}

variable "enable_access_logs" {
  description = "Write the load balancer's access logs to a bucket of their own (SSE-S3, TLS-only, private, expired after access_logs_expiration_days)."
  type        = bool
  default     = true
}

variable "access_logs_expiration_days" {
  description = "Days the access logs are kept."
  type        = number
  default     = 30

  validation {
    condition     = var.access_logs_expiration_days >= 1
    error_message = "The access_logs_expiration_days must be at least 1."
  }
}

variable "access_logs_force_destroy" {
  description = "Let a destroy delete the access logs bucket with its objects (dev); otherwise a destroy stops at a bucket that still holds logs."
  type        = bool
  default     = false
}
