resource "aws_ecr_repository" "spate" {
  name = var.name
  # Immutable tags: image_tag names exactly one build, so a task started
  # by autoscaling during a peak runs what was deployed.
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  # Images hold code, not events: the service-managed key is enough.
  encryption_configuration {
    encryption_type = "AES256"
  }
}

resource "aws_ecr_lifecycle_policy" "spate" {
  repository = aws_ecr_repository.spate.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "keep the last 50 images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = 50
      }
      action = { type = "expire" }
    }]
  })
}
