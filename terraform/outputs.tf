output "ingest_url" {
  description = "Where clients POST events."
  value       = "https://${var.domain_name != "" ? var.domain_name : aws_lb.ingest.dns_name}/v1/events"
}

output "load_balancer_dns_name" {
  description = "The ALB's DNS name (point domain_name at it when DNS is managed elsewhere)."
  value       = aws_lb.ingest.dns_name
}

output "ecr_repository_url" {
  description = "Push the spate image here, tagged image_tag."
  value       = aws_ecr_repository.spate.repository_url
}

output "events_stream_name" {
  description = "The Kinesis stream ingest writes (SPATE_STREAM; `spate redrive --stream`)."
  value       = aws_kinesis_stream.events.name
}

output "aggregates_stream_name" {
  description = "The Kinesis stream of window aggregates."
  value       = aws_kinesis_stream.aggregates.name
}

output "ingest_dlq_url" {
  description = "The ingest dead-letter queue (SPATE_DLQ_URL; `spate redrive --queue`)."
  value       = aws_sqs_queue.ingest_dlq.url
}

output "lake_bucket" {
  description = "The S3 bucket of the Parquet lake: <type>/dt=YYYY-MM-DD/hour=HH/."
  value       = aws_s3_bucket.lake.bucket
}

output "glue_database" {
  description = "The Glue database with one table per event type (query with Athena)."
  value       = aws_glue_catalog_database.lake.name
}

output "firehose_streams" {
  description = "Delivery stream name per event type."
  value       = { for t, f in aws_kinesis_firehose_delivery_stream.events : t => f.name }
}

output "ecs_cluster_name" {
  description = "The ECS cluster (for `spate prescale`)."
  value       = aws_ecs_cluster.spate.name
}

output "ecs_service_name" {
  description = "The ingest ECS service (for `spate prescale`)."
  value       = aws_ecs_service.ingest.name
}

output "dashboard_name" {
  description = "The CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.spate.dashboard_name
}
