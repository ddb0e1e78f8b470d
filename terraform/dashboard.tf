# One dashboard following an event through the pipeline, with the service
# limits drawn as horizontal lines in the same per-minute units.

locals {
  dash_period = 60
  lb          = aws_lb.ingest.arn_suffix
  stream      = aws_kinesis_stream.events.name

  firehose_names = [for t in local.event_types : aws_kinesis_firehose_delivery_stream.events[t].name]

  dashboard_widgets = [
    {
      type = "metric", x = 0, y = 0, width = 12, height = 6
      properties = {
        title  = "Ingest requests and errors (per minute)"
        region = var.region
        stat   = "Sum"
        period = local.dash_period
        metrics = [
          ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", local.lb],
          [".", "HTTPCode_Target_2XX_Count", ".", "."],
          [".", "HTTPCode_Target_4XX_Count", ".", "."],
          [".", "HTTPCode_Target_5XX_Count", ".", "."],
          [".", "HTTPCode_ELB_503_Count", ".", "."],
        ]
      }
    },
    {
      type = "metric", x = 12, y = 0, width = 12, height = 6
      properties = {
        title  = "Ingest latency (s) and tasks"
        region = var.region
        period = local.dash_period
        metrics = [
          ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", local.lb, { stat = "p99" }],
          ["...", { stat = "p50" }],
          ["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", aws_ecs_cluster.spate.name, "ServiceName", aws_ecs_service.ingest.name, { stat = "Average", yAxis = "right" }],
          ["AWS/ECS", "CPUUtilization", "ClusterName", aws_ecs_cluster.spate.name, "ServiceName", aws_ecs_service.ingest.name, { stat = "Average", yAxis = "right" }],
        ]
      }
    },
    {
      type = "metric", x = 0, y = 6, width = 12, height = 6
      properties = {
        title  = "Events stream writes (per minute) vs shard limit"
        region = var.region
        stat   = "Sum"
        period = local.dash_period
        metrics = [
          ["AWS/Kinesis", "IncomingRecords", "StreamName", local.stream],
          [".", "WriteProvisionedThroughputExceeded", ".", ".", { yAxis = "right" }],
        ]
        annotations = {
          horizontal = local.kinesis_provisioned ? [
            { label = "shard limit, records/min", value = local.kinesis_records_per_minute_limit },
          ] : []
        }
      }
    },
    {
      type = "metric", x = 12, y = 6, width = 12, height = 6
      properties = {
        title   = "Consumers: iterator age (ms, max)"
        region  = var.region
        stat    = "Maximum"
        period  = local.dash_period
        metrics = [for fn in keys(local.lambdas) : ["AWS/Lambda", "IteratorAge", "FunctionName", "${var.name}-${fn}"]]
      }
    },
    {
      type = "metric", x = 0, y = 12, width = 12, height = 6
      properties = {
        title   = "Firehose records in (per minute, per type)"
        region  = var.region
        stat    = "Sum"
        period  = local.dash_period
        metrics = [for n in local.firehose_names : ["AWS/Firehose", "IncomingRecords", "DeliveryStreamName", n]]
        annotations = {
          horizontal = [{ label = "per-stream quota, records/min", value = local.firehose_records_per_minute_limit }]
        }
      }
    },
    {
      type = "metric", x = 12, y = 12, width = 12, height = 6
      properties = {
        title   = "Firehose data freshness (s, max)"
        region  = var.region
        stat    = "Maximum"
        period  = 300
        metrics = [for n in local.firehose_names : ["AWS/Firehose", "DeliveryToS3.DataFreshness", "DeliveryStreamName", n]]
      }
    },
    {
      type = "metric", x = 0, y = 18, width = 12, height = 6
      properties = {
        title   = "Queues: messages visible"
        region  = var.region
        stat    = "Maximum"
        period  = local.dash_period
        metrics = [for q in values(local.queues) : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q]]
      }
    },
    {
      type = "metric", x = 12, y = 18, width = 12, height = 6
      properties = {
        title  = "Lambdas: concurrency, errors, throttles"
        region = var.region
        period = local.dash_period
        metrics = concat(
          [for fn in keys(local.lambdas) : ["AWS/Lambda", "ConcurrentExecutions", "FunctionName", "${var.name}-${fn}", { stat = "Maximum" }]],
          [for fn in keys(local.lambdas) : ["AWS/Lambda", "Errors", "FunctionName", "${var.name}-${fn}", { stat = "Sum", yAxis = "right" }]],
          [["AWS/Lambda", "Throttles", "FunctionName", "${var.name}-router", { stat = "Sum", yAxis = "right" }]],
        )
      }
    },
  ]
}

resource "aws_cloudwatch_dashboard" "spate" {
  dashboard_name = var.name
  dashboard_body = jsonencode({ widgets = local.dashboard_widgets })
}
