package plan

import (
	"fmt"
	"math"
	"time"
)

// Capacity is what the pipeline needs at one traffic level.
type Capacity struct {
	RequestsPerMinute float64 `json:"requests_per_minute"`
	RequestsPerSecond float64 `json:"requests_per_second"`
	EventsPerSecond   float64 `json:"events_per_second"`

	// FargateTasks is the scheduled minimum: the design rate (expected
	// rate plus headroom) over one task's capacity; FargateMaxTasks the
	// scheduled maximum left for target tracking above it.
	FargateTasks    int     `json:"fargate_tasks"`
	FargateMaxTasks int     `json:"fargate_max_tasks"`
	FargateVCPU     float64 `json:"fargate_vcpu"`

	// EventsPerRecord is the events one Kinesis record carries (KPL
	// aggregation; Settings.EventsPerRecord).
	EventsPerRecord         float64 `json:"events_per_record"`
	KinesisRecordsPerSecond float64 `json:"kinesis_records_per_second"`
	KinesisMiBPerSecond     float64 `json:"kinesis_mib_per_second"`
	// KinesisShards is the provisioned shard count (the larger of the
	// records and bytes bounds at the design rate), or for an on-demand
	// stream the shards it would scale to.
	KinesisShards int `json:"kinesis_shards"`
	// KinesisShardsByRecords and KinesisShardsByBytes show which bound won.
	KinesisShardsByRecords int `json:"kinesis_shards_by_records"`
	KinesisShardsByBytes   int `json:"kinesis_shards_by_bytes"`
	// KinesisWriteMiBps is the on-demand write capacity needed (records
	// count as 1 MiB/s per 1,000/s), the warm throughput to set.
	KinesisWriteMiBps int `json:"kinesis_write_mibps,omitempty"`

	RouterConcurrency          int     `json:"router_concurrency"`
	LambdaConcurrency          int     `json:"lambda_concurrency"`
	RouterInvocationsPerSecond float64 `json:"router_invocations_per_second"`
	// RouterRecordsPerInvocation is the batch size, or fewer when
	// Lambda's 6 MB payload limit caps it (aggregated records are large);
	// RouterSecondsPerInvocation the router's time for such a batch.
	RouterRecordsPerInvocation float64 `json:"router_records_per_invocation"`
	RouterSecondsPerInvocation float64 `json:"router_seconds_per_invocation"`
	// RouterRecordsPerSecondPerShard is what one shard's consumer can
	// process: factor × records per invocation / its duration.
	RouterRecordsPerSecondPerShard float64 `json:"router_records_per_second_per_shard"`

	Firehose []FirehoseStream `json:"firehose"`
	SQS      SQSOutage        `json:"sqs_outage"`

	QuotaWarnings []string `json:"quota_warnings"`
}

// FirehoseStream is one event type's Firehose stream at the design rate.
type FirehoseStream struct {
	Type                  string  `json:"type"`
	EventsPerSecond       float64 `json:"events_per_second"`
	RecordsPerSecond      float64 `json:"records_per_second"`
	RequestsPerSecond     float64 `json:"requests_per_second"`
	MiBPerSecond          float64 `json:"mib_per_second"`
	BilledMiBPerSecond    float64 `json:"billed_mib_per_second"`
	QuotaRecordsPerSecond float64 `json:"quota_records_per_second"`
	QuotaRequestsPerSec   float64 `json:"quota_requests_per_second"`
	QuotaMiBPerSecond     float64 `json:"quota_mib_per_second"`
	// Utilisation is the largest of the three uses over their quotas.
	Utilisation float64 `json:"utilisation"`
}

// SQSOutage is what the dead-letter queue takes while Kinesis is down.
type SQSOutage struct {
	MessagesPerSecond     float64 `json:"messages_per_second"`
	SendCallsPerSecond    float64 `json:"send_calls_per_second"`
	MiBPerSecond          float64 `json:"mib_per_second"`
	BacklogMessages       float64 `json:"backlog_messages"`
	BacklogGiB            float64 `json:"backlog_gib"`
	BilledRequestsPerHour float64 `json:"billed_requests_per_hour"`
}

