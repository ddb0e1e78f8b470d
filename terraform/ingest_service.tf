# The ingest service: `spate ingest` (the Dockerfile's ENTRYPOINT) on
# Fargate, configured only through SPATE_* variables.

resource "aws_cloudwatch_log_group" "ingest" {
  name              = "/ecs/${var.name}-ingest"
  retention_in_days = var.log_retention_days
}

# --- roles

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# The execution role is what ECS uses to start the task: pull the image,
# create the log stream, read the API keys secret.
resource "aws_iam_role" "ingest_execution" {
  name               = "${var.name}-ingest-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "ingest_execution" {
  statement {
    sid = "EcrAuth"
    # GetAuthorizationToken has no resource-level permissions.
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
  statement {
    sid       = "PullImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
    resources = [aws_ecr_repository.spate.arn]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.ingest.arn}:*"]
  }
  dynamic "statement" {
    for_each = var.ingest_api_keys_secret_arn == "" ? [] : [var.ingest_api_keys_secret_arn]
    content {
      sid       = "ApiKeys"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [statement.value]
    }
  }
  # A secret encrypted with a customer managed key: ECS decrypts it with
  # the execution role, through Secrets Manager only.
  dynamic "statement" {
    for_each = var.ingest_api_keys_kms_key_arn == "" ? [] : [var.ingest_api_keys_kms_key_arn]
    content {
      sid       = "ApiKeysKey"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${var.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "ingest_execution" {
  name   = "start-task"
  role   = aws_iam_role.ingest_execution.id
  policy = data.aws_iam_policy_document.ingest_execution.json
}

# The task role is what `spate ingest` itself may do: write the events
# stream, and send to, read and delete from its DLQ (the background
# redrive).
resource "aws_iam_role" "ingest_task" {
  name               = "${var.name}-ingest-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "ingest_task" {
  statement {
    sid       = "PutEvents"
    actions   = ["kinesis:PutRecords", "kinesis:PutRecord", "kinesis:DescribeStreamSummary", "kinesis:ListShards"]
    resources = [aws_kinesis_stream.events.arn]
  }
  statement {
    sid = "DeadLetterQueue"
    actions = [
      "sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:GetQueueUrl",
    ]
    resources = [aws_sqs_queue.ingest_dlq.arn]
  }
  statement {
    sid = "EncryptedStreamAndQueue"
    # Kinesis needs GenerateDataKey to write; SQS needs GenerateDataKey to
    # send and Decrypt to receive. Only through those two services.
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.data.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["kinesis.${var.region}.amazonaws.com", "sqs.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "ingest_task" {
  name   = "ingest"
  role   = aws_iam_role.ingest_task.id
  policy = data.aws_iam_policy_document.ingest_task.json
}

# --- network

resource "aws_security_group" "ingest_tasks" {
  name        = "${var.name}-ingest-tasks"
  description = "spate ingest tasks: HTTP from the load balancer only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "ingest_from_alb" {
  security_group_id            = aws_security_group.ingest_tasks.id
  description                  = "ingest HTTP (requests and /healthz) from the ALB"
  referenced_security_group_id = aws_security_group.alb.id
  ip_protocol                  = "tcp"
  from_port                    = local.ingest_port
  to_port                      = local.ingest_port
}


# --- task and service

locals {
  ingest_environment = merge(var.ingest_environment, {
    SPATE_ADDR          = ":${local.ingest_port}"
    SPATE_STREAM        = aws_kinesis_stream.events.name
    SPATE_DLQ_URL       = aws_sqs_queue.ingest_dlq.url
    SPATE_DRAIN_TIMEOUT = "${var.ingest_drain_timeout_seconds}s"
    # The same limit the WAF's body-size rule is sized from.
    SPATE_MAX_BODY_BYTES = tostring(var.ingest_max_body_bytes)
    SPATE_FAILED_STREAM  = aws_kinesis_firehose_delivery_stream.failed.name
    AWS_REGION           = var.region
  })
}

resource "aws_ecs_task_definition" "ingest" {
  family                   = "${var.name}-ingest"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.ingest_cpu
  memory                   = var.ingest_memory
  execution_role_arn       = aws_iam_role.ingest_execution.arn
  task_role_arn            = aws_iam_role.ingest_task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.ingest_cpu_architecture
  }

  container_definitions = jsonencode([{
    name      = "ingest"
    image     = "${aws_ecr_repository.spate.repository_url}:${var.image_tag}"
    essential = true
    memory    = var.ingest_memory # the task's, so the container's cgroup shows it (spate sizes GOMEMLIMIT from it)
    # The image's ENTRYPOINT is ["/spate","ingest"]; no command.
    portMappings = [{ containerPort = local.ingest_port, protocol = "tcp", name = "http" }]
    environment  = [for k in sort(keys(local.ingest_environment)) : { name = k, value = local.ingest_environment[k] }]
    secrets = var.ingest_api_keys_secret_arn == "" ? [] : [
      { name = "SPATE_API_KEYS", valueFrom = var.ingest_api_keys_secret_arn },
    ]
    stopTimeout            = local.ingest_stop_timeout
    readonlyRootFilesystem = true
    # Thousands of client connections per task.
    ulimits = [{ name = "nofile", softLimit = 65536, hardLimit = 65536 }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.ingest.name
        awslogs-region        = var.region
        awslogs-stream-prefix = "ingest"
        # A slow CloudWatch Logs must never block request handling.
        mode              = "non-blocking"
        "max-buffer-size" = "25m"
      }
    }
  }])
}

resource "aws_ecs_service" "ingest" {
  name            = "${var.name}-ingest"
  cluster         = aws_ecs_cluster.spate.id
  task_definition = aws_ecs_task_definition.ingest.arn
  launch_type     = "FARGATE"
  desired_count   = var.ingest_min_tasks

  # Never fewer healthy tasks than asked for during a deploy.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = 30
  propagate_tags                     = "SERVICE"

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.ingest_tasks.id]
    assign_public_ip = var.assign_public_ip
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.ingest.arn
    container_name   = "ingest"
    container_port   = local.ingest_port
  }

  lifecycle {
    # Autoscaling (target tracking and the scheduled actions) owns the
    # running count; an apply must not reset it mid-peak.
    ignore_changes = [desired_count]
  }

  # The target group must be reachable through a listener rule before ECS
  # registers tasks in it.
  depends_on = [aws_lb_listener_rule.events_api, aws_iam_role_policy.ingest_task]
}
