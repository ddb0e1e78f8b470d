# What the three stream-processing Lambdas share: the execution-role trust
# and the permissions to read a Kinesis stream, report failures and log.

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

locals {
  lambdas = {
    router     = { stream = aws_kinesis_stream.events.arn }
    aggregator = { stream = aws_kinesis_stream.events.arn }
    reward     = { stream = aws_kinesis_stream.aggregates.arn }
  }
}

resource "aws_cloudwatch_log_group" "lambda" {
  for_each          = local.lambdas
  name              = "/aws/lambda/${var.name}-${each.key}"
  retention_in_days = var.log_retention_days
}

resource "aws_iam_role" "lambda" {
  for_each           = local.lambdas
  name               = "${var.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

# The event source mapping polls with the function's role: it needs to
# read its stream (and decrypt it), and send the metadata of batches it
# gives up on to the stream-failures queue.
data "aws_iam_policy_document" "lambda_stream" {
  for_each = local.lambdas

  statement {
    sid = "ReadStream"
    actions = [
      "kinesis:DescribeStream", "kinesis:DescribeStreamSummary",
      "kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:ListShards",
    ]
    resources = [each.value.stream]
  }
  statement {
    sid       = "OnFailure"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.stream_failures.arn]
  }
  statement {
    sid       = "EncryptedStreamAndQueue"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.data.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["kinesis.${var.region}.amazonaws.com", "sqs.${var.region}.amazonaws.com"]
    }
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda[each.key].arn}:*"]
  }
}

resource "aws_iam_role_policy" "lambda_stream" {
  for_each = local.lambdas
  name     = "stream"
  role     = aws_iam_role.lambda[each.key].id
  policy   = data.aws_iam_policy_document.lambda_stream[each.key].json
}
