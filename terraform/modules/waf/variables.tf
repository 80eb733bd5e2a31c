variable "name" {
  description = "Name of the web ACL and prefix of its metric names (for example `rates-prod`)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,100}$", var.name))
    error_message = "The name must be 1-100 letters, digits, hyphens or underscores."
  }
}

variable "load_balancer_arn" {
  description = "ARN of the application load balancer the web ACL protects."
  type        = string
}
