# Secure-by-default switches (docs/deploy.md, "Secure by default"). Each
# default is what internal/tfcheck asserts.

variable "allow_anonymous_ingest" {
  description = "Accept events without a write key. Off: ingest_api_keys_secret_arn is required. Write keys identify (and let you revoke or rate-limit) an app; they are not secrets (docs/deploy.md)."
  type        = bool
  default     = false
}

variable "ingest_api_keys_kms_key_arn" {
  description = "Customer managed KMS key the write-keys secret is encrypted with, if any: the execution role gets kms:Decrypt on it (through Secrets Manager only). Empty: the secret uses aws/secretsmanager."
  type        = string
  default     = ""
}

variable "vpc_endpoints" {
  description = "Interface VPC endpoints (Kinesis, SQS, ECR api and dkr, CloudWatch Logs, STS) and an S3 gateway endpoint for the tasks, with their egress narrowed to them. Off: the tasks need a NAT gateway (priced by `spate plan --vpc-endpoints=false`)."
  type        = bool
  default     = true
}

variable "private_route_table_ids" {
  description = "Route tables of private_subnet_ids, for the S3 gateway endpoint (required with vpc_endpoints)."
  type        = list(string)
  default     = []

  validation {
    condition     = !var.vpc_endpoints || length(var.private_route_table_ids) > 0
    error_message = "private_route_table_ids: the S3 gateway endpoint needs the private subnets' route tables (or set vpc_endpoints = false)."
  }
}

variable "waf_enabled" {
  description = "Attach a WAFv2 web ACL to the ALB: per-IP rate limit, body-size limit, AWS IP reputation and known-bad-inputs rule groups."
  type        = bool
  default     = true
}

variable "waf_rate_limit_per_5min" {
  description = "Requests one client IP may send in 5 minutes before WAF blocks it. A player sends about 10 (2 a minute); carrier-grade NAT puts hundreds of players behind one mobile IP, so the default allows 300 of them (docs/deploy.md)."
  type        = number
  default     = 3000

  validation {
    condition     = var.waf_rate_limit_per_5min >= 10 && var.waf_rate_limit_per_5min <= 2000000000
    error_message = "waf_rate_limit_per_5min: 10 to 2,000,000,000 (WAF's limits)."
  }
}

variable "ingest_max_body_bytes" {
  description = "SPATE_MAX_BODY_BYTES of ingest (largest body after decompression); WAF blocks Content-Length values with more digits than this (it sees only 8 KB of an ALB request's body, so ingest enforces the exact limit)."
  type        = number
  default     = 1048576
}

variable "alb_access_logs" {
  description = "ALB access logs to a logs bucket with a lifecycle rule."
  type        = bool
  default     = true
}

variable "alb_access_log_retention_days" {
  description = "Days ALB access logs are kept (they hold client IPs and user agents: keep them short)."
  type        = number
  default     = 30
}

variable "erasure_deadline_days" {
  description = "Days within which an erasure request must be complete (GDPR: one month). Lake versions left behind by `spate lake forget` expire within it."
  type        = number
  default     = 30
}

variable "lake_noncurrent_version_days" {
  description = "Days a replaced or deleted lake object version is kept (recovery from a mistaken delete). Must not exceed erasure_deadline_days: erasure wins."
  type        = number
  default     = 7

  validation {
    condition     = var.lake_noncurrent_version_days >= 1 && var.lake_noncurrent_version_days <= var.erasure_deadline_days
    error_message = "lake_noncurrent_version_days: 1 to erasure_deadline_days (noncurrent versions of erased events must be gone by the erasure deadline)."
  }
}

variable "allow_insecure_reward_endpoints" {
  description = "Accept http:// reward endpoint URLs (tests only). Off: https only."
  type        = bool
  default     = false
}
