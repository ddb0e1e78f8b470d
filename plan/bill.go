package plan

import (
	"errors"
	"math"
)

// Architectures (Settings.Arch).
const (
	ArchARM64 = "arm64"
	ArchX86   = "x86_64"
)

// ALBActiveConnections is the ALB LCU's active-connections dimension: one
// LCU per 3,000 connections open in a minute.
const ALBActiveConnections = 3000

// BillSettings describe what the whole bill prices beyond the capacity
// plan: the deployment terraform/ makes (its defaults) and the volumes the
// code emits (measured where it could be; docs/capacity.md says which).
type BillSettings struct {
	// AvailabilityZones the tasks and the interface endpoints span (one
	// endpoint network interface per AZ; terraform/example.tfvars has 3).
	AvailabilityZones int // 3
	// VPCEndpoints: terraform's vpc_endpoints (default on) gives the
	// tasks interface endpoints for InterfaceEndpoints services and an S3
	// gateway endpoint (free); off, their AWS traffic goes through one
	// NAT gateway per AZ.
	VPCEndpoints bool // true
	// InterfaceEndpoints: kinesis-streams, sqs, ecr.api, ecr.dkr, logs,
	// sts; secretsmanager is one more with WriteKeys.
	InterfaceEndpoints int // 6
	// WAF: terraform attaches a web ACL (waf_enabled, default on) with
	// WAFRules rules (rate, body size, two managed groups).
	WAF      bool // true
	WAFRules int  // 4
	// ClientRequestsPerMinute is one client's (player's) request rate; a
	// client keeps a connection to the ALB open, so open connections are
	// requests/min ÷ this (the ALB's active-connections LCU dimension).
	ClientRequestsPerMinute float64 // DefaultRequestsPerViewerMinute (2)
	// ResponseBytes is what the ALB returns per request, to the internet:
	// spate's 202 measured at 143 bytes (114 of HTTP/1.1 headers, 29 of
	// JSON), plus the ALB's Connection header and TLS record framing.
	ResponseBytes int // 190
	// IngestLogBytesPerRequest is what `spate ingest` logs per request at
	// INFO: measured 0 (it logs at start, on shutdown and on failures).
	IngestLogBytesPerRequest float64 // 0
	// LambdaLogBytesPerInvocation is Lambda's platform lines per
	// invocation (start and report, JSON format, with CloudWatch's 26
	// bytes of per-event overhead); the handlers log nothing per
	// successful invocation at INFO.
	LambdaLogBytesPerInvocation float64 // 480
	LogRetentionDays            int     // 30, terraform's log_retention_days
	// ALB access logs (terraform: on, to a logs bucket with a lifecycle
	// rule): gzipped bytes stored per request and their retention.
	ALBAccessLogs         bool    // true
	ALBLogBytesPerRequest float64 // 45 (about 450 B a line, gzip ~10×)
	ALBLogRetentionDays   int     // 30, terraform's alb_access_log_retention_days
	// The lake: Parquet bytes per event (measured: `make bench`, lake),
	// the Firehose buffer (terraform) and lifecycle (30 days to
	// Intelligent-Tiering; no expiration by default).
	ParquetBytesPerEvent float64 // 37
	FirehoseBufferMiB    int     // 128
	FirehoseIntervalSec  int     // 300
	LakeTieringDays      int     // 30
	LakeExpirationDays   int     // 0: kept
	// FailedEventShare is the share of events that land as JSON under the
	// lake's errors/ (Firehose conversion), failed/ and
	// dead-letter/ prefixes, kept lake_error_expiration_days (30).
	FailedEventShare float64 // 0.0001
	// Metrics: Container Insights on the cluster (terraform enables it),
	// enhanced shard-level metrics on the events stream (4 per shard), the
	// router mapping's event-count metrics.
	ContainerInsightsMetrics int // 24
	ShardLevelMetrics        int // 4
	ESMMetrics               int // 7
	// EMFMetrics are spate's own Lambda metrics (namespace spate, logged in
	// the Embedded Metric Format): DeadLettersWithoutPayload for the router
	// and reward.
	EMFMetrics int // 2
	Dashboards int // 1
	// WriteKeys: ingest reads its write keys from a Secrets Manager secret
	// (required by terraform unless allow_anonymous_ingest).
	WriteKeys bool // true
	// ImageGB is the ECR repository's images (50 kept, ~20 MB each).
	ImageGB float64 // 1
	// ScheduledPrescale: terraform's prescale task (off by default): a
	// 0.25 vCPU / 0.5 GB task for about a minute every
	// PrescaleIntervalMinutes.
	ScheduledPrescale       bool // false
	PrescaleIntervalMinutes int  // 15
}

