# Failed events: every event ingest rejects, kept with its reason, field,
# schema id and receipt time (docs/events.md#failed-events). Ingest writes
# them to their own Firehose stream, which lands Parquet under the lake
# bucket's failed/ prefix: the same bucket, so the same KMS encryption,
# lifecycle (retention) and erasure as the lake. The columns come from
# failed_columns.json (generated from registry/; do not edit).

locals {
  failed_columns = jsondecode(file("${path.module}/failed_columns.json"))["failed"]
}

resource "aws_glue_catalog_table" "failed" {
  name          = "failed"
  database_name = aws_glue_catalog_database.lake.name
  table_type    = "EXTERNAL_TABLE"
  description   = "spate failed events: what ingest rejected and why, Parquet written by Firehose"

  parameters = {
    EXTERNAL                    = "TRUE"
    classification              = "parquet"
    "parquet.compression"       = "SNAPPY"
    "projection.enabled"        = "true"
    "projection.dt.type"        = "date"
    "projection.dt.format"      = "yyyy-MM-dd"
    "projection.dt.range"       = "${var.lake_projection_start},NOW"
    "projection.dt.interval"    = "1"
    "projection.dt.unit"        = "DAYS"
    "projection.hour.type"      = "integer"
    "projection.hour.range"     = "0,23"
    "projection.hour.digits"    = "2"
    "storage.location.template" = "s3://${aws_s3_bucket.lake.bucket}/failed/dt=$${dt}/hour=$${hour}/"
  }

  partition_keys {
    name    = "dt"
    type    = "string"
    comment = "arrival date at Firehose, UTC (yyyy-MM-dd)"
  }
  partition_keys {
    name    = "hour"
    type    = "string"
    comment = "arrival hour at Firehose, UTC (00-23)"
  }

  storage_descriptor {
    location      = "s3://${aws_s3_bucket.lake.bucket}/failed/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      name                  = "failed"
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
      parameters            = { "serialization.format" = "1" }
    }

    dynamic "columns" {
      for_each = local.failed_columns
      content {
        name    = columns.value.name
        type    = columns.value.type
        comment = columns.value.comment
      }
    }
  }
}

resource "aws_cloudwatch_log_stream" "failed" {
  name           = "failed-delivery"
  log_group_name = aws_cloudwatch_log_group.firehose.name
}

# The Firehose role reads the failed table's schema too.
data "aws_iam_policy_document" "firehose_failed" {
  statement {
    sid     = "ReadFailedSchema"
    actions = ["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"]
    resources = [
      "arn:${split(":", aws_glue_catalog_database.lake.arn)[1]}:glue:${var.region}:${aws_glue_catalog_database.lake.catalog_id}:catalog",
      aws_glue_catalog_database.lake.arn, aws_glue_catalog_table.failed.arn,
    ]
  }
}

resource "aws_iam_role_policy" "firehose_failed" {
  name   = "deliver-failed"
  role   = aws_iam_role.firehose.id
  policy = data.aws_iam_policy_document.firehose_failed.json
}

resource "aws_kinesis_firehose_delivery_stream" "failed" {
  name        = "${var.name}-failed"
  destination = "extended_s3"

  server_side_encryption {
    enabled  = true
    key_type = "AWS_OWNED_CMK"
  }

  extended_s3_configuration {
    role_arn    = aws_iam_role.firehose.arn
    bucket_arn  = aws_s3_bucket.lake.arn
    kms_key_arn = aws_kms_key.data.arn

    prefix              = "failed/dt=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/"
    error_output_prefix = "errors/failed/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/"
    custom_time_zone    = "UTC"
    file_extension      = ".parquet"

    buffering_size     = var.firehose_buffering_size_mb
    buffering_interval = var.firehose_buffering_interval_seconds
    compression_format = "UNCOMPRESSED"

    data_format_conversion_configuration {
      enabled = true

      input_format_configuration {
        deserializer {
          open_x_json_ser_de {
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
        database_name = aws_glue_catalog_table.failed.database_name
        table_name    = aws_glue_catalog_table.failed.name
        role_arn      = aws_iam_role.firehose.arn
        region        = var.region
        version_id    = "LATEST"
      }
    }

    cloudwatch_logging_options {
      enabled         = true
      log_group_name  = aws_cloudwatch_log_group.firehose.name
      log_stream_name = aws_cloudwatch_log_stream.failed.name
    }
  }

  depends_on = [aws_iam_role_policy.firehose, aws_iam_role_policy.firehose_failed]
}

# Ingest puts the failed events it keeps (SPATE_FAILED_STREAM).
data "aws_iam_policy_document" "ingest_failed" {
  statement {
    sid       = "KeepFailedEvents"
    actions   = ["firehose:PutRecordBatch"]
    resources = [aws_kinesis_firehose_delivery_stream.failed.arn]
  }
}

resource "aws_iam_role_policy" "ingest_failed" {
  name   = "keep-failed-events"
  role   = aws_iam_role.ingest_task.id
  policy = data.aws_iam_policy_document.ingest_failed.json
}
