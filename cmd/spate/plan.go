package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/spate-dev/spate/plan"
)

// planOptions are the flags `spate plan` and `spate prescale` share: the
// schedule and every setting of the plan, with documented defaults.
type planOptions struct {
	schedule  string
	perViewer float64
	region    string
	mode      string
	typeMix   string
	prefix    string
	s         plan.Settings
	quota     map[string]*float64
	price     map[string]*float64
	// newS3 makes the client an s3:// schedule is read with; nil: the
	// SDK's standard configuration.
	newS3 func(context.Context) (s3Getter, error)
}

// extraPriceNames are the prices with a flag named after their JSON name
// (price-<name with dashes>); the first fourteen have their own names.
var extraPriceNames = []string{
	"fargate_arm_vcpu_hour", "fargate_arm_gb_hour", "lambda_arm_gb_second",
	"vpc_endpoint_az_hour", "vpc_endpoint_gb", "nat_gateway_hour", "nat_gateway_gb", "data_transfer_out_gb",
	"cloudwatch_logs_ingest_gb", "cloudwatch_logs_storage_gb_month", "cloudwatch_alarm_metric_month", "cloudwatch_metric_month", "cloudwatch_dashboard_month",
	"s3_standard_gb_month", "s3_it_infrequent_gb_month", "s3_it_archive_instant_gb_month", "s3_it_monitoring_1000_objects", "s3_put_1000", "s3_lifecycle_transition_1000",
	"kms_key_month", "kms_requests_10k", "waf_web_acl_month", "waf_rule_month", "waf_requests_million",
	"secrets_manager_secret_month", "ecr_storage_gb_month",
}

// unset marks a region-dependent flag left at the region's default.
const unset = -1

