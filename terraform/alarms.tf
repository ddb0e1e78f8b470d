# Alarms. Service limits are per second; CloudWatch sums per minute. Every
# capacity threshold below is therefore (limit per second) x 60 x the
# share we alarm at, over a 60-second period — never the per-second limit
# compared with a per-minute sum, which would fire at 1/60 of the load.

locals {
  alarm_period = 60

  kinesis_provisioned = var.kinesis_stream_mode == "PROVISIONED"
  # Per shard: 1,000 records/s and 1 MiB/s of writes.
  kinesis_records_per_minute_limit = var.kinesis_shard_count * 1000 * 60
  kinesis_bytes_per_minute_limit   = var.kinesis_shard_count * 1048576 * 60

  firehose_records_per_minute_limit  = var.firehose_records_per_second_quota * 60
  firehose_requests_per_minute_limit = var.firehose_requests_per_second_quota * 60
  firehose_bytes_per_minute_limit    = var.firehose_bytes_per_second_quota * 60

  # How far behind each stream consumer may fall (IteratorAge, ms). The
  # aggregator holds a window open, so its allowance includes one window.
  iterator_age_thresholds = {
    router     = var.alarm_router_iterator_age_ms
    aggregator = var.alarm_router_iterator_age_ms + var.aggregate_window_seconds * 1000
    reward     = var.alarm_reward_iterator_age_ms
  }

  queues = {
    ingest_dlq         = aws_sqs_queue.ingest_dlq.name
    ingest_dlq_parking = aws_sqs_queue.ingest_dlq_parking.name
    router_dead_letter = aws_sqs_queue.router_dead_letter.name
    reward_dead_letter = aws_sqs_queue.reward_dead_letter.name
    stream_failures    = aws_sqs_queue.stream_failures.name
  }
}

# --- Kinesis events stream

