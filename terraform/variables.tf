# Defaults are sized for a Yle-like load: 600,000 requests/min at prime
# time, spikes to 2.5 M requests/min. docs/deploy.md explains how each
# knob follows from `spate plan` (docs/capacity.md).

# ---------------------------------------------------------------- general

variable "name" {
  description = "Prefix of every resource name; also the Deployment tag."
  type        = string
  default     = "spate"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.name))
    error_message = "name: 2-20 characters, lower-case letters, digits and hyphens (ALB and target group names are limited to 32)."
  }
}

variable "region" {
  description = "AWS region."
  type        = string
  default     = "eu-north-1"
}

variable "tags" {
  description = "Extra tags on every resource."
  type        = map(string)
  default     = {}
}

variable "log_retention_days" {
  description = "Retention of the CloudWatch log groups of the ingest service, the Lambdas and Firehose."
  type        = number
  default     = 30
}

variable "alarm_actions" {
  description = "ARNs (e.g. an SNS topic) notified when an alarm fires and when it recovers. Empty: alarms only show in the console."
  type        = list(string)
  default     = []
}

# ---------------------------------------------------------------- network

variable "vpc_id" {
  description = "Existing VPC for the load balancer and the ingest tasks."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets of the internet-facing load balancer, at least two availability zones."
  type        = list(string)

  validation {
    condition     = length(var.public_subnet_ids) >= 2
    error_message = "public_subnet_ids: an ALB needs subnets in at least two availability zones."
  }
}

variable "private_subnet_ids" {
  description = "Subnets of the ingest tasks. They need a route to ECR, CloudWatch Logs, Kinesis and SQS: a NAT gateway or VPC endpoints (docs/deploy.md)."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "private_subnet_ids: spread the tasks over at least two availability zones."
  }
}

variable "assign_public_ip" {
  description = "Give ingest tasks public IPs (only when private_subnet_ids are in fact public subnets without NAT)."
  type        = bool
  default     = false
}

variable "ingress_cidrs" {
  description = "Client networks allowed to reach the load balancer."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "certificate_arn" {
  description = "ACM certificate of the HTTPS listener."
  type        = string
}

variable "domain_name" {
  description = "Host name clients use (must match the certificate). Empty: the load balancer's DNS name."
  type        = string
  default     = ""
}

variable "alb_capacity_units" {
  description = "Load balancer capacity units reserved ahead of a known peak (0: none). See docs/deploy.md for sizing from `spate plan`."
  type        = number
  default     = 0
}

variable "route53_zone_id" {
  description = "Hosted zone in which to create domain_name as an alias of the load balancer. Empty: manage DNS elsewhere."
  type        = string
  default     = ""
}

# ---------------------------------------------------------------- ingest

variable "image_tag" {
  description = "Tag of the spate image in the ECR repository this configuration creates (immutable tags: one per release)."
  type        = string
}

variable "ingest_cpu" {
  description = "Fargate task vCPU units (1024 = 1 vCPU). The per-task capacity docs/capacity.md assumes was measured at this size."
  type        = number
  default     = 1024
}

variable "ingest_memory" {
  description = "Fargate task memory (MiB). Must fit the buffer bounds (SPATE_BUFFER_BYTES) with room to spare."
  type        = number
  default     = 2048
}

variable "ingest_cpu_architecture" {
  description = "ARM64 (Graviton, cheaper per request) or X86_64; the image must be built for it (docker buildx --platform)."
  type        = string
  default     = "ARM64"

  validation {
    condition     = contains(["ARM64", "X86_64"], var.ingest_cpu_architecture)
    error_message = "ingest_cpu_architecture: ARM64 or X86_64."
  }
}

variable "ingest_min_tasks" {
  description = "Autoscaling floor, outside scheduled actions. At least 2 for availability; `spate plan` gives the prime-time count."
  type        = number
  default     = 6

  validation {
    condition     = var.ingest_min_tasks >= 2
    error_message = "ingest_min_tasks: at least 2, one per availability zone."
  }
}

variable "ingest_max_tasks" {
  description = "Autoscaling ceiling. Must stay below the account's Fargate task quota with room for deployments (2x during a rolling deploy)."
  type        = number
  default     = 80
}

variable "ingest_task_requests_per_second" {
  description = "Requests/s one task sustains at its p99 target, from the ingest benchmark (docs/benchmarks.md)."
  type        = number
  default     = 2000
}

variable "ingest_target_utilization" {
  description = "Share of ingest_task_requests_per_second target tracking aims for; the rest is headroom while new tasks start (about a minute)."
  type        = number
  default     = 0.6

  validation {
    condition     = var.ingest_target_utilization > 0 && var.ingest_target_utilization <= 0.9
    error_message = "ingest_target_utilization: in (0, 0.9]."
  }
}

variable "ingest_cpu_target" {
  description = "Average CPU % the CPU target-tracking policy aims for."
  type        = number
  default     = 60
}

variable "ingest_drain_timeout_seconds" {
  description = "SPATE_DRAIN_TIMEOUT: after SIGTERM, time ingest has to finish requests and flush its buffers. The task's stopTimeout is this plus a margin (Fargate allows at most 120 s)."
  type        = number
  default     = 25

  validation {
    condition     = var.ingest_drain_timeout_seconds >= 5 && var.ingest_drain_timeout_seconds <= 110
    error_message = "ingest_drain_timeout_seconds: 5-110 (stopTimeout = drain + 10 must stay within Fargate's 120 s)."
  }
}

variable "ingest_deregistration_delay_seconds" {
  description = "How long the ALB lets in-flight requests finish on a deregistering task before ECS sends SIGTERM. Above the longest request (SPATE_ACK_TIMEOUT, 10 s by default)."
  type        = number
  default     = 20
}

variable "ingest_api_keys_secret_arn" {
  description = "Secrets Manager secret whose value is SPATE_API_KEYS (app=key write keys). Required unless allow_anonymous_ingest. Never put keys in ingest_environment."
  type        = string
  default     = ""

  validation {
    condition     = var.ingest_api_keys_secret_arn != "" || var.allow_anonymous_ingest
    error_message = "ingest_api_keys_secret_arn: write keys are required; give the secret, or set allow_anonymous_ingest = true to accept anonymous events."
  }
}

variable "ingest_environment" {
  description = "Extra SPATE_* settings of `spate ingest` (see `spate ingest --help`), e.g. SPATE_BATCH_LINGER. The stream, DLQ, address and drain timeout are set by this configuration."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.ingest_environment) : !contains(["SPATE_ADDR", "SPATE_STREAM", "SPATE_DLQ_URL", "SPATE_DRAIN_TIMEOUT", "SPATE_MAX_BODY_BYTES", "SPATE_API_KEYS"], k)])
    error_message = "ingest_environment: SPATE_ADDR, SPATE_STREAM, SPATE_DLQ_URL, SPATE_DRAIN_TIMEOUT and SPATE_MAX_BODY_BYTES (ingest_max_body_bytes) are set by terraform; SPATE_API_KEYS comes from ingest_api_keys_secret_arn."
  }
}