func addPlanFlags(fs *flag.FlagSet, getenv func(string) string) *planOptions {
	o := &planOptions{s: plan.DefaultSettings(""), quota: map[string]*float64{}, price: map[string]*float64{}}
	s := &o.s
	region := getenv("AWS_REGION")
	if region == "" {
		region = "us-east-1"
	}
	fs.StringVar(&o.schedule, "schedule", "", "broadcast schedule file or s3://bucket/key, CSV (start,end,title,peak_requests_per_minute; RFC 3339 times with offset) or JSON (required)")
	fs.Float64Var(&o.perViewer, "requests-per-viewer-minute", plan.DefaultRequestsPerViewerMinute, "requests a minute per concurrent viewer, for schedules giving concurrent_viewers")
	fs.StringVar(&o.region, "region", region, "AWS region: picks default quotas and prices (us-east-1 and eu-west-1 have price tables)")
	fs.Float64Var(&s.BaselineRequestsPerMinute, "baseline-rpm", s.BaselineRequestsPerMinute, "everyday peak requests/min: the capacity floor outside broadcasts")
	fs.Float64Var(&s.MeanRequestsPerMinute, "mean-rpm", s.MeanRequestsPerMinute, "everyday mean requests/min, for usage-billed costs (ignored with --events-per-day)")
	fs.Float64Var(&s.EventsPerDay, "events-per-day", s.EventsPerDay, "everyday mean as events a day (sets --mean-rpm = this ÷ 1440 ÷ --events-per-request); the plan prints the daily events either way")
	fs.StringVar(&s.Arch, "arch", s.Arch, "CPU architecture of the Fargate tasks and Lambdas: arm64 (terraform's) or x86_64")
	fs.IntVar(&s.AggregationTargetBytes, "aggregation-target-bytes", s.AggregationTargetBytes, "ingest's KPL aggregated record target (events per record derive from it when --events-per-record is 0)")
	fs.DurationVar(&s.BatchLinger, "batch-linger", s.BatchLinger, "ingest's SPATE_BATCH_LINGER: the plan warns when it keeps aggregated records below the derived events per record")
	fs.DurationVar(&s.RouterEventCost, "router-event-cost", s.RouterEventCost, "router CPU time per event at one vCPU")
	fs.IntVar(&s.AggregatorMemoryMB, "aggregator-memory-mb", s.AggregatorMemoryMB, "aggregator Lambda's memory")
	b := &s.Bill
	fs.IntVar(&b.AvailabilityZones, "azs", b.AvailabilityZones, "availability zones of the tasks and VPC endpoints")
	fs.BoolVar(&b.VPCEndpoints, "vpc-endpoints", b.VPCEndpoints, "interface VPC endpoints (terraform's vpc_endpoints); false: NAT gateways")
	fs.BoolVar(&b.WAF, "waf", b.WAF, "a WAF web ACL on the load balancer (terraform's waf_enabled)")
	fs.Float64Var(&b.ClientRequestsPerMinute, "client-requests-per-minute", b.ClientRequestsPerMinute, "requests a minute one client sends over its open connection (ALB active connections)")
	fs.IntVar(&b.ResponseBytes, "response-bytes", b.ResponseBytes, "bytes the load balancer returns per request (data out to the internet)")
	fs.Float64Var(&b.ParquetBytesPerEvent, "parquet-bytes-per-event", b.ParquetBytesPerEvent, "lake bytes per event (make bench, lake)")
	fs.IntVar(&b.LakeExpirationDays, "lake-expiration-days", b.LakeExpirationDays, "lake objects deleted after this many days (terraform's lake_expiration_days; 0 keeps them)")
	fs.BoolVar(&b.ALBAccessLogs, "alb-access-logs", b.ALBAccessLogs, "ALB access logs to S3 (terraform's alb_access_logs)")
	fs.BoolVar(&b.ScheduledPrescale, "scheduled-prescale", b.ScheduledPrescale, "terraform runs the scheduled prescale task (prescale_schedule_s3_uri set)")
	fs.Float64Var(&s.EventsPerRequest, "events-per-request", s.EventsPerRequest, "events per ingest request")
	fs.IntVar(&s.EventBytes, "event-bytes", s.EventBytes, "bytes of one event's JSON")
	fs.IntVar(&s.PartitionKeyBytes, "partition-key-bytes", s.PartitionKeyBytes, "bytes of a Kinesis partition key (count against shard throughput)")
	fs.IntVar(&s.EventsPerRecord, "events-per-record", s.EventsPerRecord, "events ingest packs into one Kinesis record (0: derived from --event-bytes and the 25 KiB aggregation target; 1: no packing; or ingest's measured average)")
	fs.StringVar(&o.typeMix, "type-mix", plan.FormatTypeMix(s.TypeMix), "share of events per type, type=share,...")
	fs.Float64Var(&s.Headroom, "headroom", s.Headroom, "spare capacity over the expected rate (0.3 = 30%)")
	fs.Float64Var(&s.TaskRequestsPerSecond, "task-rps", s.TaskRequestsPerSecond, "requests/s one ingest task sustains: set from our ingest benchmark (docs/benchmarks.md)")
	fs.Float64Var(&s.TaskVCPU, "task-vcpu", s.TaskVCPU, "vCPU per ingest task")
	fs.Float64Var(&s.TaskMemoryGB, "task-memory-gb", s.TaskMemoryGB, "GB of memory per ingest task")
	fs.IntVar(&s.MinTasks, "min-tasks", s.MinTasks, "fewest ingest tasks ever")
	fs.Float64Var(&s.MaxTasksFactor, "max-tasks-factor", s.MaxTasksFactor, "scheduled max capacity = min capacity × this (room for target tracking)")
	fs.DurationVar(&s.LeadTime, "lead", s.LeadTime, "capacity in place this long before a broadcast starts")
	fs.DurationVar(&s.ScaleInDelay, "scale-in-delay", s.ScaleInDelay, "capacity kept this long after a broadcast ends")
	fs.DurationVar(&s.MergeGap, "merge-gap", s.MergeGap, "lulls shorter than this between broadcasts keep their capacity")
	fs.StringVar(&o.mode, "kinesis-mode", string(s.KinesisMode), "Kinesis capacity mode: provisioned or on-demand")
	fs.IntVar(&s.MinShards, "min-shards", s.MinShards, "fewest shards ever (provisioned)")
	fs.DurationVar(&s.ReshardTime, "reshard-time", s.ReshardTime, "time allowed for one UpdateShardCount step")
	fs.BoolVar(&s.WarmThroughput, "warm-throughput", s.WarmThroughput, "on-demand: the account can set warm throughput (MinimumThroughputBillingCommitment)")
	fs.IntVar(&s.RouterBatchSize, "router-batch-size", s.RouterBatchSize, "router Lambda's Kinesis batch size")
	fs.IntVar(&s.ParallelizationFactor, "parallelization-factor", s.ParallelizationFactor, "router Lambda's parallelization factor (1..10)")
	fs.DurationVar(&s.RouterDuration, "router-duration", s.RouterDuration, "router Lambda's fixed time per invocation (plus --router-event-cost per event)")
	fs.IntVar(&s.RouterMemoryMB, "router-memory-mb", s.RouterMemoryMB, "router Lambda's memory")
	fs.IntVar(&s.StreamConsumers, "stream-consumers", s.StreamConsumers, "Lambda functions reading the stream (router, aggregator)")
	fs.IntVar(&s.FirehosePackBytes, "firehose-pack-bytes", s.FirehosePackBytes, "largest Firehose record the router packs events into (0: one event a record)")
	fs.BoolVar(&s.ParquetConversion, "parquet", s.ParquetConversion, "Firehose converts to Parquet (billed per GB)")
	fs.DurationVar(&s.OutageDuration, "outage", s.OutageDuration, "Kinesis outage the SQS dead-letter queue must absorb")
	fs.Float64Var(&s.OutagesPerMonth, "outages-per-month", s.OutagesPerMonth, "Kinesis outages a month, for the SQS cost")
	fs.Float64Var(&s.RequestsPerConnection, "requests-per-connection", s.RequestsPerConnection, "requests per new load balancer connection")
	fs.DurationVar(&s.Horizon, "horizon", s.Horizon, "prescale installs scheduled actions this far ahead; any 2 × horizon holds at most 200")
	fs.IntVar(&s.ReservedScheduledActions, "reserved-actions", s.ReservedScheduledActions, "other scheduled actions on the ECS scalable target")
	fs.StringVar(&o.prefix, "action-prefix", plan.DefaultActionPrefix, "name prefix of prescale's scheduled actions")
	for _, q := range []struct{ name, help string }{
		{"quota-fargate-vcpu", "Fargate On-Demand vCPU quota (default 4000)"},
		{"quota-kinesis-shards", "Kinesis shard quota (default 20000 in us-east-1, us-west-2, eu-west-1, else 1000)"},
		{"quota-lambda-concurrency", "Lambda concurrent executions quota (default 1000)"},
		{"quota-firehose-mibps", "Firehose MiB/s per stream (default 5 in us-east-1, us-west-2, eu-west-1, else 1)"},
		{"quota-firehose-records", "Firehose records/s per stream (default 500000 in the big three regions, else 100000)"},
		{"quota-firehose-requests", "Firehose requests/s per stream (default 2000 in the big three regions, else 1000)"},
	} {
		o.quota[q.name] = fs.Float64(q.name, unset, q.help)
	}
	for _, p := range []struct{ name, help string }{
		{"price-fargate-vcpu-hour", "USD per Fargate vCPU-hour"},
		{"price-fargate-gb-hour", "USD per Fargate GB-hour"},
		{"price-kinesis-shard-hour", "USD per shard-hour"},
		{"price-kinesis-put-million", "USD per million PUT payload units"},
		{"price-kinesis-od-stream-hour", "USD per on-demand stream-hour"},
		{"price-kinesis-od-in-gb", "USD per on-demand GB written"},
		{"price-kinesis-od-out-gb", "USD per on-demand GB read"},
		{"price-firehose-gb", "USD per Firehose GB ingested (5 KB rounding)"},
		{"price-firehose-parquet-gb", "USD per Firehose GB converted to Parquet"},
		{"price-lambda-requests-million", "USD per million Lambda requests"},
		{"price-lambda-gb-second", "USD per Lambda GB-second"},
		{"price-alb-hour", "USD per load balancer hour"},
		{"price-alb-lcu-hour", "USD per LCU-hour"},
		{"price-sqs-requests-million", "USD per million SQS requests"},
	} {
		o.price[p.name] = fs.Float64(p.name, unset, p.help+" (default: the region's list price, docs/capacity.md)")
	}
	for _, name := range extraPriceNames {
		flagName := "price-" + strings.ReplaceAll(name, "_", "-")
		o.price[flagName] = fs.Float64(flagName, unset, "USD, "+name+" (default: the region's list price, docs/capacity.md)")
	}
	return o
}