// DefaultBillSettings returns terraform's defaults and the measured
// volumes.
func DefaultBillSettings() BillSettings {
	return BillSettings{
		AvailabilityZones:           3,
		VPCEndpoints:                true,
		InterfaceEndpoints:          6,
		WAF:                         true,
		WAFRules:                    4,
		ClientRequestsPerMinute:     DefaultRequestsPerViewerMinute,
		ResponseBytes:               190,
		IngestLogBytesPerRequest:    0,
		LambdaLogBytesPerInvocation: 480,
		LogRetentionDays:            30,
		ALBAccessLogs:               true,
		ALBLogBytesPerRequest:       45,
		ALBLogRetentionDays:         30,
		ParquetBytesPerEvent:        37,
		FirehoseBufferMiB:           128,
		FirehoseIntervalSec:         300,
		LakeTieringDays:             30,
		LakeExpirationDays:          0,
		FailedEventShare:            0.0001,
		ContainerInsightsMetrics:    24,
		ShardLevelMetrics:           4,
		ESMMetrics:                  7,
		EMFMetrics:                  2,
		Dashboards:                  1,
		WriteKeys:                   true,
		ImageGB:                     1,
		PrescaleIntervalMinutes:     15,
	}
}

func (b BillSettings) validate() error {
	switch {
	case b.AvailabilityZones < 1:
		return errors.New("plan settings: availability zones must be at least 1")
	case b.InterfaceEndpoints < 0 || b.WAFRules < 0 || b.ResponseBytes < 0 || b.ContainerInsightsMetrics < 0 ||
		b.ShardLevelMetrics < 0 || b.ESMMetrics < 0 || b.EMFMetrics < 0 || b.Dashboards < 0 || b.LakeExpirationDays < 0:
		return errors.New("plan settings: bill counts must not be negative")
	case !(b.ClientRequestsPerMinute > 0):
		return errors.New("plan settings: client requests per minute must be positive")
	case b.FailedEventShare < 0 || b.FailedEventShare > 1:
		return errors.New("plan settings: failed event share must be in [0, 1]")
	case b.IngestLogBytesPerRequest < 0 || b.LambdaLogBytesPerInvocation < 0 || b.ALBLogBytesPerRequest < 0 || b.ParquetBytesPerEvent < 0 || b.ImageGB < 0:
		return errors.New("plan settings: bill volumes must not be negative")
	case b.FirehoseBufferMiB < 1 || b.FirehoseIntervalSec < 0 || b.LogRetentionDays < 1 || b.ALBLogRetentionDays < 1 || b.LakeTieringDays < 0 || b.PrescaleIntervalMinutes < 1:
		return errors.New("plan settings: buffer, interval, retention and tiering must be positive")
	}
	return nil
}

// AlarmMetrics is the metrics terraform/ alarms on (standard resolution
// alarms are billed per metric): per event type six Firehose alarms; fixed
// ones for the stream (two more when provisioned), the three Lambdas, the
// five queues, the ALB's two rate alarms (3 and 2 metrics), the ingest
// service, and the router's and reward's dead letters without payload
// (dead_letters.tf). internal/tfcheck checks it against the terraform.
func AlarmMetrics(types int, provisioned bool) int {
	n := 1 + 3 + 3 + 1 + 5 + 3 + 2 + 1 + 1 + 2 + 6*types
	if provisioned {
		n += 2
	}
	return n
}