variable "ecs_scheduled_actions" {
  description = "Scheduled capacity of the ingest service ahead of known peaks, as emitted by `spate prescale --tfvars` (docs/deploy.md): at(...) times in UTC."
  type = list(object({
    name         = string
    schedule     = string
    min_capacity = number
    max_capacity = number
  }))
  default = []

  validation {
    condition     = length(var.ecs_scheduled_actions) <= 200
    error_message = "ecs_scheduled_actions: Application Auto Scaling allows at most 200 scheduled actions per scalable target."
  }
  validation {
    condition     = alltrue([for a in var.ecs_scheduled_actions : can(regex("^(at|cron|rate)\\(.+\\)$", a.schedule))])
    error_message = "ecs_scheduled_actions: schedule must be at(yyyy-mm-ddThh:mm:ss), cron(...) or rate(...)."
  }
  validation {
    condition     = alltrue([for a in var.ecs_scheduled_actions : a.min_capacity >= 0 && a.min_capacity <= a.max_capacity])
    error_message = "ecs_scheduled_actions: need 0 <= min_capacity <= max_capacity."
  }
  validation {
    condition     = length(distinct([for a in var.ecs_scheduled_actions : a.name])) == length(var.ecs_scheduled_actions)
    error_message = "ecs_scheduled_actions: names must be unique."
  }
}

# ---------------------------------------------------------------- streams

variable "kinesis_stream_mode" {
  description = "PROVISIONED (shards you pay for by the hour; `spate prescale` reshards ahead of peaks) or ON_DEMAND (absorbs 2x its recent peak without warning)."
  type        = string
  default     = "PROVISIONED"

  validation {
    condition     = contains(["PROVISIONED", "ON_DEMAND"], var.kinesis_stream_mode)
    error_message = "kinesis_stream_mode: PROVISIONED or ON_DEMAND."
  }
}

variable "kinesis_shard_count" {
  description = "Shards of the events stream when PROVISIONED: 1,000 records/s and 1 MiB/s of writes each. `spate plan` gives the peak count; Yle runs 40 for a 10-shard prime time."
  type        = number
  default     = 40
}

