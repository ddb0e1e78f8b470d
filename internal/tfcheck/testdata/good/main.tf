variable "name" {
  type = string
}

variable "items" {
  type    = map(list(object({ name = string })))
  default = {}
}

locals {
  prefix = "${var.name}-x"
  table  = { for k, v in var.items : k => [for c in v : c.name] }
}

data "aws_iam_policy_document" "doc" {
  statement {
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
  statement {
    actions   = ["kinesis:PutRecords"]
    resources = [aws_kinesis_stream.s.arn]
  }
  dynamic "statement" {
    for_each = local.table
    content {
      actions   = ["sqs:SendMessage"]
      resources = [statement.key]
    }
  }
}

resource "aws_kinesis_stream" "s" {
  name = local.prefix
  lifecycle {
    ignore_changes = [shard_count]
  }
}

resource "aws_iam_role_policy" "p" {
  policy = data.aws_iam_policy_document.doc.json
  role   = "r"
}

resource "aws_s3_bucket_policy" "b" {
  bucket = "b"
  policy = jsonencode({
    Statement = [{
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = "*"
    }]
  })
}

resource "aws_glue_catalog_table" "t" {
  for_each = var.items
  name     = each.key
  storage_descriptor {
    dynamic "cols" {
      for_each = each.value
      iterator = col
      content {
        name = col.value.name
      }
    }
  }
  depends_on = [aws_kinesis_stream.s]
}

output "o" {
  value = path.module
}