// lakeStorage is the lake's S3 storage cost in month m (1 = the first),
// each month adding the same events: cohorts are in S3 Standard until the
// lifecycle moves them to Intelligent-Tiering, whose frequent tier costs
// the same, infrequent after 30 days unread, archive instant after 90.
func (s Settings) lakeStorage(monthEvents float64, m int) float64 {
	b, pr := s.Bill, s.Prices
	gb := monthEvents * b.ParquetBytesPerEvent / gib
	objects := s.lakeObjectsPerMonth(monthEvents)
	total := 0.0
	for k := 1; k <= m; k++ {
		age := (float64(m-k) + 0.5) * 30.4 // days, at mid-month
		if b.LakeExpirationDays > 0 && age > float64(b.LakeExpirationDays) {
			continue
		}
		if k == m {
			// The current month's cohort is there half the month on average.
			total += gb / 2 * pr.S3StandardGB
			continue
		}
		inIT := age - float64(b.LakeTieringDays)
		switch {
		case inIT < 30:
			total += gb * pr.S3StandardGB
		case inIT < 90:
			total += gb * pr.S3ITInfrequentGB
		default:
			total += gb * pr.S3ITArchiveGB
		}
		if inIT >= 0 {
			total += objects / 1000 * pr.S3ITMonitor1000
		}
	}
	if m > 1 {
		// Each month's cohort is transitioned once.
		total += objects / 1000 * pr.S3Transition1000
	}
	return total
}

// lakeObjectsPerMonth is the Parquet files Firehose writes: per type
// stream, one when its buffer fills or its interval passes, whichever is
// first, plus one per hour boundary (the dt/hour prefix changes).
func (s Settings) lakeObjectsPerMonth(monthEvents float64) float64 {
	b := s.Bill
	secs := float64(HoursPerMonth) * 3600
	eps := monthEvents / secs
	total := 0.0
	for _, f := range s.firehoseStreams(eps, 0) {
		bps := f.EventsPerSecond * float64(s.EventBytes+1)
		every := float64(b.FirehoseIntervalSec)
		if bps > 0 {
			every = math.Min(every, float64(b.FirehoseBufferMiB<<20)/bps)
		}
		every = math.Max(every, 1)
		total += secs/every + HoursPerMonth
	}
	return total
}

