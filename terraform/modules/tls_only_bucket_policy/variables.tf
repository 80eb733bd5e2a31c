variable "bucket_arn" {
  description = "ARN of the bucket the policy belongs to."
  type        = string

  validation {
    condition     = startswith(var.bucket_arn, "arn:")
    error_message = "The bucket_arn must be an ARN."
  }
}

variable "statements" {
  description = "Statements placed before the TLS denies, as a JSON array (jsonencode([...])). Default: none."
  type        = string
  default     = "[]"

  validation {
    condition     = can(length(jsondecode(var.statements))) && startswith(trimspace(var.statements), "[")
    error_message = "The statements must be a JSON array of policy statements."
  }
}
