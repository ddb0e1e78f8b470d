provider "aws" {
  region = var.region

  default_tags {
    tags = merge({ Project = "spate", Deployment = var.name }, var.tags)
  }
}
