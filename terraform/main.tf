# spate on AWS: ingest (ECS Fargate behind an ALB) → Kinesis events stream
# (SQS DLQ when Kinesis refuses) → router Lambda → one Firehose per event
# type → Parquet lake on S3 with Glue tables; aggregator Lambda (tumbling
# windows) → aggregates stream → reward Lambda → reward APIs.
# One file per concern; docs/deploy.md walks through them.

locals {
  # The event types and their lake columns, generated from registry/ (do
  # not edit glue_columns.json; `go test ./registry -update` rewrites it).
  glue_columns = jsondecode(file("${path.module}/glue_columns.json"))
  event_types  = sort(keys(local.glue_columns))

  dist = coalesce(var.lambda_dist_dir, "${path.module}/../dist")

  # The container port of `spate ingest` (SPATE_ADDR).
  ingest_port = 8080

  # ECS sends SIGTERM, waits stopTimeout, then SIGKILL. ingest needs its
  # drain deadline plus time to exit and flush its logs.
  ingest_stop_timeout = min(var.ingest_drain_timeout_seconds + 10, 120)

  alb_request_target = floor(var.ingest_task_requests_per_second * 60 * var.ingest_target_utilization)
}
