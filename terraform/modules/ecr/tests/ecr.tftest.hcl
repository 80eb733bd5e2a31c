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
    condition     = aws_ecr_repository.this.encryption_configuration[0].encryption_type == "AES256"
    error_message = "Images are encrypted at rest."
  }

  assert {
    condition     = aws_ecr_repository.this.force_delete == false
    error_message = "A destroy must not delete images by default."
  }
}

run "lifecycle_policy_expires_untagged_and_old_images" {
  command = plan

  assert {
    condition     = [for r in jsondecode(aws_ecr_lifecycle_policy.this.policy).rules : r.selection.tagStatus] == ["untagged", "any"]
    error_message = "The lifecycle policy must expire untagged images first, then old ones."
  }

  assert {
    condition     = jsondecode(aws_ecr_lifecycle_policy.this.policy).rules[0].selection.countNumber == 7
    error_message = "Untagged images must expire after a week."
  }

  assert {
    condition     = jsondecode(aws_ecr_lifecycle_policy.this.policy).rules[1].selection.countNumber == 50
    error_message = "The 50 most recent images must be kept."
  }
}

run "force_delete_follows_the_variable" {
  command = plan

  variables {
    force_delete = true
  }

  assert {
    condition     = aws_ecr_repository.this.force_delete == true
    error_message = "force_delete lets a destroy (dev) delete the images."
  }
}