// ceilN rounds up, forgiving float noise so 10,000/1,000 is 10, not 11.
func ceilN(x float64) int {
	if x <= 0 {
		return 0
	}
	return int(math.Ceil(x - 1e-9))
}

// sqsEnvelopeBytes and sqsRecordOverhead are the DLQ message's JSON
// overhead (package sqs: the envelope, and key plus separators per record).
const (
	sqsEnvelopeBytes  = 160
	sqsRecordOverhead = 24
)

// CapacityAt computes what the pipeline needs at rpm requests a minute.
func (s Settings) CapacityAt(rpm float64) Capacity {
	c := Capacity{RequestsPerMinute: rpm}
	c.RequestsPerSecond = rpm / 60
	c.EventsPerSecond = c.RequestsPerSecond * s.EventsPerRequest
	design := 1 + s.Headroom
	dRPS := c.RequestsPerSecond * design
	dEPS := c.EventsPerSecond * design

	c.FargateTasks = max(s.MinTasks, ceilN(dRPS/s.TaskRequestsPerSecond))
	c.FargateMaxTasks = max(c.FargateTasks, ceilN(float64(c.FargateTasks)*s.MaxTasksFactor))
	c.FargateVCPU = float64(c.FargateTasks) * s.TaskVCPU

	recordBytes := s.recordBytes()
	c.EventsPerRecord = s.eventsPerRecord()
	c.KinesisRecordsPerSecond = c.EventsPerSecond / c.EventsPerRecord
	dRecords := dEPS / c.EventsPerRecord
	c.KinesisMiBPerSecond = c.KinesisRecordsPerSecond * recordBytes / (1 << 20)
	c.KinesisShardsByRecords = ceilN(dRecords / ShardRecordsPerSecond)
	c.KinesisShardsByBytes = ceilN(dRecords * recordBytes / ShardBytesPerSecond)
	c.KinesisShards = max(s.MinShards, c.KinesisShardsByRecords, c.KinesisShardsByBytes)
	if s.KinesisMode == OnDemand {
		need := math.Max(dRecords*recordBytes/(1<<20), dRecords/ShardRecordsPerSecond)
		c.KinesisWriteMiBps = max(1, ceilN(need))
		c.KinesisShards = max(c.KinesisShardsByRecords, c.KinesisShardsByBytes, 1)
	}

	c.RouterConcurrency = c.KinesisShards * s.ParallelizationFactor
	c.LambdaConcurrency = c.RouterConcurrency * s.StreamConsumers
	c.RouterInvocationsPerSecond = routerInvocations(s, dRecords, c.RouterConcurrency)
	perInv := s.recordsPerInvocation()
	c.RouterRecordsPerInvocation = perInv
	c.RouterSecondsPerInvocation = s.routerSeconds(perInv * c.EventsPerRecord)
	c.RouterRecordsPerSecondPerShard = float64(s.ParallelizationFactor) * perInv / c.RouterSecondsPerInvocation

	c.Firehose = s.firehoseStreams(dEPS, c.RouterInvocationsPerSecond)
	c.SQS = s.sqsOutage(c.EventsPerSecond)
	c.QuotaWarnings = s.quotaWarnings(c, dRecords)
	return c
}

// routerInvocations estimates invocations a second: full batches when the
// stream is busy, and at least one poll result per concurrent consumer
// a second while there is data at all.
func routerInvocations(s Settings, records float64, concurrency int) float64 {
	return math.Max(records/s.recordsPerInvocation(), math.Min(records, float64(concurrency)))
}

// KPL aggregated-record overhead (messages.proto): the magic and the MD5
// trailer, the explicit hash key table's one entry (a decimal 128-bit
// key), and per event its Record framing (tag, length, key index, data
// tag and length) plus a partition key table entry (each session its own).
const (
	kplRecordOverhead = 4 + 16 + 2 + 39
	kplEventOverhead  = 8 + 2
)

