package plan

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// KinesisMode is the stream's capacity mode.
type KinesisMode string

// The two capacity modes of a Kinesis data stream.
const (
	Provisioned KinesisMode = "provisioned"
	OnDemand    KinesisMode = "on-demand"
)

// Limits of the services that the plan respects. Fixed by AWS (not quotas
// an account can raise), so constants rather than settings.
const (
	// ShardRecordsPerSecond and ShardBytesPerSecond are one provisioned
	// shard's write capacity (data blob plus partition key).
	ShardRecordsPerSecond = 1000
	ShardBytesPerSecond   = 1 << 20
	// PutPayloadUnitBytes is the 25 KB chunk Kinesis bills a PUT in.
	PutPayloadUnitBytes = 25 << 10
	// OnDemandBillingUnitBytes is on-demand ingest rounding: 1 KB per record.
	OnDemandBillingUnitBytes = 1 << 10
	// FirehoseBillingUnitBytes: Firehose bills each record rounded up to 5 KB.
	FirehoseBillingUnitBytes = 5 << 10
	// FirehoseBatchRecords is PutRecordBatch's record limit, and
	// FirehoseMaxRecordBytes its record size limit.
	FirehoseBatchRecords   = 500
	FirehoseMaxRecordBytes = 1000 << 10
	// OnDemandBurstFactor: an on-demand stream absorbs up to twice its
	// previous peak write throughput (of the last 30 days) without warning.
	OnDemandBurstFactor = 2
	// OnDemandPeakMemory is how far back that previous peak is taken.
	OnDemandPeakMemory = 30 * 24 * time.Hour
	// OnDemandDefaultMiBps is a new on-demand stream's write capacity.
	OnDemandDefaultMiBps = 4
	// ALB LCU dimensions (one LCU each).
	ALBNewConnectionsPerSecond = 25
	ALBBytesPerHour            = 1 << 30
	// SQSChunkBytes: SQS bills every 64 KB of a request as one request.
	SQSChunkBytes = 64 << 10
	// HoursPerMonth is the month the costs are given for (AWS's 730 h).
	HoursPerMonth = 730
)

// Quotas are the account's limits, per region. Defaults are AWS's published
// defaults; use your own values from the Service Quotas console.
type Quotas struct {
	// FargateVCPU is "Fargate On-Demand vCPU resource count" (L-3032A538).
	// AWS moved Fargate from task counts to vCPUs in 2022; new accounts
	// start lower and are raised with use.
	FargateVCPU float64
	// TasksPerService is ECS's tasks per service.
	TasksPerService int
	// TaskLaunchesPerMinute is the rate at which an ECS service launches
	// Fargate tasks; it bounds how fast a scheduled action takes effect.
	TaskLaunchesPerMinute float64
	// KinesisShards is the account's shard quota in the region.
	KinesisShards int
	// ShardsPerStream is UpdateShardCount's per-stream ceiling.
	ShardsPerStream int
	// OnDemandMaxMiBps is an on-demand stream's write ceiling.
	OnDemandMaxMiBps float64
	// LambdaConcurrency is the regional concurrent executions quota.
	LambdaConcurrency int
	// Firehose Direct PUT, per Firehose stream (PutRecord and
	// PutRecordBatch combined).
	FirehoseRecordsPerSecond  float64
	FirehoseRequestsPerSecond float64
	FirehoseMiBps             float64
	// ScheduledActionsPerTarget is Application Auto Scaling's limit
	// (not adjustable).
	ScheduledActionsPerTarget int
	// ShardUpdatesPerDay is UpdateShardCount's per-stream limit in a
	// rolling 24 hours.
	ShardUpdatesPerDay int
}

// bigRegions have Kinesis' and Firehose's larger defaults.
var bigRegions = map[string]bool{"us-east-1": true, "us-west-2": true, "eu-west-1": true}

