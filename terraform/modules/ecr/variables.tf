variable "name" {
  description = "Name of the repository (for example `rates-dev`)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$", var.name)) && length(var.name) <= 256
    error_message = "The name must be a valid ECR repository name: lowercase letters, digits and . _ - / separators."
  }
}

variable "force_delete" {
  description = "Whether destroying the repository also deletes the images in it. Off by default so that a destroy never loses images silently."
  type        = bool
  default     = false
}