// billLines adds everything beyond the capacity lines.
func (s Settings) billLines(p *Plan, add func(service, item string, usd float64, assumption string, args ...any), u, ux usage, requests, events, avgShards, avgTasks float64) {
	b, pr := s.Bill, s.Prices
	month := float64(HoursPerMonth)
	line := func(k string) float64 { return u[k] + ux[k] }

	if b.WAF {
		add("WAF", "web ACL and rules", pr.WAFACLMonth+float64(b.WAFRules)*pr.WAFRuleMonth, "one web ACL, %d rules (per-IP rate, body size, IP reputation, known bad inputs)", b.WAFRules)
		add("WAF", "requests", line(lWAFReq), "every request inspected: %s requests", num(requests))
	}
	if b.VPCEndpoints {
		n := b.InterfaceEndpoints
		if b.WriteKeys {
			n++ // secretsmanager, for the write keys at task start
		}
		if b.ScheduledPrescale {
			n++ // application-autoscaling, for prescale's scheduled actions
		}
		add("Network", "VPC endpoint hours", float64(n*b.AvailabilityZones)*month*pr.EndpointAZHour, "%d interface endpoints × %d AZs (the S3 gateway endpoint is free)", n, b.AvailabilityZones)
		add("Network", "VPC endpoint data", line(lNetData), "Kinesis records through the kinesis-streams endpoint (same-AZ: no cross-AZ charge)")
	} else {
		add("Network", "NAT gateway hours", float64(b.AvailabilityZones)*month*pr.NATHour, "one NAT gateway per AZ × %d", b.AvailabilityZones)
		add("Network", "NAT data processed", line(lNetData), "Kinesis records through NAT")
	}
	add("Network", "data out to the internet", line(lNetOut), "%d B of response per request; ALB↔task traffic across AZs is free", b.ResponseBytes)

	logsGB := line(lLogsIngest) / pr.LogsIngestGB
	add("CloudWatch", "logs ingestion", line(lLogsIngest), "ingest %g B/request at INFO (measured), Lambda %g B/invocation (platform lines), ~%.1f GB", b.IngestLogBytesPerRequest, b.LambdaLogBytesPerInvocation, logsGB)
	add("CloudWatch", "logs storage", logsGB*float64(b.LogRetentionDays)/30.4*pr.LogsStorageGB, "%d days retained (upper bound: billed compressed)", b.LogRetentionDays)
	types := len(p.Baseline.Firehose)
	alarms := AlarmMetrics(types, s.KinesisMode == Provisioned)
	add("CloudWatch", "alarms", float64(alarms)*pr.AlarmMetricMonth, "%d alarm metrics in terraform/ (%d types); free tier not counted", alarms, types)
	add("CloudWatch", "dashboard", float64(b.Dashboards)*pr.DashboardMonth, "%d dashboard", b.Dashboards)
	metrics := float64(b.ContainerInsightsMetrics + b.ESMMetrics + b.EMFMetrics)
	if s.KinesisMode == Provisioned {
		metrics += float64(b.ShardLevelMetrics) * avgShards
	}
	add("CloudWatch", "metrics", metrics*pr.MetricMonth, "Container Insights ~%d, router mapping %d, spate's EMF %d, shard-level %d × %.1f shards on average; ingest's Prometheus metrics are not sent to CloudWatch", b.ContainerInsightsMetrics, b.ESMMetrics, b.EMFMetrics, b.ShardLevelMetrics, avgShards)

	objects := s.lakeObjectsPerMonth(events)
	add("S3", "lake storage (month 1)", s.lakeStorage(events, 1), "%.0f B of Parquet per event, %.0f GB a month; month 12: $%.2f", b.ParquetBytesPerEvent, events*b.ParquetBytesPerEvent/gib, s.lakeStorage(events, 12))
	add("S3", "lake PUTs", objects/1000*pr.S3Put1000, "%s Parquet files (per stream: a %d MiB buffer or %d s)", num(objects), b.FirehoseBufferMiB, b.FirehoseIntervalSec)
	add("S3", "failed-events and dead-letter prefixes", events*b.FailedEventShare*float64(s.EventBytes+200)/gib*pr.S3StandardGB,
		"%g %% of events as JSON (with their reason) under errors/ and dead-letter/ (30 days) and failed/ (kept as the lake; priced at 30 days)", b.FailedEventShare*100)
	if b.ALBAccessLogs {
		add("S3", "ALB access logs", line(lALBLogs)+float64(b.AvailabilityZones)*12*month/1000*pr.S3Put1000, "%g B gzipped per request, kept %d days; a file per ALB node every 5 min", b.ALBLogBytesPerRequest, b.ALBLogRetentionDays)
	}

	// KMS: Kinesis and SQS reuse data keys (Kinesis about every 5 minutes
	// per producer and shard, assumed; SQS kms_data_key_reuse_period 1 h);
	// the lake bucket uses an S3 bucket key; Firehose's own buffer an AWS
	// owned key (free).
	kmsCalls := (avgTasks + float64(s.StreamConsumers)) * avgShards * 12 * month
	kmsCalls += 5 * 2 * month // queues × (send + receive) principals per hour
	kmsCalls = math.Max(0, kmsCalls-20000)
	add("KMS", "customer managed key", pr.KMSKeyMonth, "one key (rotation adds $1 a year for two years)")
	add("KMS", "requests", kmsCalls/1e4*pr.KMSRequests10k, "data keys reused: Kinesis ~5 min per producer or consumer and shard, SQS 1 h, S3 bucket key; 20,000 free")
	add("Glue", "Data Catalog", 0, "1 database + %d tables and their versions, Firehose's schema reads: within the free million objects and requests", types)
	if b.WriteKeys {
		add("Secrets Manager", "write keys secret", pr.SecretMonth, "one secret, read at task start")
	}
	add("ECR", "image storage", b.ImageGB*pr.ECRStorageGB, "%g GB of images (50 kept)", b.ImageGB)
	if b.ScheduledPrescale {
		runs := month * 60 / float64(b.PrescaleIntervalMinutes)
		perRun := (0.25*s.Prices.FargateARMVCPUHour + 0.5*s.Prices.FargateARMGBHour) / 60
		if s.Arch == ArchX86 {
			perRun = (0.25*s.Prices.FargateVCPUHour + 0.5*s.Prices.FargateGBHour) / 60
		}
		add("Fargate", "scheduled prescale task", runs*perRun, "%.0f runs of ~1 min (Fargate's minimum) at 0.25 vCPU, 0.5 GB", runs)
		add("EventBridge Scheduler", "invocations", 0, "%.0f a month, within the free 14 million", runs)
	}
}