// lingerFill is what one task's batch puts in a record at capacity c: its
// events over the records it splits into, one per shard its requests'
// sessions hash to (a request is one session), at least a request's
// events (measured: docs/benchmarks.md, "Kinesis records at load").
func (s Settings) lingerFill(c Capacity) float64 {
	if c.FargateTasks == 0 || c.KinesisShards == 0 || s.BatchLinger <= 0 {
		return c.EventsPerRecord
	}
	batch := c.EventsPerSecond * (1 + s.Headroom) / float64(c.FargateTasks) * s.BatchLinger.Seconds()
	records := math.Min(float64(c.KinesisShards), math.Max(1, batch/s.EventsPerRequest))
	return math.Min(c.EventsPerRecord, math.Max(math.Min(s.EventsPerRequest, batch), batch/records))
}

// eventsPerRecord is Settings.EventsPerRecord, or when 0 what fills one
// aggregated record of AggregationTargetBytes.
func (s Settings) eventsPerRecord() float64 {
	if s.EventsPerRecord > 0 {
		return float64(s.EventsPerRecord)
	}
	per := s.EventBytes + kplEventOverhead + s.PartitionKeyBytes
	n := (s.AggregationTargetBytes - kplRecordOverhead - s.PartitionKeyBytes) / per
	return float64(max(1, n))
}

// recordBytes is one Kinesis record's data blob plus partition key: a
// plain event at one event a record, else the aggregated record.
func (s Settings) recordBytes() float64 {
	n := s.eventsPerRecord()
	if n <= 1 {
		return float64(s.EventBytes + s.PartitionKeyBytes)
	}
	return kplRecordOverhead + n*float64(s.EventBytes+kplEventOverhead+s.PartitionKeyBytes) + float64(s.PartitionKeyBytes)
}

// lambdaPayloadBytes is Lambda's synchronous invocation payload limit; a
// Kinesis record travels base64-encoded inside JSON with its metadata.
const (
	lambdaPayloadBytes    = 6 << 20
	lambdaRecordJSONBytes = 400
)

// recordsPerInvocation is the router's batch: the configured size unless
// the 6 MB payload limit caps it first.
func (s Settings) recordsPerInvocation() float64 {
	fit := math.Floor(lambdaPayloadBytes / (s.recordBytes()*4/3 + lambdaRecordJSONBytes))
	return math.Max(1, math.Min(float64(s.RouterBatchSize), fit))
}

// oneVCPUMemoryMB is where Lambda gives a function one full vCPU.
const oneVCPUMemoryMB = 1769

func cpuScale(memoryMB int) float64 { return math.Max(1, oneVCPUMemoryMB/float64(memoryMB)) }

// routerSeconds is one router invocation's duration for events events.
func (s Settings) routerSeconds(events float64) float64 {
	return s.RouterDuration.Seconds() + events*s.RouterEventCost.Seconds()*cpuScale(s.RouterMemoryMB)
}

// aggregatorSeconds is one aggregator invocation's duration.
func (s Settings) aggregatorSeconds(events float64) float64 {
	return s.AggregatorDuration.Seconds() + events*s.AggregatorEventCost.Seconds()*cpuScale(s.AggregatorMemoryMB)
}

