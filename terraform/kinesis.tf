# The events stream every ingest task writes and the router and the
# aggregator read; the small aggregates stream between the aggregator and
# the reward Lambda.

resource "aws_kinesis_stream" "events" {
  name             = "${var.name}-events"
  shard_count      = var.kinesis_stream_mode == "PROVISIONED" ? var.kinesis_shard_count : null
  retention_period = var.kinesis_retention_hours
  encryption_type  = "KMS"
  kms_key_id       = aws_kms_key.data.arn

  stream_mode_details {
    stream_mode = var.kinesis_stream_mode
  }

  # Per-shard metrics find a hot partition key (one session flooding a
  # shard) that the stream-level sums hide.
  shard_level_metrics = ["IncomingBytes", "IncomingRecords", "WriteProvisionedThroughputExceeded", "IteratorAgeMilliseconds"]

  # `spate prescale` reshards with UpdateShardCount ahead of a broadcast.
  # terraform stays authoritative: an apply sets kinesis_shard_count
  # again, so apply outside prescaled windows (docs/deploy.md).
}

resource "aws_kinesis_stream" "aggregates" {
  name             = "${var.name}-aggregates"
  shard_count      = var.aggregates_shard_count
  retention_period = 24
  encryption_type  = "KMS"
  kms_key_id       = aws_kms_key.data.arn

  stream_mode_details {
    stream_mode = "PROVISIONED"
  }
}
