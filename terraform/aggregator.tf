# The aggregator Lambda: tumbling windows over the events stream; at each
# window's final invocation it writes the window's counts to the
# aggregates stream (never to reward APIs: a slow API must not stall the
# events stream).

data "aws_iam_policy_document" "aggregator" {
  statement {
    sid       = "WriteAggregates"
    actions   = ["kinesis:PutRecords", "kinesis:PutRecord"]
    resources = [aws_kinesis_stream.aggregates.arn]
  }
}

resource "aws_iam_role_policy" "aggregator" {
  name   = "aggregate"
  role   = aws_iam_role.lambda["aggregator"].id
  policy = data.aws_iam_policy_document.aggregator.json
}

resource "aws_lambda_function" "aggregator" {
  function_name    = "${var.name}-aggregator"
  description      = "spate aggregator: tumbling-window counts to the aggregates stream"
  role             = aws_iam_role.lambda["aggregator"].arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = ["arm64"]
  filename         = "${local.dist}/aggregator.zip"
  source_code_hash = filebase64sha256("${local.dist}/aggregator.zip")
  memory_size      = var.aggregator_memory_mb
  timeout          = 60

  environment {
    variables = {
      SPATE_AGGREGATES_STREAM = aws_kinesis_stream.aggregates.name
    }
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.lambda["aggregator"].name
  }

  depends_on = [aws_iam_role_policy.lambda_stream, aws_iam_role_policy.aggregator]
}

resource "aws_lambda_event_source_mapping" "aggregator" {
  function_name     = aws_lambda_function.aggregator.arn
  event_source_arn  = aws_kinesis_stream.events.arn
  starting_position = "LATEST"

  tumbling_window_in_seconds = var.aggregate_window_seconds
  batch_size                 = var.aggregator_batch_size
  # Fewer, fuller invocations: each one decodes and re-encodes the window
  # state, which grows with the catalogue.
  maximum_batching_window_in_seconds = 5
  # Window state is kept per shard; one batch per shard at a time keeps a
  # window's invocations in order.
  parallelization_factor = 1
  # A failed batch is retried whole, with the window state from before
  # it, so nothing is counted twice; halving it would gain nothing.
  bisect_batch_on_function_error = false
  maximum_retry_attempts         = 10
  # A window older than this is of no use to the bandit models.
  maximum_record_age_in_seconds = max(var.aggregate_window_seconds * 10, 600)
  function_response_types       = ["ReportBatchItemFailures"]

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.stream_failures.arn
    }
  }
}
