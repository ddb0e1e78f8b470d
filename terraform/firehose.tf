# One Firehose delivery stream per event type (direct PUT by the router),
# converting JSON to Snappy Parquet with the type's Glue table.

resource "aws_cloudwatch_log_group" "firehose" {
  name              = "/aws/kinesisfirehose/${var.name}"
  retention_in_days = var.log_retention_days
}

resource "aws_cloudwatch_log_stream" "firehose" {
  for_each       = toset(local.event_types)
  name           = "${each.key}-delivery"
  log_group_name = aws_cloudwatch_log_group.firehose.name
}

data "aws_iam_policy_document" "firehose_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["firehose.amazonaws.com"]
    }
    # Only this account's spate delivery streams (confused deputy).
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:firehose:${var.region}:${local.account_id}:deliverystream/${var.name}-*"]
    }
  }
}

resource "aws_iam_role" "firehose" {
  name               = "${var.name}-firehose"
  assume_role_policy = data.aws_iam_policy_document.firehose_assume.json
}

data "aws_iam_policy_document" "firehose" {
  statement {
    sid = "WriteLake"
    actions = [
      "s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:GetObject",
      "s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:PutObject",
    ]
    resources = [aws_s3_bucket.lake.arn, "${aws_s3_bucket.lake.arn}/*"]
  }
  statement {
    sid     = "ReadSchemas"
    actions = ["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"]
    resources = concat(
      # The catalog ARN, built from the database's partition and account.
      ["arn:${split(":", aws_glue_catalog_database.lake.arn)[1]}:glue:${var.region}:${aws_glue_catalog_database.lake.catalog_id}:catalog", aws_glue_catalog_database.lake.arn],
      [for t in aws_glue_catalog_table.events : t.arn],
    )
  }
  statement {
    sid       = "EncryptLake"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.data.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }
  statement {
    sid       = "DeliveryErrors"
    actions   = ["logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.firehose.arn}:*"]
  }
}

resource "aws_iam_role_policy" "firehose" {
  name   = "deliver"
  role   = aws_iam_role.firehose.id
  policy = data.aws_iam_policy_document.firehose.json
}

resource "aws_kinesis_firehose_delivery_stream" "events" {
  for_each    = aws_glue_catalog_table.events
  name        = "${var.name}-${each.key}"
  destination = "extended_s3"

  # Buffered records at rest in Firehose are encrypted too.
  server_side_encryption {
    enabled  = true
    key_type = "AWS_OWNED_CMK"
  }

  extended_s3_configuration {
    role_arn    = aws_iam_role.firehose.arn
    bucket_arn  = aws_s3_bucket.lake.arn
    kms_key_arn = aws_kms_key.data.arn

    # Arrival time at Firehose, UTC: the same layout `spate local` writes.
    prefix              = "${each.key}/dt=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/"
    error_output_prefix = "errors/${each.key}/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/"
    custom_time_zone    = "UTC"
    file_extension      = ".parquet"

    buffering_size     = var.firehose_buffering_size_mb
    buffering_interval = var.firehose_buffering_interval_seconds
    # Parquet compresses inside the file (Snappy below); the S3-level
    # compression must stay off with format conversion.
    compression_format = "UNCOMPRESSED"

    data_format_conversion_configuration {
      enabled = true

      input_format_configuration {
        deserializer {
          open_x_json_ser_de {
            # Keys are already the lower-case column names; folding case
            # would also fold the keys inside attrs.
            case_insensitive = false
          }
        }
      }

      output_format_configuration {
        serializer {
          parquet_ser_de {
            compression                   = "SNAPPY"
            enable_dictionary_compression = true
            writer_version                = "V1"
          }
        }
      }

      schema_configuration {
        database_name = each.value.database_name
        table_name    = each.value.name
        role_arn      = aws_iam_role.firehose.arn
        region        = var.region
        version_id    = "LATEST"
      }
    }

    cloudwatch_logging_options {
      enabled         = true
      log_group_name  = aws_cloudwatch_log_group.firehose.name
      log_stream_name = aws_cloudwatch_log_stream.firehose[each.key].name
    }
  }

  depends_on = [aws_iam_role_policy.firehose]
}
