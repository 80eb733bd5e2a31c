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

variable "rate_limit" {
  description = "Requests one client IP may send in 5 minutes before it is blocked (AWS accepts 10 to 2,000,000,000)."
  type        = number
  default     = 3000

  validation {
    condition     = var.rate_limit >= 10 && var.rate_limit <= 2000000000
    error_message = "The rate_limit must be between 10 and 2000000000."
  }
}

variable "count_only_common_rules" {
  description = "Rules of AWSManagedRulesCommonRuleSet that only count instead of blocking. Default: SizeRestrictions_BODY, which would block every POST /batches body over 8 KB."
  type        = list(string)
  default     = ["SizeRestrictions_BODY"]
}

variable "tags" {
  description = "Tags added to every resource (on top of the provider's default tags)."
  type        = map(string)
  default     = {}
}