// firehoseStreams projects each type's Firehose stream. The router packs
// the events of a type that one invocation holds into as few records as
// the pack size allows, so a record carries an invocation's worth of that
// type, and Firehose's 5 KB rounding is paid per pack, not per event.
func (s Settings) firehoseStreams(events, invocations float64) []FirehoseStream {
	total := 0.0
	for _, typ := range sortedTypes(s.TypeMix) { // in order: sums are exact across runs
		total += s.TypeMix[typ]
	}
	line := float64(s.EventBytes + 1) // newline-delimited JSON
	var out []FirehoseStream
	for _, typ := range sortedTypes(s.TypeMix) {
		share := s.TypeMix[typ] / total
		if share == 0 {
			continue
		}
		f := FirehoseStream{
			Type:                  typ,
			EventsPerSecond:       events * share,
			QuotaRecordsPerSecond: s.Quotas.FirehoseRecordsPerSecond,
			QuotaRequestsPerSec:   s.Quotas.FirehoseRequestsPerSecond,
			QuotaMiBPerSecond:     s.Quotas.FirehoseMiBps,
		}
		perRecord := 1.0
		if s.FirehosePackBytes > 0 && invocations > 0 {
			perRecord = math.Max(1, math.Min(math.Floor(float64(s.FirehosePackBytes)/line), f.EventsPerSecond/invocations))
		}
		f.RecordsPerSecond = f.EventsPerSecond / perRecord
		f.MiBPerSecond = f.EventsPerSecond * line / (1 << 20)
		billedRecord := math.Ceil(perRecord*line/FirehoseBillingUnitBytes) * FirehoseBillingUnitBytes
		f.BilledMiBPerSecond = f.RecordsPerSecond * billedRecord / (1 << 20)
		// Each router invocation that saw the type makes at least one
		// PutRecordBatch call to its stream (500 records, 4 MiB a call).
		f.RequestsPerSecond = math.Max(math.Min(invocations, f.EventsPerSecond), math.Max(f.RecordsPerSecond/FirehoseBatchRecords, f.MiBPerSecond/4))
		f.Utilisation = math.Max(f.RecordsPerSecond/f.QuotaRecordsPerSecond, math.Max(f.RequestsPerSecond/f.QuotaRequestsPerSec, f.MiBPerSecond/f.QuotaMiBPerSecond))
		out = append(out, f)
	}
	return out
}

func (s Settings) sqsOutage(events float64) SQSOutage {
	var o SQSOutage
	bytesPerSec := events * float64(s.EventBytes+s.PartitionKeyBytes+sqsRecordOverhead)
	payload := float64(s.SQSMessageBytes - sqsEnvelopeBytes)
	o.MiBPerSecond = bytesPerSec / (1 << 20)
	o.MessagesPerSecond = bytesPerSec / payload
	// A SendMessageBatch call carries at most 10 messages and 256 KiB.
	o.SendCallsPerSecond = math.Max(o.MessagesPerSecond/10, bytesPerSec/(256<<10))
	secs := s.OutageDuration.Seconds()
	o.BacklogMessages = o.MessagesPerSecond * secs
	o.BacklogGiB = bytesPerSec * secs / (1 << 30)
	// Send, receive (both billed per 64 KB chunk) and delete, per message.
	chunks := math.Ceil(float64(s.SQSMessageBytes) / SQSChunkBytes)
	o.BilledRequestsPerHour = o.MessagesPerSecond * 3600 * (2*chunks + 1)
	return o
}

