variable "unused" {
  type = string
}

locals {
  orphan = 1
}

data "aws_iam_policy_document" "doc" {
  statement {
    actions   = ["s3:*"]
    resources = ["*"]
  }
  statement {
    actions   = ["kinesis:PutRecords"]
    resources = ["*"]
  }
  statement {
    effect    = "Deny"
    actions   = ["*"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "p" {
  role   = "r"
  policy = data.aws_iam_policy_document.doc.json
}

resource "aws_iam_role_policy" "q" {
  role = "r"
  policy = jsonencode({
    Statement = [{
      Effect    = "Allow"
      Action    = ["*"]
      Resource  = "*"
    }, {
      Effect      = "Allow"
      NotAction   = ["iam:*"]
      Resource    = "arn:aws:s3:::b"
    }]
  })
}

resource "aws_kinesis_stream" "s" {
  name       = var.nope
  shard_count = local.missing
  depends_on = [aws_kinesis_steam.s, module.gone, data.aws_caller_identity.me]
  tags       = { x = mystery.value }
}

data "aws_region" "never" {}