variable "kinesis_retention_hours" {
  description = "Retention of the events stream: how long a stuck consumer or a replay can still read the data (24-8760)."
  type        = number
  default     = 48

  validation {
    condition     = var.kinesis_retention_hours >= 24 && var.kinesis_retention_hours <= 8760
    error_message = "kinesis_retention_hours: 24-8760."
  }
}

variable "aggregates_shard_count" {
  description = "Shards of the aggregates stream (one record per content x variant x platform per window: small)."
  type        = number
  default     = 1
}

# ---------------------------------------------------------------- Lambdas

variable "lambda_dist_dir" {
  description = "Directory holding router.zip, aggregator.zip and reward.zip from `make lambdas`. Null: ../dist next to this module."
  type        = string
  default     = null
}

variable "router_batch_size" {
  description = "Records per router invocation (Kinesis ESM BatchSize, max 10,000). Larger batches mean fewer, fuller Firehose calls."
  type        = number
  default     = 1000
}

variable "router_batching_window_seconds" {
  description = "Longest the ESM waits to fill a router batch (0-300)."
  type        = number
  default     = 1
}

variable "router_parallelization_factor" {
  description = "Concurrent router batches per shard (1-10). Router concurrency = shards x this; `spate plan` checks it against the Lambda quota."
  type        = number
  default     = 2

  validation {
    condition     = var.router_parallelization_factor >= 1 && var.router_parallelization_factor <= 10
    error_message = "router_parallelization_factor: 1-10."
  }
}

variable "router_max_retry_attempts" {
  description = "Retries of a failed router batch before its metadata goes to the stream-failures queue (records that can never be routed go to the router dead-letter queue without retries)."
  type        = number
  default     = 20
}

variable "router_max_record_age_seconds" {
  description = "Records older than this are skipped to the stream-failures queue. Keep well below kinesis_retention_hours so an operator can still replay them from the stream."
  type        = number
  default     = 21600
}

variable "router_memory_mb" {
  description = "Router memory (also buys CPU: 1,769 MB = 1 vCPU)."
  type        = number
  default     = 1024
}

variable "router_timeout_seconds" {
  description = "Router timeout; it bounds Firehose retries within an invocation."
  type        = number
  default     = 60
}

variable "router_reserved_concurrency" {
  description = "Reserved concurrency of the router; null: unreserved. Reserve shards x parallelization factor so other functions cannot starve it."
  type        = number
  default     = null
}

variable "aggregate_window_seconds" {
  description = "Tumbling window of the real-time aggregates (1-900 s)."
  type        = number
  default     = 60

  validation {
    condition     = var.aggregate_window_seconds >= 1 && var.aggregate_window_seconds <= 900
    error_message = "aggregate_window_seconds: 1-900 (Lambda tumbling windows)."
  }
}

variable "aggregator_batch_size" {
  description = "Records per aggregator invocation."
  type        = number
  default     = 1000
}

variable "aggregator_memory_mb" {
  description = "Aggregator memory."
  type        = number
  default     = 512
}

variable "reward_endpoints" {
  description = "Reward APIs the reward Lambda POSTs every window's aggregates to: one call per entry; a model may have several URLs (SPATE_REWARD_ENDPOINTS)."
  type = list(object({
    model = string
    url   = string
  }))

  validation {
    condition     = length(var.reward_endpoints) > 0
    error_message = "reward_endpoints: at least one {model, url}."
  }
  validation {
    condition     = alltrue([for e in var.reward_endpoints : can(regex(var.allow_insecure_reward_endpoints ? "^https?://[^,]+$" : "^https://[^,]+$", e.url)) && can(regex("^[^=,]+$", e.model))])
    error_message = "reward_endpoints: absolute https URLs (http only with allow_insecure_reward_endpoints) without commas, model names without '=' or ','."
  }
}

variable "reward_max_age_seconds" {
  description = "How long after a window's end the reward Lambda keeps retrying its aggregates before dead-lettering them (SPATE_REWARD_MAX_AGE): a dead reward API never blocks the aggregates stream for longer."
  type        = number
  default     = 3600

  validation {
    condition     = var.reward_max_age_seconds >= 60 && var.reward_max_age_seconds <= 86400 - 900
    error_message = "reward_max_age_seconds: 60 to 85500 (the mapping's record age is this plus 15 minutes, under the stream's 24 h)."
  }
}

# ---------------------------------------------------------------- lake