// settings applies the region's defaults and the explicit overrides.
func (o *planOptions) settings() (plan.Settings, error) {
	s := o.s
	s.Region = o.region
	s.KinesisMode = plan.KinesisMode(o.mode)
	mix, err := plan.ParseTypeMix(o.typeMix)
	if err != nil {
		return s, fmt.Errorf("--type-mix: %w", err)
	}
	s.TypeMix = mix
	s.Quotas = plan.DefaultQuotas(o.region)
	s.Prices = plan.DefaultPrices(o.region)
	set := func(name string, dst *float64) {
		if v := *o.quota[name]; v != unset {
			*dst = v
		}
	}
	setInt := func(name string, dst *int) {
		if v := *o.quota[name]; v != unset {
			*dst = int(v)
		}
	}
	set("quota-fargate-vcpu", &s.Quotas.FargateVCPU)
	setInt("quota-kinesis-shards", &s.Quotas.KinesisShards)
	setInt("quota-lambda-concurrency", &s.Quotas.LambdaConcurrency)
	set("quota-firehose-mibps", &s.Quotas.FirehoseMiBps)
	set("quota-firehose-records", &s.Quotas.FirehoseRecordsPerSecond)
	set("quota-firehose-requests", &s.Quotas.FirehoseRequestsPerSecond)
	p := &s.Prices
	for name, dst := range map[string]struct {
		v    *float64
		json string
	}{
		"price-fargate-vcpu-hour": {&p.FargateVCPUHour, "fargate_vcpu_hour"}, "price-fargate-gb-hour": {&p.FargateGBHour, "fargate_gb_hour"},
		"price-kinesis-shard-hour": {&p.KinesisShardHour, "kinesis_shard_hour"}, "price-kinesis-put-million": {&p.KinesisPutUnitsMillion, "kinesis_put_payload_units_million"},
		"price-kinesis-od-stream-hour": {&p.KinesisODStreamHour, "kinesis_on_demand_stream_hour"}, "price-kinesis-od-in-gb": {&p.KinesisODInGB, "kinesis_on_demand_in_gb"},
		"price-kinesis-od-out-gb": {&p.KinesisODOutGB, "kinesis_on_demand_out_gb"},
		"price-firehose-gb":       {&p.FirehoseGB, "firehose_ingest_gb"}, "price-firehose-parquet-gb": {&p.FirehoseParquetGB, "firehose_format_conversion_gb"},
		"price-lambda-requests-million": {&p.LambdaRequestsMillion, "lambda_requests_million"}, "price-lambda-gb-second": {&p.LambdaGBSecond, "lambda_gb_second"},
		"price-alb-hour": {&p.ALBHour, "alb_hour"}, "price-alb-lcu-hour": {&p.ALBLCUHour, "alb_lcu_hour"}, "price-sqs-requests-million": {&p.SQSRequestsMillion, "sqs_requests_million"},
	} {
		if v := *o.price[name]; v != unset {
			*dst.v = v
			p.Confirm(dst.json)
		}
	}
	for _, name := range extraPriceNames {
		if v := *o.price["price-"+strings.ReplaceAll(name, "_", "-")]; v != unset {
			if err := p.Set(name, v); err != nil {
				return s, err
			}
		}
	}
	for _, v := range o.quota {
		if *v != unset && *v <= 0 {
			return s, errors.New("quota flags must be positive")
		}
	}
	return s, s.Validate()
}