// DefaultQuotas returns the published default quotas for region.
func DefaultQuotas(region string) Quotas {
	q := Quotas{
		FargateVCPU:               4000,
		TasksPerService:           5000,
		TaskLaunchesPerMinute:     500,
		KinesisShards:             1000,
		ShardsPerStream:           10000,
		OnDemandMaxMiBps:          200,
		LambdaConcurrency:         1000,
		FirehoseRecordsPerSecond:  100_000,
		FirehoseRequestsPerSecond: 1000,
		FirehoseMiBps:             1,
		ScheduledActionsPerTarget: 200,
		ShardUpdatesPerDay:        10,
	}
	if bigRegions[region] {
		q.KinesisShards = 20000
		q.OnDemandMaxMiBps = 10240
		q.FirehoseRecordsPerSecond = 500_000
		q.FirehoseRequestsPerSecond = 2000
		q.FirehoseMiBps = 5
	}
	return q
}

// DefaultTaskRequestsPerSecond is what one ingest task (1 vCPU, 2 GB) is
// planned to sustain: half of what `spate local` sustained on 2 shared cores
// with the whole local pipeline and the load generator beside it
// (docs/benchmarks.md, HTTP load). Re-measure on Fargate; --task-rps.
const DefaultTaskRequestsPerSecond = 2500