resource "aws_cloudwatch_metric_alarm" "kinesis_write_throttled" {
  alarm_name          = "${var.name}-events-stream-write-throttled"
  alarm_description   = "Kinesis refused writes for lack of shard capacity in 3 of the last 5 minutes (ingest retries, then uses the DLQ). Add shards or prescale."
  namespace           = "AWS/Kinesis"
  metric_name         = "WriteProvisionedThroughputExceeded"
  dimensions          = { StreamName = aws_kinesis_stream.events.name }
  statistic           = "Sum"
  period              = local.alarm_period
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "kinesis_records_near_limit" {
  count               = local.kinesis_provisioned ? 1 : 0
  alarm_name          = "${var.name}-events-stream-records-near-limit"
  alarm_description   = "Records written per minute above ${var.alarm_capacity_share * 100}% of ${var.kinesis_shard_count} shards x 1,000 records/s x 60 s."
  namespace           = "AWS/Kinesis"
  metric_name         = "IncomingRecords"
  dimensions          = { StreamName = aws_kinesis_stream.events.name }
  statistic           = "Sum"
  period              = local.alarm_period
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.kinesis_records_per_minute_limit * var.alarm_capacity_share
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "kinesis_bytes_near_limit" {
  count               = local.kinesis_provisioned ? 1 : 0
  alarm_name          = "${var.name}-events-stream-bytes-near-limit"
  alarm_description   = "Bytes written per minute above ${var.alarm_capacity_share * 100}% of ${var.kinesis_shard_count} shards x 1 MiB/s x 60 s."
  namespace           = "AWS/Kinesis"
  metric_name         = "IncomingBytes"
  dimensions          = { StreamName = aws_kinesis_stream.events.name }
  statistic           = "Sum"
  period              = local.alarm_period
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.kinesis_bytes_per_minute_limit * var.alarm_capacity_share
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

# --- stream consumers

resource "aws_cloudwatch_metric_alarm" "iterator_age" {
  for_each            = local.iterator_age_thresholds
  alarm_name          = "${var.name}-${each.key}-iterator-age"
  alarm_description   = "The ${each.key} Lambda is more than ${each.value} ms behind its stream for 5 minutes: data ages toward the stream's retention."
  namespace           = "AWS/Lambda"
  metric_name         = "IteratorAge"
  dimensions          = { FunctionName = "${var.name}-${each.key}" }
  statistic           = "Maximum"
  period              = local.alarm_period
  evaluation_periods  = 5
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  depends_on          = [aws_lambda_function.router, aws_lambda_function.aggregator, aws_lambda_function.reward]
}

resource "aws_cloudwatch_metric_alarm" "lambda_errors" {
  for_each            = local.lambdas
  alarm_name          = "${var.name}-${each.key}-errors"
  alarm_description   = "The ${each.key} Lambda failed whole invocations in 3 consecutive minutes (item failures are reported, not errors)."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = "${var.name}-${each.key}" }
  statistic           = "Sum"
  period              = local.alarm_period
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  depends_on          = [aws_lambda_function.router, aws_lambda_function.aggregator, aws_lambda_function.reward]
}

resource "aws_cloudwatch_metric_alarm" "router_throttles" {
  alarm_name          = "${var.name}-router-throttles"
  alarm_description   = "The router hit the Lambda concurrency limit: the lake falls behind. Raise the account quota or reserve shards x parallelization factor."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = aws_lambda_function.router.function_name }
  statistic           = "Sum"
  period              = local.alarm_period
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

# --- Firehose, per event type

resource "aws_cloudwatch_metric_alarm" "firehose_throttled" {
  for_each            = aws_kinesis_firehose_delivery_stream.events
  alarm_name          = "${var.name}-${each.key}-firehose-throttled"
  alarm_description   = "Firehose ${each.value.name} throttled the router's puts (the router retries; sustained, it falls behind). Ask for a higher quota."
  namespace           = "AWS/Firehose"
  metric_name         = "ThrottledRecords"
  dimensions          = { DeliveryStreamName = each.value.name }
  statistic           = "Sum"
  period              = local.alarm_period
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "firehose_records_near_quota" {
  for_each            = aws_kinesis_firehose_delivery_stream.events
  alarm_name          = "${var.name}-${each.key}-firehose-records-near-quota"
  alarm_description   = "Records put per minute above ${var.alarm_capacity_share * 100}% of ${var.firehose_records_per_second_quota} records/s x 60 s."
  namespace           = "AWS/Firehose"
  metric_name         = "IncomingRecords"
  dimensions          = { DeliveryStreamName = each.value.name }
  statistic           = "Sum"
  period              = local.alarm_period
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.firehose_records_per_minute_limit * var.alarm_capacity_share
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "firehose_requests_near_quota" {
  for_each            = aws_kinesis_firehose_delivery_stream.events
  alarm_name          = "${var.name}-${each.key}-firehose-requests-near-quota"
  alarm_description   = "PutRecordBatch calls per minute above ${var.alarm_capacity_share * 100}% of ${var.firehose_requests_per_second_quota} requests/s x 60 s."
  namespace           = "AWS/Firehose"
  metric_name         = "IncomingPutRequests"
  dimensions          = { DeliveryStreamName = each.value.name }
  statistic           = "Sum"
  period              = local.alarm_period
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.firehose_requests_per_minute_limit * var.alarm_capacity_share
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "firehose_bytes_near_quota" {
  for_each            = aws_kinesis_firehose_delivery_stream.events
  alarm_name          = "${var.name}-${each.key}-firehose-bytes-near-quota"
  alarm_description   = "Bytes put per minute above ${var.alarm_capacity_share * 100}% of ${var.firehose_bytes_per_second_quota} bytes/s x 60 s."
  namespace           = "AWS/Firehose"
  metric_name         = "IncomingBytes"
  dimensions          = { DeliveryStreamName = each.value.name }
  statistic           = "Sum"
  period              = local.alarm_period
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.firehose_bytes_per_minute_limit * var.alarm_capacity_share
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "firehose_freshness" {
  for_each          = aws_kinesis_firehose_delivery_stream.events
  alarm_name        = "${var.name}-${each.key}-firehose-freshness"
  alarm_description = "The oldest record in Firehose ${each.value.name} waited more than its buffer interval plus 15 minutes: S3 delivery or Parquet conversion is failing."
  namespace         = "AWS/Firehose"
  metric_name       = "DeliveryToS3.DataFreshness"
  dimensions        = { DeliveryStreamName = each.value.name }
  statistic         = "Maximum"
  period            = 300
  # DataFreshness is in seconds.
  evaluation_periods  = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.firehose_buffering_interval_seconds + 900
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "firehose_conversion_failed" {
  for_each            = aws_kinesis_firehose_delivery_stream.events
  alarm_name          = "${var.name}-${each.key}-parquet-conversion-failed"
  alarm_description   = "Firehose ${each.value.name} could not convert records to Parquet; they are under errors/${each.key}/ in the lake bucket. The Glue table and the registry disagree."
  namespace           = "AWS/Firehose"
  metric_name         = "FailedConversion.Records"
  dimensions          = { DeliveryStreamName = each.value.name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

# --- queues: anything in them needs an operator (or the redrive)

resource "aws_cloudwatch_metric_alarm" "queue_not_empty" {
  for_each            = local.queues
  alarm_name          = "${var.name}-${replace(each.key, "_", "-")}-not-empty"
  alarm_description   = "${each.value} holds messages. ingest_dlq: Kinesis refused events (ingest redrives them); the others: records or batches given up, see docs/deploy.md."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = local.alarm_period
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

# --- HTTP front: rates as metric math over per-minute sums

resource "aws_cloudwatch_metric_alarm" "http_5xx_rate" {
  alarm_name          = "${var.name}-ingest-5xx-rate"
  alarm_description   = "More than ${var.alarm_5xx_percent}% of requests answered 5xx (by the ALB or by ingest; ingest's 5xx are 503 sheds) for 3 minutes."
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_5xx_percent
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  metric_query {
    id          = "rate"
    expression  = "IF(requests > 0, 100 * (FILL(target5xx, 0) + FILL(elb5xx, 0)) / requests, 0)"
    label       = "5xx % of requests"
    return_data = true
  }
  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      dimensions  = { LoadBalancer = aws_lb.ingest.arn_suffix }
      stat        = "Sum"
      period      = local.alarm_period
    }
  }
  metric_query {
    id = "target5xx"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      dimensions  = { LoadBalancer = aws_lb.ingest.arn_suffix }
      stat        = "Sum"
      period      = local.alarm_period
    }
  }
  metric_query {
    id = "elb5xx"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_ELB_5XX_Count"
      dimensions  = { LoadBalancer = aws_lb.ingest.arn_suffix }
      stat        = "Sum"
      period      = local.alarm_period
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "http_503_rate" {
  alarm_name          = "${var.name}-alb-503-rate"
  alarm_description   = "More than ${var.alarm_503_percent}% of requests answered 503 by the ALB itself (no healthy ingest task) for 2 minutes."
  evaluation_periods  = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_503_percent
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  metric_query {
    id          = "rate"
    expression  = "IF(requests > 0, 100 * FILL(elb503, 0) / requests, 0)"
    label       = "ALB 503 % of requests"
    return_data = true
  }
  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      dimensions  = { LoadBalancer = aws_lb.ingest.arn_suffix }
      stat        = "Sum"
      period      = local.alarm_period
    }
  }
  metric_query {
    id = "elb503"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_ELB_503_Count"
      dimensions  = { LoadBalancer = aws_lb.ingest.arn_suffix }
      stat        = "Sum"
      period      = local.alarm_period
    }
  }
}

# --- Fargate

resource "aws_cloudwatch_metric_alarm" "ingest_cpu" {
  alarm_name          = "${var.name}-ingest-cpu"
  alarm_description   = "Ingest tasks average above ${var.alarm_cpu_percent}% CPU for 3 minutes: scaling is not keeping up (max tasks reached, or the Fargate quota)."
  namespace           = "AWS/ECS"
  metric_name         = "CPUUtilization"
  dimensions          = { ClusterName = aws_ecs_cluster.spate.name, ServiceName = aws_ecs_service.ingest.name }
  statistic           = "Average"
  period              = local.alarm_period
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_cpu_percent
  # No CPU data means no running task: that is an outage, not calm.
  treat_missing_data = "breaching"
  alarm_actions      = var.alarm_actions
  ok_actions         = var.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "ingest_memory" {
  alarm_name          = "${var.name}-ingest-memory"
  alarm_description   = "Ingest tasks average above 85% memory for 3 minutes: buffers are near their bounds."
  namespace           = "AWS/ECS"
  metric_name         = "MemoryUtilization"
  dimensions          = { ClusterName = aws_ecs_cluster.spate.name, ServiceName = aws_ecs_service.ingest.name }
  statistic           = "Average"
  period              = local.alarm_period
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = 85
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}
