# The reward Lambda: aggregates stream → each reward API. 5xx and timeouts
# are retried (per-endpoint circuit breaker in the function); a 4xx, or an
# aggregate still failing SPATE_REWARD_MAX_AGE after its window, is
# dead-lettered with its reason, so one dead API never blocks the shard.

locals {
  # Retrying one aggregate within an invocation; the function's timeout is
  # twice this so an invocation always ends by itself.
  reward_max_elapsed_seconds = 30
}

data "aws_iam_policy_document" "reward" {
  statement {
    sid       = "DeadLetter"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.reward_dead_letter.arn]
  }
}

resource "aws_iam_role_policy" "reward" {
  name   = "reward"
  role   = aws_iam_role.lambda["reward"].id
  policy = data.aws_iam_policy_document.reward.json
}

resource "aws_lambda_function" "reward" {
  function_name    = "${var.name}-reward"
  description      = "spate reward: window aggregates to the reward APIs"
  role             = aws_iam_role.lambda["reward"].arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = ["arm64"]
  filename         = "${local.dist}/reward.zip"
  source_code_hash = filebase64sha256("${local.dist}/reward.zip")
  memory_size      = 256
  timeout          = 2 * local.reward_max_elapsed_seconds

  environment {
    variables = {
      SPATE_REWARD_ENDPOINTS   = join(",", [for e in var.reward_endpoints : "${e.model}=${e.url}"])
      SPATE_REWARD_DLQ_URL     = aws_sqs_queue.reward_dead_letter.url
      SPATE_REWARD_MAX_ELAPSED = "${local.reward_max_elapsed_seconds}s"
      SPATE_REWARD_MAX_AGE     = "${var.reward_max_age_seconds}s"
      # Letters over the queue's size limit (dead_letters.tf).
      SPATE_DEAD_LETTER_BUCKET = aws_s3_bucket.lake.id
      SPATE_SOURCE_STREAM      = aws_kinesis_stream.aggregates.name
    }
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.lambda["reward"].name
  }

  depends_on = [aws_iam_role_policy.lambda_stream, aws_iam_role_policy.reward, aws_iam_role_policy.dead_letters]
}

resource "aws_lambda_event_source_mapping" "reward" {
  function_name     = aws_lambda_function.reward.arn
  event_source_arn  = aws_kinesis_stream.aggregates.arn
  starting_position = "TRIM_HORIZON"

  batch_size                         = 100
  maximum_batching_window_in_seconds = 1
  parallelization_factor             = 1
  bisect_batch_on_function_error     = true
  # Unlimited tries: the record age below bounds them, and 100 tries of up
  # to 30 s each would give up before SPATE_REWARD_MAX_AGE (1 h) lets the
  # function dead-letter an aggregate with its reason.
  maximum_retry_attempts = -1
  # Above SPATE_REWARD_MAX_AGE: expired aggregates are dead-lettered by
  # the function, with their reason, before the mapping would drop them.
  maximum_record_age_in_seconds = var.reward_max_age_seconds + 900
  function_response_types       = ["ReportBatchItemFailures"]

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.stream_failures.arn
    }
  }
}