// Settings describe the deployment and the traffic outside broadcasts.
// Start from DefaultSettings; every field is documented with its default.
type Settings struct {
	Region string // us-east-1

	// BaselineRequestsPerMinute is the everyday peak (prime time without a
	// special broadcast): the capacity floor outside broadcasts, and the
	// part of a broadcast's peak that overlapping broadcasts share.
	// Default 600,000, the reference team's prime time.
	BaselineRequestsPerMinute float64
	// MeanRequestsPerMinute is the everyday average, for usage-billed
	// costs. Default 350,000 (about 500 M events a day).
	MeanRequestsPerMinute float64
	EventsPerRequest      float64 // 1
	EventBytes            int     // 500, one event's JSON
	PartitionKeyBytes     int     // 36, a UUID; counts against shard bytes
	// EventsPerRecord is how many events ingest packs into one Kinesis
	// record (KPL aggregation): 1 means no record packing, 0 derives it
	// from the event size, the KPL format's overhead and
	// AggregationTargetBytes (what a full aggregated record holds). Pass
	// the measured average (ingest's /metrics) when it is lower.
	EventsPerRecord int
	// AggregationTargetBytes is ingest's aggregated record target
	// (SPATE_KINESIS_AGGREGATION): one 25 KiB PUT payload unit.
	AggregationTargetBytes int // 25,600
	// BatchLinger is ingest's SPATE_BATCH_LINGER: a task's batch holds its
	// events/s × this, spread over the shards its sessions hash to, which
	// bounds how full aggregated records get (docs/benchmarks.md, "Kinesis
	// records at load"); the plan warns when it keeps records below the
	// derived events per record.
	BatchLinger time.Duration // 10ms
	// EventsPerDay, when positive, sets the everyday mean from an event
	// rate instead of MeanRequestsPerMinute (events per day ÷ 1,440 ÷
	// events per request), so requests and events cannot be confused.
	EventsPerDay float64
	// TypeMix is each event type's share of events (normalised).
	TypeMix map[string]float64
	// Headroom is spare capacity on top of the expected rate (0.3 = 30 %).
	Headroom float64

	// Arch is the CPU architecture of the Fargate tasks and the Lambdas
	// (terraform deploys arm64: ingest_cpu_architecture, architectures).
	Arch string // arm64

	TaskRequestsPerSecond float64       // DefaultTaskRequestsPerSecond
	TaskVCPU              float64       // 1
	TaskMemoryGB          float64       // 2
	MinTasks              int           // 2: one per availability zone at least
	MaxTasksFactor        float64       // 2: scheduled max capacity = ceil(min × factor)
	LeadTime              time.Duration // 30m before a broadcast starts
	ScaleInDelay          time.Duration // 30m after it ends
	// MergeGap: a lull shorter than this between close broadcasts keeps
	// the capacity of the lower side instead of scaling in and out.
	MergeGap time.Duration // 1h

	KinesisMode KinesisMode // provisioned
	MinShards   int         // 1
	// ReshardTime is how long one UpdateShardCount step is allowed to take
	// ("a few minutes" for AWS; steps are planned this far apart).
	ReshardTime time.Duration // 15m
	// WarmThroughput says the account can set on-demand warm throughput
	// (MinimumThroughputBillingCommitment); without it an on-demand stream
	// only absorbs twice its recent peak.
	WarmThroughput bool

	RouterBatchSize       int // 500 records (Lambda's 6 MB payload may cap it lower)
	ParallelizationFactor int // 1 (1..10)
	// RouterDuration is the router's fixed time per invocation (the
	// Firehose round trips); RouterEventCost its CPU time per event at one
	// vCPU (1,769 MB), measured by the router benchmark through the SDK
	// (docs/benchmarks.md). An invocation of n events takes RouterDuration
	// + n × RouterEventCost × max(1, 1769 / memory).
	RouterDuration  time.Duration // 40ms
	RouterEventCost time.Duration // 10µs
	RouterMemoryMB  int           // 1024, terraform's router_memory_mb
	// The aggregator reads the same batches: fixed time, CPU per event
	// (the fold benchmark's ~0.7 µs plus decoding) and memory.
	AggregatorDuration  time.Duration // 10ms
	AggregatorEventCost time.Duration // 2µs
	AggregatorMemoryMB  int           // 512, terraform's aggregator_memory_mb
	// StreamConsumers counts the Lambda functions reading the stream
	// (router and aggregator): each takes shards × factor concurrency.
	StreamConsumers int // 2

	// FirehosePackBytes bounds the records the router packs an
	// invocation's events of one type into (router.MaxRecordBytes), so
	// the 5 KB billing rounding is paid once per pack rather than per
	// event; 0 means one event per Firehose record.
	FirehosePackBytes int  // 1,024,000 (1,000 KiB)
	ParquetConversion bool // true

	OutageDuration  time.Duration // 1h of Kinesis outage the DLQ absorbs
	OutagesPerMonth float64       // 1
	SQSMessageBytes int           // 262144, one DLQ message

	RequestsPerConnection float64 // 10 requests per new ALB connection
	RequestOverheadBytes  int     // 800 bytes of HTTP headers per request

	// Horizon is how far ahead prescale installs scheduled actions; the
	// plan keeps any 2 × Horizon within the scheduled-action budget,
	// because actions run since the last prescale run still count.
	Horizon time.Duration // 24h
	// ReservedScheduledActions are actions on the scalable target that
	// are not prescale's (they count against the 200).
	ReservedScheduledActions int // 0

	Quotas Quotas
	Prices Prices
	// Bill describes the rest of the deployment the whole bill prices
	// (bill.go): network path, WAF, logs, the lake, alarms.
	Bill BillSettings
}

// DefaultTypeMix is the assumed share of each event type.
func DefaultTypeMix() map[string]float64 {
	return map[string]float64{
		"page_view":     0.15,
		"impression":    0.35,
		"click":         0.05,
		"play_start":    0.05,
		"play_progress": 0.35,
		"play_end":      0.05,
	}
}

