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

variable "tags" {
  description = "Tags added to every resource (on top of the provider's default tags)."
  type        = map(string)
  default     = {}
}