variable "firehose_buffering_size_mb" {
  description = "Firehose buffer before a Parquet file is written (64-128 MiB with format conversion). Larger: fewer, bigger files."
  type        = number
  default     = 128

  validation {
    condition     = var.firehose_buffering_size_mb >= 64 && var.firehose_buffering_size_mb <= 128
    error_message = "firehose_buffering_size_mb: 64-128 (Parquet conversion needs at least 64)."
  }
}

variable "firehose_buffering_interval_seconds" {
  description = "Longest Firehose buffers before writing (0-900 s): the lake's latency for low-volume types."
  type        = number
  default     = 300

  validation {
    condition     = var.firehose_buffering_interval_seconds >= 0 && var.firehose_buffering_interval_seconds <= 900
    error_message = "firehose_buffering_interval_seconds: 0-900."
  }
}

variable "firehose_records_per_second_quota" {
  description = "Direct PUT quota of one Firehose stream in this region, records/s (500,000 in us-east-1, us-west-2 and eu-west-1; 100,000 elsewhere)."
  type        = number
  default     = 100000
}

variable "firehose_requests_per_second_quota" {
  description = "Direct PUT quota of one Firehose stream, PutRecordBatch requests/s (2,000 in us-east-1, us-west-2 and eu-west-1; 1,000 elsewhere)."
  type        = number
  default     = 1000
}

variable "firehose_bytes_per_second_quota" {
  description = "Direct PUT quota of one Firehose stream, bytes/s (5 MiB in us-east-1, us-west-2 and eu-west-1; 1 MiB elsewhere)."
  type        = number
  default     = 1048576
}

variable "lake_infrequent_access_days" {
  description = "Days after which lake objects move to S3 Intelligent-Tiering."
  type        = number
  default     = 30
}

variable "lake_expiration_days" {
  description = "Days after which lake objects are deleted; 0 keeps them."
  type        = number
  default     = 0
}

variable "lake_error_expiration_days" {
  description = "Days Firehose conversion errors (errors/ prefix) are kept."
  type        = number
  default     = 30
}

variable "lake_projection_start" {
  description = "First dt= partition Athena's partition projection considers (yyyy-MM-dd)."
  type        = string
  default     = "2026-01-01"
}

# ---------------------------------------------------------------- alarms

variable "alarm_capacity_share" {
  description = "Share of a per-second service limit at which the capacity alarms fire (Kinesis shards, Firehose quotas)."
  type        = number
  default     = 0.8
}

variable "alarm_router_iterator_age_ms" {
  description = "Router IteratorAge (ms) above which the lake is falling behind."
  type        = number
  default     = 60000
}

variable "alarm_reward_iterator_age_ms" {
  description = "Reward IteratorAge (ms) above which rewards are stale."
  type        = number
  default     = 300000
}

variable "alarm_5xx_percent" {
  description = "Share of requests (%) answered 5xx, by the ALB or ingest, that raises the 5xx alarm."
  type        = number
  default     = 1
}

variable "alarm_503_percent" {
  description = "Share of requests (%) the ALB itself answers 503 (no healthy task) that raises the 503 alarm."
  type        = number
  default     = 0.1
}

variable "alarm_cpu_percent" {
  description = "Average ingest CPU % that raises the CPU alarm (target tracking should keep it at ingest_cpu_target)."
  type        = number
  default     = 85
}

variable "ingest_dlq_max_receive_count" {
  description = "Receives of one ingest DLQ message before SQS parks it in the parking queue. The redrive leaves undecodable messages for this; keep it high so good messages survive a long Kinesis outage."
  type        = number
  default     = 100
}

variable "prescale_schedule_s3_uri" {
  description = "s3://bucket/key of the broadcast schedule (CSV or JSON, docs/capacity.md). When set, `spate prescale` runs on a schedule as a Fargate task; empty: off."
  type        = string
  default     = ""

  validation {
    condition     = var.prescale_schedule_s3_uri == "" || can(regex("^s3://[^/]+/.+", var.prescale_schedule_s3_uri))
    error_message = "prescale_schedule_s3_uri: s3://bucket/key, or empty."
  }
}

variable "prescale_interval_minutes" {
  description = "How often the scheduled prescale runs; also its --reshard-time (one shard step per run)."
  type        = number
  default     = 15
}

variable "prescale_manage_kinesis" {
  description = "Let the scheduled prescale step the events stream's shard count. Then keep kinesis_shard_count at the plan's baseline, or an apply during a prescaled window undoes it."
  type        = bool
  default     = false
}

variable "prescale_extra_args" {
  description = "More `spate prescale` flags (the plan's settings, e.g. [\"--task-rps\", \"2500\", \"--baseline-rpm\", \"600000\"])."
  type        = list(string)
  default     = []
}
