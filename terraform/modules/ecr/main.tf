# Container image repository of the service.

locals {
  # Untagged images (left behind by rebuilds) are deleted after a week; the 50 most recent images
  # are kept, more than the task definition revisions a rollback would go back to.
  untagged_image_expiry_days = 7
  max_image_count            = 50
}

resource "aws_ecr_repository" "this" {
  name = var.name
  # A tag (a commit SHA) always means the same image.
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.force_delete

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "AES256"
  }

  tags = { Name = var.name }
}

resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name

  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Expire untagged images after ${local.untagged_image_expiry_days} days"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = local.untagged_image_expiry_days
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Keep the ${local.max_image_count} most recent images"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = local.max_image_count
        }
        action = { type = "expire" }
      },
    ]
  })
}
