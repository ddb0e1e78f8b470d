# Dead letters too big for their queue. The router and reward Lambdas
# read their dead-letter queue's MaximumMessageSize at start; a letter
# over it is written to the lake bucket under dead-letter/ and the queue
# message points at it (the SQS extended-client pattern). The functions
# may write there and nowhere else in the bucket. Letters that carry a
# record's coordinates only (no bucket configured) are counted on the
# spate/DeadLettersWithoutPayload metric, alarmed below.

locals {
  # sqs.DeadLetterPrefix; internal/tfcheck checks they agree.
  dead_letter_prefix = "dead-letter/"

  dead_letter_queues = {
    router = aws_sqs_queue.router_dead_letter.arn
    reward = aws_sqs_queue.reward_dead_letter.arn
  }
}

data "aws_iam_policy_document" "dead_letters" {
  for_each = local.dead_letter_queues

  statement {
    sid       = "QueueLimit"
    actions   = ["sqs:GetQueueAttributes"]
    resources = [each.value]
  }
  statement {
    sid       = "Payloads"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.lake.arn}/${local.dead_letter_prefix}*"]
  }
  # The lake is SSE-KMS with a bucket key: S3 asks KMS for data keys on
  # the writer's behalf. Decrypt reads no object: s3:GetObject is not
  # granted.
  statement {
    sid       = "EncryptedPayloads"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.data.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "dead_letters" {
  for_each = local.dead_letter_queues
  name     = "dead-letters"
  role     = aws_iam_role.lambda[each.key].id
  policy   = data.aws_iam_policy_document.dead_letters[each.key].json
}

resource "aws_cloudwatch_metric_alarm" "dead_letters_without_payload" {
  for_each            = local.dead_letter_queues
  alarm_name          = "${var.name}-${each.key}-dead-letters-without-payload"
  alarm_description   = "The ${each.key} Lambda dead-lettered records too big for its queue with their coordinates only: SPATE_DEAD_LETTER_BUCKET is unset. Read the records from the stream (shard, sequence number in the letter) before its retention ends; see docs/operations.md."
  namespace           = "spate"
  metric_name         = "DeadLettersWithoutPayload"
  dimensions          = { Function = each.key }
  statistic           = "Sum"
  period              = local.alarm_period
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

variable "dead_letter_expiration_days" {
  description = "Days the payloads of dead letters too big for their queue (dead-letter/ prefix of the lake) are kept; above the queues' 14-day retention."
  type        = number
  default     = 30
  validation {
    condition     = var.dead_letter_expiration_days > 14
    error_message = "Keep dead-letter payloads longer than the queues keep the messages pointing at them (14 days)."
  }
}
