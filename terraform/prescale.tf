# The scheduled prescale: `spate prescale` as a small Fargate task, started
# by EventBridge Scheduler every prescale_interval_minutes. It reads the
# broadcast schedule operators upload to S3 and keeps the ingest service's
# scheduled actions (and, when prescale_manage_kinesis is set, the events
# stream's shard count) in line with `spate plan` (docs/capacity.md).
# Off while prescale_schedule_s3_uri is empty.
#
# Use this or the `ecs_scheduled_actions` variable, not both: they would
# fight over the same scalable target.

locals {
  prescale_enabled = var.prescale_schedule_s3_uri != ""
  prescale_object  = trimprefix(var.prescale_schedule_s3_uri, "s3://")
  prescale_command = concat(
    ["prescale", "--schedule", var.prescale_schedule_s3_uri,
      "--cluster", aws_ecs_cluster.spate.name, "--service", aws_ecs_service.ingest.name,
    "--reshard-time", "${var.prescale_interval_minutes}m"],
    var.prescale_manage_kinesis ? ["--stream", aws_kinesis_stream.events.name] : [],
    var.prescale_extra_args,
  )
}

resource "aws_iam_role" "prescale_task" {
  count              = local.prescale_enabled ? 1 : 0
  name               = "${var.name}-prescale-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "prescale_task" {
  statement {
    sid       = "ReadSchedule"
    actions   = ["s3:GetObject"]
    resources = ["arn:aws:s3:::${local.prescale_object}"]
  }
  statement {
    sid       = "ManageScheduledActions"
    actions   = ["application-autoscaling:PutScheduledAction", "application-autoscaling:DeleteScheduledAction"]
    resources = [aws_appautoscaling_target.ingest.arn]
  }
  statement {
    sid = "ReadScheduledActions"
    # Describe calls of Application Auto Scaling take no resource.
    actions   = ["application-autoscaling:DescribeScheduledActions"]
    resources = ["*"]
  }
  dynamic "statement" {
    for_each = var.prescale_manage_kinesis ? [aws_kinesis_stream.events.arn] : []
    content {
      sid       = "StepShards"
      actions   = ["kinesis:UpdateShardCount", "kinesis:UpdateStreamWarmThroughput", "kinesis:DescribeStreamSummary"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "prescale_task" {
  count  = local.prescale_enabled ? 1 : 0
  name   = "prescale"
  role   = aws_iam_role.prescale_task[0].id
  policy = data.aws_iam_policy_document.prescale_task.json
}

resource "aws_security_group" "prescale" {
  count       = local.prescale_enabled ? 1 : 0
  name        = "${var.name}-prescale"
  description = "spate prescale task: no inbound, HTTPS to AWS APIs"
  vpc_id      = var.vpc_id
}

# Same image as ingest, same execution role (pull, logs); its log stream
# prefix tells the runs apart in the ingest log group.
resource "aws_ecs_task_definition" "prescale" {
  count                    = local.prescale_enabled ? 1 : 0
  family                   = "${var.name}-prescale"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  execution_role_arn       = aws_iam_role.ingest_execution.arn
  task_role_arn            = aws_iam_role.prescale_task[0].arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.ingest_cpu_architecture
  }

  container_definitions = jsonencode([{
    name      = "prescale"
    image     = "${aws_ecr_repository.spate.repository_url}:${var.image_tag}"
    essential = true
    # The image's ENTRYPOINT runs ingest; this task runs another command.
    entryPoint             = ["/spate"]
    command                = local.prescale_command
    environment            = [{ name = "AWS_REGION", value = var.region }]
    readonlyRootFilesystem = true
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.ingest.name
        awslogs-region        = var.region
        awslogs-stream-prefix = "prescale"
      }
    }
  }])
}

data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    # Only this account's schedules may assume the role (confused deputy).
    # Scheduler's own guidance: aws:SourceArn is the schedule group's ARN,
    # never a schedule's — scoped to a schedule, the role cannot be
    # assumed and every run is refused. The prescale and lake maintenance
    # schedules are in the default group.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:scheduler:${var.region}:${local.account_id}:schedule-group/default"]
    }
  }
}

resource "aws_iam_role" "prescale_scheduler" {
  count              = local.prescale_enabled ? 1 : 0
  name               = "${var.name}-prescale-scheduler"
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
}

data "aws_iam_policy_document" "prescale_scheduler" {
  count = local.prescale_enabled ? 1 : 0
  statement {
    sid       = "RunPrescale"
    actions   = ["ecs:RunTask"]
    resources = ["${aws_ecs_task_definition.prescale[0].arn_without_revision}:*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.spate.arn]
    }
  }
  statement {
    sid       = "PassRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.ingest_execution.arn, aws_iam_role.prescale_task[0].arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "prescale_scheduler" {
  count  = local.prescale_enabled ? 1 : 0
  name   = "run-prescale"
  role   = aws_iam_role.prescale_scheduler[0].id
  policy = data.aws_iam_policy_document.prescale_scheduler[0].json
}

resource "aws_scheduler_schedule" "prescale" {
  count       = local.prescale_enabled ? 1 : 0
  name        = "${var.name}-prescale"
  description = "spate prescale: scheduled actions (and shard steps) from the broadcast schedule"
  # At least every --reshard-time, so shard steps follow one another.
  schedule_expression = "rate(${var.prescale_interval_minutes} minutes)"

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_ecs_cluster.spate.arn
    role_arn = aws_iam_role.prescale_scheduler[0].arn

    ecs_parameters {
      task_definition_arn = aws_ecs_task_definition.prescale[0].arn
      launch_type         = "FARGATE"
      task_count          = 1

      network_configuration {
        subnets          = var.private_subnet_ids
        security_groups  = [aws_security_group.prescale[0].id]
        assign_public_ip = var.assign_public_ip
      }
    }

    retry_policy {
      maximum_event_age_in_seconds = 300
      maximum_retry_attempts       = 2
    }
  }
}