func (s Settings) quotaWarnings(c Capacity, designRecords float64) []string {
	q := s.Quotas
	w := []string{}
	if c.FargateVCPU > q.FargateVCPU {
		w = append(w, fmt.Sprintf("fargate: %d tasks need %.0f vCPU, over the account's Fargate On-Demand vCPU quota of %.0f (raising it can take days)", c.FargateTasks, c.FargateVCPU, q.FargateVCPU))
	}
	if float64(c.FargateMaxTasks)*s.TaskVCPU > q.FargateVCPU && c.FargateVCPU <= q.FargateVCPU {
		w = append(w, fmt.Sprintf("fargate: scheduled maximum of %d tasks (%.0f vCPU) is over the vCPU quota of %.0f", c.FargateMaxTasks, float64(c.FargateMaxTasks)*s.TaskVCPU, q.FargateVCPU))
	}
	if c.FargateTasks > q.TasksPerService {
		w = append(w, fmt.Sprintf("ecs: %d tasks is over %d tasks per service", c.FargateTasks, q.TasksPerService))
	}
	if s.KinesisMode == Provisioned {
		if c.KinesisShards > q.KinesisShards {
			w = append(w, fmt.Sprintf("kinesis: %d shards is over the region's shard quota of %d", c.KinesisShards, q.KinesisShards))
		}
		if c.KinesisShards > q.ShardsPerStream {
			w = append(w, fmt.Sprintf("kinesis: %d shards is over UpdateShardCount's %d per stream", c.KinesisShards, q.ShardsPerStream))
		}
	} else if float64(c.KinesisWriteMiBps) > q.OnDemandMaxMiBps {
		w = append(w, fmt.Sprintf("kinesis: on-demand stream needs %d MiB/s, over its %.0f MiB/s ceiling", c.KinesisWriteMiBps, q.OnDemandMaxMiBps))
	}
	if c.LambdaConcurrency > q.LambdaConcurrency {
		w = append(w, fmt.Sprintf("lambda: %d concurrent executions (%d consumers × %d shards × factor %d) is over the regional quota of %d", c.LambdaConcurrency, s.StreamConsumers, c.KinesisShards, s.ParallelizationFactor, q.LambdaConcurrency))
	}
	if fill := s.lingerFill(c); s.EventsPerRecord == 0 && fill < 0.9*c.EventsPerRecord {
		w = append(w, fmt.Sprintf("kinesis: a task's %s batch holds %.0f events for %d shards, so aggregated records carry about %.1f events, not the %.0f the %d-byte target allows (docs/benchmarks.md): raise SPATE_BATCH_LINGER (--batch-linger) or plan with --events-per-record %.0f",
			s.BatchLinger, c.EventsPerSecond*(1+s.Headroom)/float64(c.FargateTasks)*s.BatchLinger.Seconds(), c.KinesisShards, fill, c.EventsPerRecord, s.AggregationTargetBytes, math.Max(1, math.Floor(fill))))
	}
	if c.KinesisShards > 0 {
		perShard := designRecords / float64(c.KinesisShards)
		if perShard > c.RouterRecordsPerSecondPerShard {
			w = append(w, fmt.Sprintf("router: %.0f records/s per shard but a shard's consumer handles %.0f (factor %d × %.0f records / %.0f ms an invocation): raise the parallelization factor or batch size", perShard, c.RouterRecordsPerSecondPerShard, s.ParallelizationFactor, c.RouterRecordsPerInvocation, c.RouterSecondsPerInvocation*1000))
		}
	}
	for _, f := range c.Firehose {
		if f.RecordsPerSecond > f.QuotaRecordsPerSecond {
			w = append(w, fmt.Sprintf("firehose %s: %.0f records/s over the %.0f records/s quota", f.Type, f.RecordsPerSecond, f.QuotaRecordsPerSecond))
		}
		if f.RequestsPerSecond > f.QuotaRequestsPerSec {
			w = append(w, fmt.Sprintf("firehose %s: %.0f PutRecordBatch calls/s over the %.0f requests/s quota (raise the router batch size)", f.Type, f.RequestsPerSecond, f.QuotaRequestsPerSec))
		}
		if f.MiBPerSecond > f.QuotaMiBPerSecond {
			w = append(w, fmt.Sprintf("firehose %s: %.2f MiB/s over the %.0f MiB/s quota (request an increase)", f.Type, f.MiBPerSecond, f.QuotaMiBPerSecond))
		}
	}
	return w
}

// fargateHourly is one task's price an hour.
func (s Settings) fargateHourly() float64 {
	if s.Arch == ArchX86 {
		return s.TaskVCPU*s.Prices.FargateVCPUHour + s.TaskMemoryGB*s.Prices.FargateGBHour
	}
	return s.TaskVCPU*s.Prices.FargateARMVCPUHour + s.TaskMemoryGB*s.Prices.FargateARMGBHour
}

// lambdaGBSecond is the Lambda duration price for the architecture.
func (s Settings) lambdaGBSecond() float64 {
	if s.Arch == ArchX86 {
		return s.Prices.LambdaGBSecond
	}
	return s.Prices.LambdaARMGBSecond
}

// launchTime is how long an ECS service takes to launch more tasks.
func (s Settings) launchTime(more int) time.Duration {
	if more <= 0 || s.Quotas.TaskLaunchesPerMinute <= 0 {
		return 0
	}
	return time.Duration(math.Ceil(float64(more)/s.Quotas.TaskLaunchesPerMinute)) * time.Minute
}
