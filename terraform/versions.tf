terraform {
  # 1.10 for the S3 backend's native state locking (use_lockfile).
  required_version = ">= 1.10.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Pinned: the provider's schema is what `make tf-validate` checks
      # against (docs/deploy.md). Bump deliberately, then re-validate.
      version = "6.47.0"
    }
  }
}
