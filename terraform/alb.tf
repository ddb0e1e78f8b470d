# Internet-facing ALB: HTTPS only, the event API forwarded to the ingest
# tasks, everything else (notably /metrics) answered 404 at the edge.

resource "aws_security_group" "alb" {
  name        = "${var.name}-ingest-alb"
  description = "spate ingest load balancer"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  for_each          = toset(var.ingress_cidrs)
  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from clients"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "alb_to_ingest" {
  security_group_id            = aws_security_group.alb.id
  description                  = "to the ingest tasks"
  referenced_security_group_id = aws_security_group.ingest_tasks.id
  ip_protocol                  = "tcp"
  from_port                    = local.ingest_port
  to_port                      = local.ingest_port
}

resource "aws_lb" "ingest" {
  # The bucket policy must let ELB write before the ALB tests delivery.
  depends_on = [aws_s3_bucket_policy.logs]

  name                       = "${var.name}-ingest"
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = var.public_subnet_ids
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  enable_http2               = true
  # Players keep connections open between beacons.
  idle_timeout = 60

  dynamic "access_logs" {
    for_each = var.alb_access_logs ? [aws_s3_bucket.logs[0].id] : []
    content {
      bucket  = access_logs.value
      prefix  = local.alb_log_prefix
      enabled = true
    }
  }

  # The ALB scales by itself, but not within the 30 s of a spike; reserve
  # capacity ahead of known peaks (and release it after: it is billed).
  dynamic "minimum_load_balancer_capacity" {
    for_each = var.alb_capacity_units > 0 ? [var.alb_capacity_units] : []
    content {
      capacity_units = minimum_load_balancer_capacity.value
    }
  }
}

resource "aws_lb_target_group" "ingest" {
  name        = "${var.name}-ingest"
  port        = local.ingest_port
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = var.vpc_id

  # The ALB stops sending new requests to a deregistering task at once and
  # lets in-flight ones finish for this long; then ECS sends SIGTERM and
  # ingest drains its buffers within SPATE_DRAIN_TIMEOUT < stopTimeout.
  deregistration_delay = var.ingest_deregistration_delay_seconds

  # New tasks take their share gradually instead of a cold flood.
  slow_start = 30

  health_check {
    path                = "/healthz"
    matcher             = "200"
    protocol            = "HTTP"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.ingest.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type = "fixed-response"
    fixed_response {
      content_type = "application/json"
      message_body = "{\"error\":\"not found\"}"
      status_code  = "404"
    }
  }
}

resource "aws_lb_listener_rule" "events_api" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 10

  condition {
    path_pattern {
      values = ["/v1/*"]
    }
  }

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.ingest.arn
  }
}

resource "aws_route53_record" "ingest" {
  count   = var.route53_zone_id != "" && var.domain_name != "" ? 1 : 0
  zone_id = var.route53_zone_id
  name    = var.domain_name
  type    = "A"

  alias {
    name                   = aws_lb.ingest.dns_name
    zone_id                = aws_lb.ingest.zone_id
    evaluate_target_health = true
  }
}