// build reads the schedule and makes the plan.
func (o *planOptions) build(ctx context.Context) (*plan.Plan, error) {
	if o.schedule == "" {
		return nil, errors.New("--schedule is required")
	}
	s, err := o.settings()
	if err != nil {
		return nil, err
	}
	newS3 := o.newS3
	if newS3 == nil {
		newS3 = defaultS3
	}
	f, err := openSchedule(ctx, o.schedule, newS3)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	bs, err := plan.ParseSchedule(f, plan.ScheduleOptions{RequestsPerViewerMinute: o.perViewer})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.schedule, err)
	}
	return plan.Build(bs, s, o.prefix)
}

func runPlan(ctx context.Context, env *environment, args []string) error {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	opts := addPlanFlags(fs, env.getenv)
	output := fs.String("output", "table", "table or json")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "Usage: spate plan --schedule FILE [--output table|json] [settings]\n\nProjects requests, events, Fargate tasks, Kinesis shards, Lambda concurrency,\nFirehose and SQS load, quota warnings and monthly cost for a broadcast schedule\n(docs/capacity.md explains every number).\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("plan: unexpected argument %q", fs.Arg(0))
	}
	if *output != "table" && *output != "json" {
		return fmt.Errorf("plan: --output %q: want table or json", *output)
	}
	start := time.Now()
	p, err := opts.build(ctx)
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	env.log.Debug("plan built", "windows", len(p.Windows), "actions", len(p.Actions), "took", time.Since(start))
	if *output == "json" {
		return p.WriteJSON(env.stdout)
	}
	return p.WriteTable(env.stdout)
}