// TerraformKinds are the resource kinds terraform/ may use, each with the
// bill line that prices it; FreeKinds those AWS does not bill (with why).
// internal/tfcheck fails when terraform uses a kind in neither.
func TerraformKinds() (priced, free map[string]string) {
	priced = map[string]string{
		"aws_ecs_service":                      "Fargate: ingest tasks",
		"aws_ecs_task_definition":              "Fargate: ingest tasks, scheduled prescale task",
		"aws_kinesis_stream":                   "Kinesis: shard-hours, PUT payload units, aggregates stream",
		"aws_kinesis_firehose_delivery_stream": "Firehose: ingestion, Parquet conversion",
		"aws_lambda_function":                  "Lambda: requests, duration",
		"aws_lambda_event_source_mapping":      "Lambda: requests; CloudWatch: metrics (mapping metrics)",
		"aws_lb":                               "ALB: hours, LCU-hours; Network: data out",
		"aws_wafv2_web_acl":                    "WAF: web ACL and rules, requests",
		"aws_sqs_queue":                        "SQS: dead-letter queue in outages, redrive polling",
		"aws_vpc_endpoint":                     "Network: VPC endpoint hours, data",
		"aws_cloudwatch_log_group":             "CloudWatch: logs ingestion, storage",
		"aws_cloudwatch_metric_alarm":          "CloudWatch: alarms",
		"aws_cloudwatch_dashboard":             "CloudWatch: dashboard",
		"aws_ecs_cluster":                      "CloudWatch: metrics (Container Insights)",
		"aws_s3_bucket":                        "S3: lake storage, lake PUTs, ALB access logs",
		"aws_kms_key":                          "KMS: customer managed key, requests",
		"aws_glue_catalog_database":            "Glue: Data Catalog",
		"aws_glue_catalog_table":               "Glue: Data Catalog",
		"aws_ecr_repository":                   "ECR: image storage",
		"aws_scheduler_schedule":               "EventBridge Scheduler: invocations",
		"aws_secretsmanager_secret":            "Secrets Manager: write keys secret",
		"aws_s3_object":                        "S3: lake storage (objects are billed as storage)",
		"aws_cloudwatch_log_stream":            "CloudWatch: logs ingestion (the group's)",
	}
	free = map[string]string{
		"aws_kms_alias":                                      "no charge",
		"aws_ecs_cluster_capacity_providers":                 "configuration",
		"aws_ecr_lifecycle_policy":                           "configuration",
		"aws_iam_role":                                       "IAM is free",
		"aws_iam_role_policy":                                "IAM is free",
		"aws_iam_policy":                                     "IAM is free",
		"aws_iam_role_policy_attachment":                     "IAM is free",
		"aws_security_group":                                 "free",
		"aws_vpc_security_group_ingress_rule":                "free",
		"aws_vpc_security_group_egress_rule":                 "free",
		"aws_lb_target_group":                                "part of the ALB",
		"aws_lb_listener":                                    "part of the ALB",
		"aws_lb_listener_rule":                               "part of the ALB (rule evaluations: first 10 free)",
		"aws_route53_record":                                 "alias queries to an ALB are free; the hosted zone is the user's",
		"aws_appautoscaling_target":                          "free",
		"aws_appautoscaling_policy":                          "free (its alarms are AWS-managed)",
		"aws_appautoscaling_scheduled_action":                "free",
		"aws_s3_bucket_ownership_controls":                   "configuration",
		"aws_s3_bucket_public_access_block":                  "configuration",
		"aws_s3_bucket_server_side_encryption_configuration": "configuration (KMS requests are priced)",
		"aws_s3_bucket_lifecycle_configuration":              "configuration (transitions are priced with the lake)",
		"aws_s3_bucket_policy":                               "configuration",
		"aws_s3_bucket_versioning":                           "configuration (noncurrent versions expire within the erasure deadline)",
		"aws_sqs_queue_policy":                               "configuration",
		"aws_wafv2_web_acl_association":                      "part of the web ACL",
		"aws_wafv2_regex_pattern_set":                        "part of the web ACL",
		"aws_vpc_endpoint_policy":                            "part of the endpoint",
		"aws_cloudwatch_event_rule":                          "EventBridge rules on AWS service events and schedules are free",
		"aws_cloudwatch_event_target":                        "part of the rule (the target's own service is priced)",
		"aws_lambda_permission":                              "IAM-like resource policy, free",
		"aws_s3_bucket_notification":                         "configuration (the notified service is priced)",
		"aws_sqs_queue_redrive_policy":                       "configuration",
		"aws_sqs_queue_redrive_allow_policy":                 "configuration",
		"aws_cloudwatch_log_subscription_filter":             "free (the destination is priced)",
	}
	return priced, free
}
