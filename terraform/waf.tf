# WAFv2 on the ALB (waf_enabled, default on). Only rules that cannot block
# a valid beacon: a per-IP rate limit sized for players behind carrier NAT,
# a Content-Length bound from ingest's body limit, and two AWS managed
# groups that match attack traffic only (known malicious IPs; exploit
# payloads such as Log4j's JNDI lookups). Left out on purpose: the Core
# rule set (its 8 KB body-size and XSS-in-body rules block legitimate
# batches and free-text attributes), the anonymous-IP list (VPN and
# hosting users are viewers too) and Bot Control (challenges a beacon
# cannot answer). docs/deploy.md has the reasoning; `spate plan` prices it.

resource "aws_wafv2_web_acl" "ingest" {
  count       = var.waf_enabled ? 1 : 0
  name        = "${var.name}-ingest"
  description = "spate ingest: per-IP rate, body size, IP reputation, known bad inputs"
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  rule {
    name     = "per-ip-rate"
    priority = 10
    action {
      block {}
    }
    statement {
      rate_based_statement {
        limit                 = var.waf_rate_limit_per_5min
        evaluation_window_sec = 300
        aggregate_key_type    = "IP"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-per-ip-rate"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "body-size"
    priority = 20
    action {
      block {}
    }
    # WAF reads at most 8 KB of an ALB request's body, so the bound is on
    # the Content-Length value: more digits than ingest_max_body_bytes has
    # is certainly over it. ingest answers 413 for the rest.
    statement {
      size_constraint_statement {
        comparison_operator = "GT"
        size                = length(tostring(var.ingest_max_body_bytes))
        field_to_match {
          single_header {
            name = "content-length"
          }
        }
        text_transformation {
          priority = 0
          type     = "NONE"
        }
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-body-size"
      sampled_requests_enabled   = true
    }
  }

  dynamic "rule" {
    for_each = { "AWSManagedRulesAmazonIpReputationList" = 30, "AWSManagedRulesKnownBadInputsRuleSet" = 40 }
    content {
      name     = rule.key
      priority = rule.value
      override_action {
        none {}
      }
      statement {
        managed_rule_group_statement {
          vendor_name = "AWS"
          name        = rule.key
        }
      }
      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = "${var.name}-${rule.key}"
        sampled_requests_enabled   = true
      }
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${var.name}-ingest"
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_association" "ingest" {
  count        = var.waf_enabled ? 1 : 0
  resource_arn = aws_lb.ingest.arn
  web_acl_arn  = aws_wafv2_web_acl.ingest[0].arn
}
