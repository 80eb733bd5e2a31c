terraform {
  # Same floor as the root module, whose S3 native locking (use_lockfile) needs 1.10.
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # The state of this configuration (one bucket, one key) stays local: it must exist before the
  # bucket does. Keep terraform.tfstate of this directory safe, or import the bucket again later.
}
