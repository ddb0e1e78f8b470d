# ALB access logs (alb_access_logs, default on) to their own bucket, kept
# alb_access_log_retention_days. ALB delivers only to SSE-S3 buckets, and
# through Elastic Load Balancing's account in regions older than August
# 2022 (its log-delivery service principal elsewhere).

locals {
  # Elastic Load Balancing's account per region (AWS: "Enable access logs
  # for your Application Load Balancer").
  elb_log_accounts = {
    us-east-1      = "127311923021", us-east-2 = "033677994240", us-west-1 = "027434742980", us-west-2 = "797873946194",
    ca-central-1   = "985666609251", eu-central-1 = "054676820928", eu-west-1 = "156460612806", eu-west-2 = "652711504416",
    eu-west-3      = "009996457667", eu-north-1 = "897822967062", ap-northeast-1 = "582318560864", ap-northeast-2 = "600734575887",
    ap-northeast-3 = "383597477331", ap-southeast-1 = "114774131450", ap-southeast-2 = "783225319266", ap-south-1 = "718504428378",
    sa-east-1      = "507241528517",
  }
  alb_log_prefix = "alb"
}

resource "aws_s3_bucket" "logs" {
  count         = var.alb_access_logs ? 1 : 0
  bucket_prefix = "${var.name}-logs-"
}

resource "aws_s3_bucket_ownership_controls" "logs" {
  count  = var.alb_access_logs ? 1 : 0
  bucket = aws_s3_bucket.logs[0].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "logs" {
  count                   = var.alb_access_logs ? 1 : 0
  bucket                  = aws_s3_bucket.logs[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  count  = var.alb_access_logs ? 1 : 0
  bucket = aws_s3_bucket.logs[0].id
  rule {
    apply_server_side_encryption_by_default {
      # The only encryption ALB log delivery supports.
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  count  = var.alb_access_logs ? 1 : 0
  bucket = aws_s3_bucket.logs[0].id
  rule {
    id     = "expire"
    status = "Enabled"
    filter {}
    expiration {
      days = var.alb_access_log_retention_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_policy" "logs" {
  count  = var.alb_access_logs ? 1 : 0
  bucket = aws_s3_bucket.logs[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AlbLogDelivery"
        Effect    = "Allow"
        Principal = contains(keys(local.elb_log_accounts), var.region) ? { AWS = "arn:${local.partition}:iam::${local.elb_log_accounts[var.region]}:root" } : { Service = "logdelivery.elasticloadbalancing.amazonaws.com" }
        Action    = "s3:PutObject"
        Resource  = "${aws_s3_bucket.logs[0].arn}/${local.alb_log_prefix}/AWSLogs/${local.account_id}/*"
      },
      {
        Sid       = "DenyInsecureTransport"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.logs[0].arn, "${aws_s3_bucket.logs[0].arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })
  depends_on = [aws_s3_bucket_public_access_block.logs]
}
