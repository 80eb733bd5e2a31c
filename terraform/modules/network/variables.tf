variable "name" {
  description = "Name prefix for every resource of the network (for example `rates-dev`)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,40}$", var.name))
    error_message = "The name must be 2-41 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "cidr_block" {
  description = "IPv4 CIDR block of the VPC. A /16 to /20 leaves room for the public, private and database subnets of up to three availability zones."
  type        = string

  validation {
    condition     = can(cidrhost(var.cidr_block, 0)) && can(regex("/(1[6-9]|20)$", var.cidr_block))
    error_message = "The cidr_block must be a valid IPv4 CIDR with a prefix length between /16 and /20."
  }
}

variable "az_count" {
  description = "Number of availability zones to spread the subnets over."
  type        = number
  default     = 2

  validation {
    condition     = contains([2, 3], var.az_count)
    error_message = "The az_count must be 2 or 3 (RDS subnet groups and the ALB need at least two zones)."
  }
}

variable "single_nat_gateway" {
  description = "Whether the private subnets of all zones share one NAT gateway (cheaper, for dev) instead of one NAT gateway per zone (zone-independent egress, for prod)."
  type        = bool
  default     = false
}

variable "enable_vpc_endpoints" {
  description = "Create the S3 gateway endpoint and the interface endpoints (interface_endpoint_services) in the private subnets, so that the tasks reach these AWS services without NAT."
  type        = bool
  default     = false
}

variable "enable_flow_logs" {
  description = "Send VPC flow logs (all traffic) to a CloudWatch log group /vpc/<name>/flow-logs."
  type        = bool
  default     = true
}

variable "flow_log_retention_days" {
  description = "Days the flow logs are kept (a value CloudWatch Logs accepts)."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_log_retention_days)
    error_message = "The flow_log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary of the flow-log role (the environment's rates-<env>-boundary from terraform/bootstrap: its apply role may create roles only with it)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:policy/.+$", var.permissions_boundary_arn))
    error_message = "The permissions_boundary_arn must be the ARN of an IAM policy."
  }
}
