# Once per AWS account: the state bucket of the rates Terraform configurations (this file) and the
# identities of CI (github.tf). Run:
#   terraform init && terraform apply -var region=eu-central-1 -var github_repository=OWNER/REPO
#   terraform output -raw backend_config > ../backend.hcl
#   terraform output -raw environments_tfvars > ../environments.auto.tfvars

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      project    = "rates"
      managed-by = "terraform"
      component  = "bootstrap"
    }
  }
}

data "aws_caller_identity" "current" {}

locals {
  bucket_name = coalesce(var.bucket_name, "rates-tfstate-${data.aws_caller_identity.current.account_id}-${var.region}")

  backend_config = <<-EOT
    bucket               = "${aws_s3_bucket.state.bucket}"
    key                  = "${var.state_key}"
    workspace_key_prefix = "${var.workspace_key_prefix}"
    region               = "${var.region}"
    encrypt              = true
    kms_key_id           = "${aws_kms_key.state.arn}"
    use_lockfile         = true
  EOT
}

resource "aws_kms_key" "state" {
  description             = "Encryption of the rates Terraform state bucket"
  enable_key_rotation     = true
  deletion_window_in_days = 30
}

resource "aws_kms_alias" "state" {
  name          = "alias/rates-tfstate"
  target_key_id = aws_kms_key.state.key_id
}

resource "aws_s3_bucket" "state" {
  bucket = local.bucket_name

  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_s3_bucket_ownership_controls" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "state" {
  bucket = aws_s3_bucket.state.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "state" {
  bucket = aws_s3_bucket.state.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    bucket_key_enabled = true

    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.state.arn
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    id     = "expire-old-state-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_retention_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.state]
}

resource "aws_s3_bucket_policy" "state" {
  bucket = aws_s3_bucket.state.id
  policy = module.state_bucket_policy.json

  # The public access block must exist first, or a policy could briefly make the bucket public.
  depends_on = [aws_s3_bucket_public_access_block.state]
}

module "state_bucket_policy" {
  source = "../modules/tls_only_bucket_policy"

  bucket_arn = aws_s3_bucket.state.arn
}
