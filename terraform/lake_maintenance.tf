# Lake maintenance: `spate lake forget` (GDPR erasure) and, optionally,
# `spate lake compact` as small Fargate tasks of the ingest image, started
# by EventBridge Scheduler like the scheduled prescale (prescale.tf).
#
# Forget reads its requests from s3://<lake>/_privacy/forget-requests.txt
# (one column:value per line; terraform creates it empty and then leaves
# it to the privacy team) and writes its report, keyed by request hash,
# under _reports/. See docs/privacy.md.
#
# The task role may read and write objects of the lake bucket and nothing
# else: the events live at its root (<type>/dt=…/hour=…/, errors/), so the
# lake prefix is the whole bucket.

variable "lake_forget_schedule" {
  description = "EventBridge Scheduler expression of `spate lake forget` over the lake (UTC); empty: off. Weekly by default: requests are answered within the month GDPR art. 17 allows."
  type        = string
  default     = "cron(0 2 ? * MON *)"
}

variable "lake_compact_schedule" {
  description = "EventBridge Scheduler expression of `spate lake compact` (UTC; it compacts partitions whose hour ended 2 h or more ago); empty: off."
  type        = string
  default     = ""
}

variable "lake_maintenance_cpu" {
  description = "CPU units of a lake maintenance task (1024 = 1 vCPU)."
  type        = number
  default     = 1024
}

variable "lake_maintenance_memory_mb" {
  description = "Memory of a lake maintenance task. Compact holds about 100 bytes per row of the largest partition (about 2 GB for a 20 M-row hour)."
  type        = number
  default     = 4096
}

variable "lake_maintenance_extra_args" {
  description = "More flags per job, e.g. { forget = [\"--parallel\", \"8\"], compact = [\"--target-size\", \"256MiB\"] }."
  type        = map(list(string))
  default     = {}
}

locals {
  lake_uri           = "s3://${aws_s3_bucket.lake.bucket}"
  lake_requests_key  = "_privacy/forget-requests.txt"
  lake_forget_args   = ["lake", "forget", "--lake", local.lake_uri, "--requests", "${local.lake_uri}/${local.lake_requests_key}"]
  lake_compact_args  = ["lake", "compact", "--lake", local.lake_uri, "--report", "lake"]
  lake_jobs_declared = { forget = { schedule = var.lake_forget_schedule, args = local.lake_forget_args }, compact = { schedule = var.lake_compact_schedule, args = local.lake_compact_args } }
  lake_jobs          = { for k, j in local.lake_jobs_declared : k => j if j.schedule != "" }
  lake_maintenance   = length(local.lake_jobs) > 0
}

# The requests list, created empty once; its content is the privacy
# team's, so terraform never puts it back.
resource "aws_s3_object" "lake_forget_requests" {
  count   = var.lake_forget_schedule != "" ? 1 : 0
  bucket  = aws_s3_bucket.lake.id
  key     = local.lake_requests_key
  content = "# spate lake forget: one erasure request per line, user_id:<id>, anonymous_id:<id> or session_id:<id>\n"
  lifecycle {
    ignore_changes = [content, etag, tags]
  }
}

resource "aws_iam_role" "lake_maintenance_task" {
  count              = local.lake_maintenance ? 1 : 0
  name               = "${var.name}-lake-maintenance-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "lake_maintenance_task" {
  statement {
    sid = "ListLake"
    # Versions are listed so that forget finds the noncurrent ones too.
    actions   = ["s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketVersioning"]
    resources = [aws_s3_bucket.lake.arn]
  }
  statement {
    sid = "RewriteLakeObjects"
    actions = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion",
    "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.lake.arn}/*"]
  }
  # The lake is SSE-KMS: S3 uses the key on the task's behalf, and only S3.
  statement {
    sid       = "LakeKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.data.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "lake_maintenance_task" {
  count  = local.lake_maintenance ? 1 : 0
  name   = "lake-maintenance"
  role   = aws_iam_role.lake_maintenance_task[0].id
  policy = data.aws_iam_policy_document.lake_maintenance_task.json
}

resource "aws_security_group" "lake_maintenance" {
  count       = local.lake_maintenance ? 1 : 0
  name        = "${var.name}-lake-maintenance"
  description = "spate lake maintenance tasks: no inbound; egress as every task's (network.tf)"
  vpc_id      = var.vpc_id
}

# Same image and execution role as ingest. The root file system stays
# read-only; files being rewritten go to a scratch volume in the task's
# ephemeral storage (TMPDIR).
resource "aws_ecs_task_definition" "lake" {
  for_each                 = local.lake_jobs
  family                   = "${var.name}-lake-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.lake_maintenance_cpu
  memory                   = var.lake_maintenance_memory_mb
  execution_role_arn       = aws_iam_role.ingest_execution.arn
  task_role_arn            = aws_iam_role.lake_maintenance_task[0].arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.ingest_cpu_architecture
  }

  volume {
    name = "scratch"
  }

  container_definitions = jsonencode([{
    name                   = "lake-${each.key}"
    image                  = "${aws_ecr_repository.spate.repository_url}:${var.image_tag}"
    essential              = true
    entryPoint             = ["/spate"]
    command                = concat(each.value.args, lookup(var.lake_maintenance_extra_args, each.key, []))
    environment            = [{ name = "AWS_REGION", value = var.region }, { name = "TMPDIR", value = "/scratch" }]
    readonlyRootFilesystem = true
    mountPoints            = [{ sourceVolume = "scratch", containerPath = "/scratch", readOnly = false }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.ingest.name
        awslogs-region        = var.region
        awslogs-stream-prefix = "lake-${each.key}"
      }
    }
  }])
}

resource "aws_iam_role" "lake_maintenance_scheduler" {
  count              = local.lake_maintenance ? 1 : 0
  name               = "${var.name}-lake-maintenance-scheduler"
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
}

data "aws_iam_policy_document" "lake_maintenance_scheduler" {
  count = local.lake_maintenance ? 1 : 0
  statement {
    sid       = "RunLakeMaintenance"
    actions   = ["ecs:RunTask"]
    resources = [for td in aws_ecs_task_definition.lake : "${td.arn_without_revision}:*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.spate.arn]
    }
  }
  statement {
    sid       = "PassRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.ingest_execution.arn, aws_iam_role.lake_maintenance_task[0].arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "lake_maintenance_scheduler" {
  count  = local.lake_maintenance ? 1 : 0
  name   = "run-lake-maintenance"
  role   = aws_iam_role.lake_maintenance_scheduler[0].id
  policy = data.aws_iam_policy_document.lake_maintenance_scheduler[0].json
}

resource "aws_scheduler_schedule" "lake" {
  for_each                     = local.lake_jobs
  name                         = "${var.name}-lake-${each.key}"
  description                  = "spate lake ${each.key}"
  schedule_expression          = each.value.schedule
  schedule_expression_timezone = "UTC"

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_ecs_cluster.spate.arn
    role_arn = aws_iam_role.lake_maintenance_scheduler[0].arn

    ecs_parameters {
      task_definition_arn = aws_ecs_task_definition.lake[each.key].arn
      launch_type         = "FARGATE"
      task_count          = 1

      network_configuration {
        subnets          = var.private_subnet_ids
        security_groups  = [aws_security_group.lake_maintenance[0].id]
        assign_public_ip = var.assign_public_ip
      }
    }

    retry_policy {
      maximum_event_age_in_seconds = 3600
      maximum_retry_attempts       = 2
    }
  }
}
