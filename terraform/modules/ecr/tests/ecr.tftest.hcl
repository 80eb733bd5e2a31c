# Plan-level tests of the ecr module with a mocked AWS provider.

mock_provider "aws" {}

variables {
  name = "rates-test"
}

run "secure_defaults" {
  command = plan

  assert {
    condition     = aws_ecr_repository.this.image_tag_mutability == "IMMUTABLE"
    error_message = "Tags must be immutable."
  }

  assert {
    condition     = aws_ecr_repository.this.image_scanning_configuration[0].scan_on_push == true
    error_message = "Images must be scanned on push."
  }

  assert {
    condition     = aws_ecr_repository.this.force_delete == false
    error_message = "A destroy must not delete images by default."
  }
}

run "lifecycle_policy_expires_untagged_and_old_images" {
  command = plan

  variables {
    untagged_image_expiry_days = 3
    max_image_count            = 20
  }

  assert {
    condition     = [for r in jsondecode(aws_ecr_lifecycle_policy.this.policy).rules : r.selection.tagStatus] == ["untagged", "any"]
    error_message = "The lifecycle policy must expire untagged images first, then old ones."
  }

  assert {
    condition     = jsondecode(aws_ecr_lifecycle_policy.this.policy).rules[0].selection.countNumber == 3
    error_message = "Untagged images must expire after untagged_image_expiry_days."
  }

  assert {
    condition     = jsondecode(aws_ecr_lifecycle_policy.this.policy).rules[1].selection.countNumber == 20
    error_message = "Only max_image_count images must be kept."
  }
}

run "kms_encryption_when_a_key_is_given" {
  command = plan

  variables {
    kms_key_arn = "arn:aws:kms:eu-central-1:123456789012:key/00000000-0000-0000-0000-000000000000"
  }

  assert {
    condition     = aws_ecr_repository.this.encryption_configuration[0].encryption_type == "KMS"
    error_message = "A given KMS key must switch the encryption to KMS."
  }
}

run "rejects_an_unknown_tag_mutability" {
  command = plan

  variables {
    image_tag_mutability = "immutable"
  }

  expect_failures = [var.image_tag_mutability]
}
