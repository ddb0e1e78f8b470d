# VPC endpoints for what the tasks call (on by default): interface
# endpoints for Kinesis, SQS, ECR (api and dkr), CloudWatch Logs, STS,
# Secrets Manager (with write keys) and Application Auto Scaling (with the
# scheduled prescale), and an S3 gateway endpoint (ECR's image layers and the prescale
# schedule). Without them the tasks' AWS traffic goes through NAT at
# $0.045/GB, the largest line of the bill at broadcast volume
# (docs/capacity.md). With them the tasks' egress is narrowed to the
# endpoints' security group and the S3 prefix list.

locals {
  account_id = split(":", aws_kms_key.data.arn)[4]
  partition  = split(":", aws_kms_key.data.arn)[1]

  # Each endpoint's policy: only spate's resources.
  endpoint_policies = {
    "kinesis-streams" = [{
      Action = ["kinesis:PutRecords", "kinesis:PutRecord", "kinesis:DescribeStreamSummary", "kinesis:ListShards",
      "kinesis:UpdateShardCount", "kinesis:UpdateStreamWarmThroughput"]
      Resource = [aws_kinesis_stream.events.arn]
    }]
    sqs = [{
      Action = ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
      Resource = [aws_sqs_queue.ingest_dlq.arn]
    }]
    "ecr.api" = [
      { Action = ["ecr:GetAuthorizationToken"], Resource = ["*"] },
      { Action = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"], Resource = [aws_ecr_repository.spate.arn] },
    ]
    "ecr.dkr" = [
      { Action = ["ecr:GetAuthorizationToken"], Resource = ["*"] },
      { Action = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"], Resource = [aws_ecr_repository.spate.arn] },
    ]
    logs = [{
      Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
      Resource = ["${aws_cloudwatch_log_group.ingest.arn}:*"]
    }]
    sts = [{
      Action   = ["sts:AssumeRole"]
      Resource = ["arn:${local.partition}:iam::${local.account_id}:role/${var.name}-*"]
    }]
    # ECS reads the write keys at task start with the execution role;
    # only when there is a secret.
    secretsmanager = [{
      Action   = ["secretsmanager:GetSecretValue"]
      Resource = compact([var.ingest_api_keys_secret_arn])
    }]
    # The scheduled prescale task's scheduled actions; only with it.
    "application-autoscaling" = [
      { Action = ["application-autoscaling:PutScheduledAction", "application-autoscaling:DeleteScheduledAction"], Resource = [aws_appautoscaling_target.ingest.arn] },
      { Action = ["application-autoscaling:DescribeScheduledActions"], Resource = ["*"] },
    ]
  }
  interface_endpoints = {
    for k, v in local.endpoint_policies : k => v
    if(k != "secretsmanager" || var.ingest_api_keys_secret_arn != "") && (k != "application-autoscaling" || local.prescale_enabled)
  }
}

resource "aws_security_group" "endpoints" {
  count       = var.vpc_endpoints ? 1 : 0
  name        = "${var.name}-endpoints"
  description = "spate VPC interface endpoints: HTTPS from the spate tasks"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_from_tasks" {
  for_each = var.vpc_endpoints ? merge(
    { ingest = aws_security_group.ingest_tasks.id },
    local.prescale_enabled ? { prescale = aws_security_group.prescale[0].id } : {},
    local.lake_maintenance ? { lake_maintenance = aws_security_group.lake_maintenance[0].id } : {},
  ) : {}
  security_group_id            = aws_security_group.endpoints[0].id
  description                  = "HTTPS from the ${each.key} tasks"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}

resource "aws_vpc_endpoint" "interface" {
  for_each            = var.vpc_endpoints ? local.interface_endpoints : {}
  vpc_id              = var.vpc_id
  service_name        = "com.amazonaws.${var.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = var.private_subnet_ids
  security_group_ids  = [aws_security_group.endpoints[0].id]
  private_dns_enabled = true

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [for s in each.value : {
      Effect    = "Allow"
      Principal = "*"
      Action    = s.Action
      Resource  = s.Resource
      Condition = { StringEquals = { "aws:PrincipalAccount" = local.account_id } }
    }]
  })
}

resource "aws_vpc_endpoint" "s3" {
  count             = var.vpc_endpoints ? 1 : 0
  vpc_id            = var.vpc_id
  service_name      = "com.amazonaws.${var.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = var.private_route_table_ids

  # ECR keeps image layers in its own regional bucket; prescale reads its
  # schedule; lake maintenance (lake_maintenance.tf) rewrites the lake.
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([{
      Effect    = "Allow"
      Principal = "*"
      Action    = ["s3:GetObject"]
      Resource = concat(["arn:${local.partition}:s3:::prod-${var.region}-starport-layer-bucket/*"],
      local.prescale_enabled ? ["arn:${local.partition}:s3:::${local.prescale_object}"] : [])
      }], local.lake_maintenance ? [{
      Effect    = "Allow"
      Principal = "*"
      Action = ["s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketVersioning", "s3:GetObject", "s3:GetObjectVersion",
      "s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:AbortMultipartUpload"]
      Resource = [aws_s3_bucket.lake.arn, "${aws_s3_bucket.lake.arn}/*"]
    }] : [])
  })
}

# Egress of the tasks: to the endpoints and S3 when they exist, else
# anywhere on 443 (through NAT).
locals {
  task_security_groups = merge(
    { ingest = aws_security_group.ingest_tasks.id },
    local.prescale_enabled ? { prescale = aws_security_group.prescale[0].id } : {},
    local.lake_maintenance ? { lake_maintenance = aws_security_group.lake_maintenance[0].id } : {},
  )
}

resource "aws_vpc_security_group_egress_rule" "tasks_to_endpoints" {
  for_each                     = var.vpc_endpoints ? local.task_security_groups : {}
  security_group_id            = each.value
  description                  = "AWS APIs over HTTPS through the VPC interface endpoints"
  referenced_security_group_id = aws_security_group.endpoints[0].id
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}

resource "aws_vpc_security_group_egress_rule" "tasks_to_s3" {
  for_each          = var.vpc_endpoints ? local.task_security_groups : {}
  security_group_id = each.value
  description       = "S3 (ECR image layers, the prescale schedule) through the gateway endpoint"
  prefix_list_id    = aws_vpc_endpoint.s3[0].prefix_list_id
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "tasks_https_anywhere" {
  for_each          = var.vpc_endpoints ? {} : local.task_security_groups
  security_group_id = each.value
  description       = "AWS APIs over HTTPS through NAT (vpc_endpoints = false)"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}
