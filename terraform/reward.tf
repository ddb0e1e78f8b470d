# The reward Lambda: aggregates stream → each reward API. 5xx and timeouts
# are retried (per-endpoint circuit breaker in the function); a 4xx is
# dead-lettered with its reason; retries are bounded by record age so one
# dead API never blocks the shard.

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
  timeout          = 60

  environment {
    variables = {
      SPATE_REWARD_URLS           = join(",", var.reward_urls)
      SPATE_REWARD_MODEL          = var.reward_model
      SPATE_DEAD_LETTER_QUEUE_URL = aws_sqs_queue.reward_dead_letter.url
    }
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.lambda["reward"].name
  }

  depends_on = [aws_iam_role_policy.lambda_stream, aws_iam_role_policy.reward]
}

resource "aws_lambda_event_source_mapping" "reward" {
  function_name     = aws_lambda_function.reward.arn
  event_source_arn  = aws_kinesis_stream.aggregates.arn
  starting_position = "TRIM_HORIZON"

  batch_size                         = 100
  maximum_batching_window_in_seconds = 1
  parallelization_factor             = 1
  bisect_batch_on_function_error     = true
  maximum_retry_attempts             = 100
  maximum_record_age_in_seconds      = var.reward_max_record_age_seconds
  function_response_types            = ["ReportBatchItemFailures"]

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.stream_failures.arn
    }
  }
}
