# State lives in S3, encrypted, with S3-native locking. The state holds
# secrets (ARNs of secrets, and whatever a provider returns), so the bucket
# must be private, versioned and encrypted with a KMS key. The settings are
# given at init time so one configuration serves every environment:
#
#   terraform init -backend-config=backend.hcl
#
# with backend.hcl as in backend.hcl.example. docs/deploy.md has the steps.
terraform {
  backend "s3" {}
}