// DefaultSettings returns the documented defaults for region.
func DefaultSettings(region string) Settings {
	if region == "" {
		region = "us-east-1"
	}
	return Settings{
		Region:                    region,
		BaselineRequestsPerMinute: 600_000,
		MeanRequestsPerMinute:     350_000,
		EventsPerRequest:          1,
		EventBytes:                500,
		PartitionKeyBytes:         36,
		EventsPerRecord:           0,
		AggregationTargetBytes:    PutPayloadUnitBytes,
		BatchLinger:               10 * time.Millisecond,
		Arch:                      ArchARM64,
		TypeMix:                   DefaultTypeMix(),
		Headroom:                  0.3,
		TaskRequestsPerSecond:     DefaultTaskRequestsPerSecond,
		TaskVCPU:                  1,
		TaskMemoryGB:              2,
		MinTasks:                  2,
		MaxTasksFactor:            2,
		LeadTime:                  30 * time.Minute,
		ScaleInDelay:              30 * time.Minute,
		MergeGap:                  time.Hour,
		KinesisMode:               Provisioned,
		MinShards:                 1,
		ReshardTime:               15 * time.Minute,
		RouterBatchSize:           500,
		ParallelizationFactor:     1,
		RouterDuration:            40 * time.Millisecond,
		RouterEventCost:           10 * time.Microsecond,
		RouterMemoryMB:            1024,
		AggregatorDuration:        10 * time.Millisecond,
		AggregatorEventCost:       2 * time.Microsecond,
		AggregatorMemoryMB:        512,
		StreamConsumers:           2,
		FirehosePackBytes:         FirehoseMaxRecordBytes,
		ParquetConversion:         true,
		OutageDuration:            time.Hour,
		OutagesPerMonth:           1,
		SQSMessageBytes:           256 << 10,
		RequestsPerConnection:     10,
		RequestOverheadBytes:      800,
		Horizon:                   24 * time.Hour,
		Quotas:                    DefaultQuotas(region),
		Prices:                    DefaultPrices(region),
		Bill:                      DefaultBillSettings(),
	}
}

