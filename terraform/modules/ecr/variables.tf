variable "name" {
  description = "Name of the repository (for example `rates-dev`)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$", var.name)) && length(var.name) <= 256
    error_message = "The name must be a valid ECR repository name: lowercase letters, digits and . _ - / separators."
  }
}

variable "image_tag_mutability" {
  description = "Whether tags can be moved to another image. IMMUTABLE guarantees that a tag (a git commit) always means the same image."
  type        = string
  default     = "IMMUTABLE"

  validation {
    condition     = contains(["IMMUTABLE", "MUTABLE"], var.image_tag_mutability)
    error_message = "The image_tag_mutability must be IMMUTABLE or MUTABLE."
  }
}

variable "scan_on_push" {
  description = "Whether every pushed image is scanned for known vulnerabilities."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "ARN of a KMS key to encrypt the images with. Null uses AES-256 with keys managed by ECR."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "The kms_key_arn must be null or the ARN of a KMS key."
  }
}

variable "untagged_image_expiry_days" {
  description = "Days after which untagged images (left behind by rebuilds) are deleted."
  type        = number
  default     = 7

  validation {
    condition     = var.untagged_image_expiry_days >= 1
    error_message = "The untagged_image_expiry_days must be at least 1."
  }
}

variable "max_image_count" {
  description = "Number of most recent images kept; older ones are deleted. Keep it above the number of task definition revisions you may roll back to."
  type        = number
  default     = 50

  validation {
    condition     = var.max_image_count >= 1 && var.max_image_count <= 10000
    error_message = "The max_image_count must be between 1 and 10000."
  }
}

variable "force_delete" {
  description = "Whether destroying the repository also deletes the images in it. Off by default so that a destroy never loses images silently."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource (on top of the provider's default tags)."
  type        = map(string)
  default     = {}
}
