# The router Lambda: events stream → the Firehose stream of each event's
# type. Unroutable records go to its dead-letter queue; batches it gives up
# on leave their metadata on the stream-failures queue.

data "aws_iam_policy_document" "router" {
  statement {
    sid       = "Deliver"
    actions   = ["firehose:PutRecordBatch", "firehose:PutRecord"]
    resources = [for f in aws_kinesis_firehose_delivery_stream.events : f.arn]
  }
  statement {
    sid       = "DeadLetter"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.router_dead_letter.arn]
  }
}

resource "aws_iam_role_policy" "router" {
  name   = "route"
  role   = aws_iam_role.lambda["router"].id
  policy = data.aws_iam_policy_document.router.json
}

resource "aws_lambda_function" "router" {
  function_name    = "${var.name}-router"
  description      = "spate router: events stream to the Firehose stream of each type"
  role             = aws_iam_role.lambda["router"].arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = ["arm64"]
  filename         = "${local.dist}/router.zip"
  source_code_hash = filebase64sha256("${local.dist}/router.zip")
  memory_size      = var.router_memory_mb
  timeout          = var.router_timeout_seconds

  reserved_concurrent_executions = var.router_reserved_concurrency

  environment {
    variables = {
      # "type=stream,…" for every registry type (awslambda.RouterStreams).
      SPATE_FIREHOSE_STREAMS      = join(",", [for t, f in aws_kinesis_firehose_delivery_stream.events : "${t}=${f.name}"])
      SPATE_DEAD_LETTER_QUEUE_URL = aws_sqs_queue.router_dead_letter.url
      # Letters over the queue's size limit (dead_letters.tf).
      SPATE_DEAD_LETTER_BUCKET = aws_s3_bucket.lake.id
      SPATE_SOURCE_STREAM      = aws_kinesis_stream.events.name
    }
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.lambda["router"].name
  }

  depends_on = [aws_iam_role_policy.lambda_stream, aws_iam_role_policy.router, aws_iam_role_policy.dead_letters]
}

resource "aws_lambda_event_source_mapping" "router" {
  function_name     = aws_lambda_function.router.arn
  event_source_arn  = aws_kinesis_stream.events.arn
  starting_position = "TRIM_HORIZON"

  batch_size                         = var.router_batch_size
  maximum_batching_window_in_seconds = var.router_batching_window_seconds
  parallelization_factor             = var.router_parallelization_factor
  # Split a failing batch to isolate the record that fails it; with
  # ReportBatchItemFailures only the failed suffix is retried.
  bisect_batch_on_function_error = true
  maximum_retry_attempts         = var.router_max_retry_attempts
  maximum_record_age_in_seconds  = var.router_max_record_age_seconds
  function_response_types        = ["ReportBatchItemFailures"]

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.stream_failures.arn
    }
  }

  metrics_config {
    metrics = ["EventCount"]
  }
}