// Validate reports the first setting that cannot be planned with.
func (s Settings) Validate() error {
	pos := func(name string, v float64) error {
		if !(v > 0) || math.IsInf(v, 0) {
			return fmt.Errorf("plan settings: %s must be positive, got %v", name, v)
		}
		return nil
	}
	nonneg := func(name string, v float64) error {
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("plan settings: %s must not be negative, got %v", name, v)
		}
		return nil
	}
	checks := []error{
		pos("baseline requests per minute", s.BaselineRequestsPerMinute),
		nonneg("mean requests per minute", s.MeanRequestsPerMinute),
		pos("events per request", s.EventsPerRequest),
		pos("event bytes", float64(s.EventBytes)),
		nonneg("partition key bytes", float64(s.PartitionKeyBytes)),
		nonneg("events per record", float64(s.EventsPerRecord)),
		nonneg("events per day", s.EventsPerDay),
		pos("aggregation target bytes", float64(s.AggregationTargetBytes)),
		nonneg("batch linger", float64(s.BatchLinger)),
		nonneg("headroom", s.Headroom),
		pos("task requests per second", s.TaskRequestsPerSecond),
		pos("task vCPU", s.TaskVCPU),
		pos("task memory", s.TaskMemoryGB),
		pos("min tasks", float64(s.MinTasks)),
		nonneg("lead time", float64(s.LeadTime)),
		nonneg("scale-in delay", float64(s.ScaleInDelay)),
		nonneg("merge gap", float64(s.MergeGap)),
		pos("min shards", float64(s.MinShards)),
		pos("reshard time", float64(s.ReshardTime)),
		pos("router batch size", float64(s.RouterBatchSize)),
		pos("router duration", float64(s.RouterDuration)),
		nonneg("router event cost", float64(s.RouterEventCost)),
		pos("router memory", float64(s.RouterMemoryMB)),
		nonneg("aggregator duration", float64(s.AggregatorDuration)),
		nonneg("aggregator event cost", float64(s.AggregatorEventCost)),
		pos("aggregator memory", float64(s.AggregatorMemoryMB)),
		pos("stream consumers", float64(s.StreamConsumers)),
		nonneg("firehose pack bytes", float64(s.FirehosePackBytes)),
		nonneg("outage duration", float64(s.OutageDuration)),
		nonneg("outages per month", s.OutagesPerMonth),
		pos("SQS message bytes", float64(s.SQSMessageBytes)),
		pos("requests per connection", s.RequestsPerConnection),
		nonneg("request overhead bytes", float64(s.RequestOverheadBytes)),
		pos("horizon", float64(s.Horizon)),
		nonneg("reserved scheduled actions", float64(s.ReservedScheduledActions)),
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	if s.MaxTasksFactor < 1 || math.IsInf(s.MaxTasksFactor, 0) {
		return fmt.Errorf("plan settings: max tasks factor must be at least 1, got %v", s.MaxTasksFactor)
	}
	if s.KinesisMode != Provisioned && s.KinesisMode != OnDemand {
		return fmt.Errorf("plan settings: kinesis mode %q: want provisioned or on-demand", s.KinesisMode)
	}
	if s.ParallelizationFactor < 1 || s.ParallelizationFactor > 10 {
		return fmt.Errorf("plan settings: parallelization factor %d: want 1..10", s.ParallelizationFactor)
	}
	if s.RouterBatchSize > 10000 {
		return fmt.Errorf("plan settings: router batch size %d: Kinesis event sources take at most 10,000", s.RouterBatchSize)
	}
	if s.AggregationTargetBytes > 1<<20 {
		return fmt.Errorf("plan settings: aggregation target %d bytes: a Kinesis record holds at most 1 MiB", s.AggregationTargetBytes)
	}
	if s.EventBytes > 1<<20 || s.recordBytes() > 1<<20 {
		return errors.New("plan settings: a Kinesis record would exceed 1 MiB")
	}
	if s.Arch != ArchARM64 && s.Arch != ArchX86 {
		return fmt.Errorf("plan settings: arch %q: want %s or %s", s.Arch, ArchARM64, ArchX86)
	}
	if err := s.Bill.validate(); err != nil {
		return err
	}
	if s.FirehosePackBytes > FirehoseMaxRecordBytes {
		return fmt.Errorf("plan settings: firehose pack bytes %d: a Firehose record holds at most %d", s.FirehosePackBytes, FirehoseMaxRecordBytes)
	}
	if s.SQSMessageBytes > 1<<20 {
		return fmt.Errorf("plan settings: SQS message bytes %d: SQS takes at most 1 MiB", s.SQSMessageBytes)
	}
	if len(s.TypeMix) == 0 {
		return errors.New("plan settings: type mix is empty")
	}
	total := 0.0
	for typ, share := range s.TypeMix {
		if err := nonneg("type mix share of "+typ, share); err != nil {
			return err
		}
		total += share
	}
	if !(total > 0) {
		return errors.New("plan settings: type mix shares sum to zero")
	}
	if s.ReservedScheduledActions >= s.Quotas.ScheduledActionsPerTarget {
		return fmt.Errorf("plan settings: %d reserved scheduled actions leave none of the %d", s.ReservedScheduledActions, s.Quotas.ScheduledActionsPerTarget)
	}
	if s.Quotas.ShardUpdatesPerDay < 2 {
		return errors.New("plan settings: shard updates per day must be at least 2")
	}
	return s.Prices.validate()
}

// ParseTypeMix reads "type=share,type=share".
func ParseTypeMix(s string) (map[string]float64, error) {
	mix := map[string]float64{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("type mix %q: want type=share", part)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("type mix %q: share must be a non-negative number", part)
		}
		mix[strings.TrimSpace(name)] = v
	}
	if len(mix) == 0 {
		return nil, errors.New("type mix is empty")
	}
	return mix, nil
}

// FormatTypeMix is ParseTypeMix's inverse, sorted by type.
func FormatTypeMix(mix map[string]float64) string {
	types := sortedTypes(mix)
	parts := make([]string, len(types))
	for i, t := range types {
		parts[i] = t + "=" + strconv.FormatFloat(mix[t], 'f', -1, 64)
	}
	return strings.Join(parts, ",")
}

func sortedTypes(mix map[string]float64) []string {
	types := make([]string, 0, len(mix))
	for t := range mix {
		types = append(types, t)
	}
	sort.Strings(types)
	return types
}
