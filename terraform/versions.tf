terraform {
  # 1.11: write-only arguments (password_wo, value_wo). 1.10: ephemeral resources and S3 native
  # state locking (use_lockfile).
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # Partial configuration: the settings come from backend.hcl (see backend.hcl.example and the
  # outputs of bootstrap/). Each workspace keeps its own state under workspace_key_prefix.
  backend "s3" {}
}
