# The lake: one prefix per event type, Parquet written by Firehose,
# described by one Glue table per type whose columns come from
# glue_columns.json (generated from registry/).

resource "aws_s3_bucket" "lake" {
  bucket_prefix = "${var.name}-lake-"
}

resource "aws_s3_bucket_ownership_controls" "lake" {
  bucket = aws_s3_bucket.lake.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "lake" {
  bucket                  = aws_s3_bucket.lake.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "lake" {
  bucket = aws_s3_bucket.lake.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.data.arn
    }
    # One data key per bucket and period instead of per object: Firehose
    # writes many objects an hour.
    bucket_key_enabled = true
  }
}

# Versioning: a mistaken or malicious delete can be undone for
# lake_noncurrent_version_days, which never exceeds the erasure deadline,
# so the versions `spate lake forget` leaves behind are gone in time
# (docs/privacy.md).
resource "aws_s3_bucket_versioning" "lake" {
  bucket = aws_s3_bucket.lake.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "lake" {
  bucket     = aws_s3_bucket.lake.id
  depends_on = [aws_s3_bucket_versioning.lake]

  rule {
    id     = "events"
    status = "Enabled"
    filter {}

    transition {
      days          = var.lake_infrequent_access_days
      storage_class = "INTELLIGENT_TIERING"
    }

    dynamic "expiration" {
      for_each = var.lake_expiration_days > 0 ? [var.lake_expiration_days] : []
      content {
        days = expiration.value
      }
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }

    noncurrent_version_expiration {
      noncurrent_days = var.lake_noncurrent_version_days
    }
  }

  rule {
    id     = "delete-markers"
    status = "Enabled"
    filter {}
    expiration {
      expired_object_delete_marker = true
    }
  }

  # Payloads of dead letters too big for their queue (dead_letters.tf):
  # kept past the queues' 14-day retention, so no pointer outlives them.
  rule {
    id     = "dead-letters"
    status = "Enabled"
    filter {
      prefix = local.dead_letter_prefix
    }
    expiration {
      days = var.dead_letter_expiration_days
    }
  }

  rule {
    id     = "conversion-errors"
    status = "Enabled"
    filter {
      prefix = "errors/"
    }
    expiration {
      days = var.lake_error_expiration_days
    }
    noncurrent_version_expiration {
      noncurrent_days = var.lake_noncurrent_version_days
    }
  }
}

resource "aws_s3_bucket_policy" "lake" {
  bucket = aws_s3_bucket.lake.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "DenyInsecureTransport"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [aws_s3_bucket.lake.arn, "${aws_s3_bucket.lake.arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
  depends_on = [aws_s3_bucket_public_access_block.lake]
}

resource "aws_glue_catalog_database" "lake" {
  # Athena and Hive want lower-case names with underscores.
  name        = replace("${var.name}_lake", "-", "_")
  description = "spate event lake: one table per event type"
}

resource "aws_glue_catalog_table" "events" {
  for_each      = local.glue_columns
  name          = each.key
  database_name = aws_glue_catalog_database.lake.name
  table_type    = "EXTERNAL_TABLE"
  description   = "spate ${each.key} events, Parquet written by Firehose"

  # Partition projection: Athena derives the partitions from the prefix
  # layout, so no crawler and no MSCK REPAIR after every hour.
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
    "storage.location.template" = "s3://${aws_s3_bucket.lake.bucket}/${each.key}/dt=$${dt}/hour=$${hour}/"
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
    location      = "s3://${aws_s3_bucket.lake.bucket}/${each.key}/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      name                  = each.key
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
      parameters            = { "serialization.format" = "1" }
    }

    dynamic "columns" {
      for_each = each.value
      content {
        name    = columns.value.name
        type    = columns.value.type
        comment = columns.value.comment
      }
    }
  }
}
