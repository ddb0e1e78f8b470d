# Queues: the ingest DLQ (events Kinesis refused; redriven by ingest and
# `spate redrive`), the router's dead-letter queue (records that can never
# be routed), the reward dead-letter queue (aggregates a reward API
# refused with a 4xx) and the stream-failures queue (the Lambda event
# source mappings' on-failure destination: metadata of batches given up,
# to replay from the stream).

locals {
  # SQS's longest retention: a regional Kinesis outage plus a weekend.
  sqs_max_retention = 1209600
}

resource "aws_sqs_queue" "ingest_dlq" {
  name                      = "${var.name}-ingest-dlq"
  message_retention_seconds = local.sqs_max_retention
  # ingest packs many events per message; 256 KiB is what it sends.
  max_message_size           = 262144
  receive_wait_time_seconds  = 20
  visibility_timeout_seconds = 120
  kms_master_key_id          = aws_kms_key.data.arn
  # During a Kinesis outage every task sends here at full rate: reusing
  # data keys for an hour keeps KMS calls (and their quota) out of it.
  kms_data_key_reuse_period_seconds = 3600
  # A message the redrive cannot decode is never deleted by it; after this
  # many receives SQS parks it. High, because during a Kinesis outage good
  # messages are received (and put back) many times before they go through.
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.ingest_dlq_parking.arn
    maxReceiveCount     = var.ingest_dlq_max_receive_count
  })
}

# Poison messages of the ingest DLQ, for an operator to read.
resource "aws_sqs_queue" "ingest_dlq_parking" {
  name                              = "${var.name}-ingest-dlq-parking"
  message_retention_seconds         = local.sqs_max_retention
  kms_master_key_id                 = aws_kms_key.data.arn
  kms_data_key_reuse_period_seconds = 3600
}

resource "aws_sqs_queue" "router_dead_letter" {
  name                              = "${var.name}-router-dead-letter"
  message_retention_seconds         = local.sqs_max_retention
  kms_master_key_id                 = aws_kms_key.data.arn
  kms_data_key_reuse_period_seconds = 3600
}

resource "aws_sqs_queue" "reward_dead_letter" {
  name                              = "${var.name}-reward-dead-letter"
  message_retention_seconds         = local.sqs_max_retention
  kms_master_key_id                 = aws_kms_key.data.arn
  kms_data_key_reuse_period_seconds = 3600
}

resource "aws_sqs_queue" "stream_failures" {
  name                              = "${var.name}-stream-failures"
  message_retention_seconds         = local.sqs_max_retention
  kms_master_key_id                 = aws_kms_key.data.arn
  kms_data_key_reuse_period_seconds = 3600
}

# Deny anything that is not TLS on every queue.
resource "aws_sqs_queue_policy" "tls_only" {
  for_each = {
    ingest_dlq         = aws_sqs_queue.ingest_dlq
    ingest_dlq_parking = aws_sqs_queue.ingest_dlq_parking
    router_dead_letter = aws_sqs_queue.router_dead_letter
    reward_dead_letter = aws_sqs_queue.reward_dead_letter
    stream_failures    = aws_sqs_queue.stream_failures
  }
  queue_url = each.value.url
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "DenyInsecureTransport"
      Effect    = "Deny"
      Principal = "*"
      Action    = "sqs:*"
      Resource  = each.value.arn
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
}
