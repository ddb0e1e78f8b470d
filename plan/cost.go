package plan

import (
	"fmt"
	"math"
	"sort"
)

// Cost is a month's cost, in USD: the baseline running all month (730 h)
// at the everyday mean traffic, plus what the schedule's broadcasts add on
// top (their extra capacity for its hours and their extra traffic), plus
// the dead-letter queue taking the configured Kinesis outages at the
// plan's peak. Lines is the whole bill, one line per billed item with its
// assumption; the per-service fields are sums of its lines.
type Cost struct {
	Total    float64 `json:"total"`
	Fargate  float64 `json:"fargate"`
	Kinesis  float64 `json:"kinesis"`
	Firehose float64 `json:"firehose"`
	Lambda   float64 `json:"lambda"`
	ALB      float64 `json:"alb"`
	SQS      float64 `json:"sqs"`
	// BroadcastExtra is the part of Total the broadcasts add.
	BroadcastExtra float64 `json:"broadcast_extra"`

	Lines []Line `json:"lines"`
	// Events is the month's events (the mean all month plus the
	// broadcasts' extra), PerMillionEvents the total over them.
	Events           float64 `json:"events"`
	PerMillionEvents float64 `json:"per_million_events"`
	// Month12Total is the same month a year on: the lake has grown (and
	// tiered down) for eleven more months.
	Month12Total float64 `json:"month12_total"`
}

// Line is one item of the bill.
type Line struct {
	Service    string  `json:"service"`
	Item       string  `json:"item"`
	USD        float64 `json:"usd"`
	Assumption string  `json:"assumption"`
}

// usage is what traffic-billed items cost a second at a rate, by line key.
type usage map[string]float64

func (u usage) minus(v usage) usage {
	out := usage{}
	for k, x := range u {
		out[k] = math.Max(0, x-v[k])
	}
	return out
}

func (u usage) times(secs float64) usage {
	out := usage{}
	for k, x := range u {
		out[k] = x * secs
	}
	return out
}

func (u usage) plus(v usage) usage {
	out := usage{}
	for k, x := range u {
		out[k] += x
	}
	for k, x := range v {
		out[k] += x
	}
	return out
}

const gib = 1 << 30

// Usage line keys (service.item).
const (
	lKinesisPut   = "kinesis.put_payload_units"
	lKinesisOD    = "kinesis.on_demand_data"
	lFirehoseIn   = "firehose.ingest"
	lFirehoseConv = "firehose.parquet_conversion"
	lLambdaReq    = "lambda.requests"
	lLambdaDur    = "lambda.duration"
	lALBLCU       = "alb.lcu"
	lWAFReq       = "waf.requests"
	lNetData      = "network.data_processed"
	lNetOut       = "network.internet_out"
	lLogsIngest   = "cloudwatch.logs_ingest"
	lALBLogs      = "s3.alb_access_logs"
)

// usageAt prices one second of traffic at rpm (the expected rate, no
// headroom: usage is billed on what arrives, not on what is provisioned).
func (s Settings) usageAt(rpm float64) usage {
	pr, b := s.Prices, s.Bill
	u := usage{}
	rps := rpm / 60
	events := rps * s.EventsPerRequest
	records := events / s.eventsPerRecord()
	recordBytes := s.recordBytes()
	if s.KinesisMode == Provisioned {
		units := records * math.Ceil(recordBytes/PutPayloadUnitBytes)
		u[lKinesisPut] = units / 1e6 * pr.KinesisPutUnitsMillion
	} else {
		in := records * math.Ceil(recordBytes/OnDemandBillingUnitBytes) * OnDemandBillingUnitBytes / gib
		out := records * recordBytes / gib * float64(s.StreamConsumers)
		u[lKinesisOD] = in*pr.KinesisODInGB + out*pr.KinesisODOutGB
	}
	shards := max(1, ceilN(records/ShardRecordsPerSecond), ceilN(records*recordBytes/ShardBytesPerSecond))
	inv := routerInvocations(s, records, shards*s.ParallelizationFactor)
	billed := 0.0
	for _, f := range s.firehoseStreams(events, inv) {
		billed += f.BilledMiBPerSecond * (1 << 20) / gib
	}
	u[lFirehoseIn] = billed * pr.FirehoseGB
	if s.ParquetConversion {
		u[lFirehoseConv] = billed * pr.FirehoseParquetGB
	}
	perInv := 0.0
	if inv > 0 {
		perInv = events / inv
	}
	gbs := inv * s.routerSeconds(perInv) * float64(s.RouterMemoryMB) / 1024
	calls := inv
	if s.StreamConsumers > 1 {
		// The aggregator reads the same batches (its own mapping, the
		// same batch size). The reward Lambda's few invocations a window
		// are left out.
		gbs += inv * s.aggregatorSeconds(perInv) * float64(s.AggregatorMemoryMB) / 1024
		calls += inv
	}
	u[lLambdaReq] = calls / 1e6 * pr.LambdaRequestsMillion
	u[lLambdaDur] = gbs * s.lambdaGBSecond()
	reqBytes := s.EventsPerRequest*float64(s.EventBytes) + float64(s.RequestOverheadBytes) + float64(b.ResponseBytes)
	clients := rps * 60 / b.ClientRequestsPerMinute
	lcu := math.Max(math.Max(rps/s.RequestsPerConnection/ALBNewConnectionsPerSecond, clients/ALBActiveConnections),
		rps*reqBytes*3600/ALBBytesPerHour)
	u[lALBLCU] = lcu * pr.ALBLCUHour / 3600
	if b.WAF {
		u[lWAFReq] = rps / 1e6 * pr.WAFRequestsM
	}
	// What the tasks send to AWS APIs: the Kinesis records (TLS and HTTP
	// framing ignored), through the endpoints or the NAT gateway.
	kinesisGB := records * recordBytes / gib
	if b.VPCEndpoints {
		u[lNetData] = kinesisGB * pr.EndpointGB
	} else {
		u[lNetData] = kinesisGB * pr.NATGB
	}
	u[lNetOut] = rps * float64(b.ResponseBytes) / gib * pr.InternetOutGB
	logBytes := rps*b.IngestLogBytesPerRequest + calls*b.LambdaLogBytesPerInvocation
	u[lLogsIngest] = logBytes / gib * pr.LogsIngestGB
	if b.ALBAccessLogs {
		// Stored for the retention; billed here as the steady state each
		// second of traffic adds (bytes × retention in months).
		u[lALBLogs] = rps * b.ALBLogBytesPerRequest / gib * pr.S3StandardGB * float64(b.ALBLogRetentionDays) / 30.4
	}
	return u
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }

func (s Settings) monthlyCost(p *Plan, traffic []segment, ecs, kin []level, baseTasks, baseKin int) Cost {
	pr := s.Prices
	month := float64(HoursPerMonth)
	secs := month * 3600
	hourly := s.fargateHourly()

	fargate := month * float64(baseTasks) * hourly
	fargateExtra := 0.0
	for _, l := range ecs {
		fargateExtra += l.End.Sub(l.Start).Hours() * float64(l.N-baseTasks) * hourly
	}
	shardHours := month * float64(baseKin)
	shards, shardsExtra := 0.0, 0.0
	if s.KinesisMode == Provisioned {
		shards = shardHours * pr.KinesisShardHour
		for _, l := range kin {
			shardsExtra += l.End.Sub(l.Start).Hours() * float64(l.N-baseKin) * pr.KinesisShardHour
			shardHours += l.End.Sub(l.Start).Hours() * float64(l.N-baseKin)
		}
	} else {
		shards = month * pr.KinesisODStreamHour
		shardHours = month * float64(p.Baseline.KinesisShards)
	}

	base := s.usageAt(s.BaselineRequestsPerMinute)
	u := s.usageAt(s.meanRPM()).times(secs)
	ux := usage{}
	peak := s.BaselineRequestsPerMinute
	extraRequests := 0.0
	for _, sg := range traffic {
		peak = math.Max(peak, sg.RPM)
		d := sg.End.Sub(sg.Start).Seconds()
		ux = ux.plus(s.usageAt(sg.RPM).minus(base).times(d))
		extraRequests += math.Max(0, sg.RPM-s.BaselineRequestsPerMinute) / 60 * d
	}
	requests := s.meanRPM()/60*secs + extraRequests
	events := requests * s.EventsPerRequest

	outage := s.sqsOutage(peak / 60 * s.EventsPerRequest)
	sqsOutage := s.OutagesPerMonth * s.OutageDuration.Hours() * outage.BilledRequestsPerHour / 1e6 * pr.SQSRequestsMillion

	var lines []Line
	add := func(service, item string, usd float64, assumption string, args ...any) {
		lines = append(lines, Line{Service: service, Item: item, USD: usd, Assumption: fmt.Sprintf(assumption, args...)})
	}
	usageLine := func(key string) float64 { return u[key] + ux[key] }

	add("Fargate", "ingest tasks", fargate+fargateExtra, "%d tasks × %.0f h + broadcasts' extra task-hours; %g vCPU, %g GB, Linux/%s", baseTasks, month, s.TaskVCPU, s.TaskMemoryGB, s.Arch)
	if s.KinesisMode == Provisioned {
		add("Kinesis", "shard-hours", shards+shardsExtra, "%d shards × %.0f h + the broadcasts' shard steps", baseKin, month)
		add("Kinesis", "PUT payload units", usageLine(lKinesisPut), "%.0f events a record (%.0f B), 25 KB units", s.eventsPerRecord(), s.recordBytes())
	} else {
		add("Kinesis", "stream-hours", shards, "one on-demand stream × %.0f h", month)
		add("Kinesis", "data in and out", usageLine(lKinesisOD), "records rounded up to 1 KB in; %d consumers read", s.StreamConsumers)
	}
	add("Kinesis", "aggregates stream", month*pr.KinesisShardHour, "terraform's aggregates stream: 1 provisioned shard (its PUTs are a few per window)")
	add("Firehose", "ingestion", usageLine(lFirehoseIn), "%d-byte events as NDJSON, packed records rounded up to 5 KB", s.EventBytes)
	if s.ParquetConversion {
		add("Firehose", "Parquet conversion", usageLine(lFirehoseConv), "the same billed GB")
	}
	perInv := p.Baseline.RouterRecordsPerInvocation * p.Baseline.EventsPerRecord
	add("Lambda", "requests", usageLine(lLambdaReq), "router + aggregator, one invocation per %.0f records", p.Baseline.RouterRecordsPerInvocation)
	add("Lambda", "duration", usageLine(lLambdaDur), "%s; router %s + %s/event at %d MB (%.0f ms for %.0f events), aggregator %s + %s/event at %d MB",
		s.Arch, s.RouterDuration, s.RouterEventCost, s.RouterMemoryMB, s.routerSeconds(perInv)*1000, perInv, s.AggregatorDuration, s.AggregatorEventCost, s.AggregatorMemoryMB)
	add("ALB", "hours", month*pr.ALBHour, "one load balancer")
	add("ALB", "LCU-hours", usageLine(lALBLCU), "largest of new connections (%g requests each), active connections (a client every %g requests/min keeps one open) and processed bytes (%d B of headers, %d B response)",
		s.RequestsPerConnection, s.Bill.ClientRequestsPerMinute, s.RequestOverheadBytes, s.Bill.ResponseBytes)
	add("SQS", "dead-letter queue in outages", sqsOutage, "%g outage(s) of %s a month at the peak", s.OutagesPerMonth, s.OutageDuration)
	tasksAvg := fargate/hourly/month + fargateExtra/hourly/month
	add("SQS", "redrive polling", tasksAvg*3*60*month/1e6*pr.SQSRequestsMillion, "each task long-polls the DLQ (20 s waits: 3 ReceiveMessage a minute)")

	s.billLines(p, add, u, ux, requests, events, shardHours/month, tasksAvg)

	var c Cost
	extra := fargateExtra + shardsExtra
	for _, v := range ux {
		extra += v
	}
	for i := range lines {
		lines[i].USD = round2(lines[i].USD)
		c.Total += lines[i].USD
		switch lines[i].Service {
		case "Fargate":
			c.Fargate += lines[i].USD
		case "Kinesis":
			c.Kinesis += lines[i].USD
		case "Firehose":
			c.Firehose += lines[i].USD
		case "Lambda":
			c.Lambda += lines[i].USD
		case "ALB":
			c.ALB += lines[i].USD
		case "SQS":
			c.SQS += lines[i].USD
		}
	}
	sort.SliceStable(lines, func(i, j int) bool { return serviceOrder(lines[i].Service) < serviceOrder(lines[j].Service) })
	c.Lines = lines
	c.Total = round2(c.Total)
	c.Fargate, c.Kinesis, c.Firehose, c.Lambda, c.ALB, c.SQS = round2(c.Fargate), round2(c.Kinesis), round2(c.Firehose), round2(c.Lambda), round2(c.ALB), round2(c.SQS)
	c.BroadcastExtra = round2(extra)
	c.Events = math.Round(events)
	if events > 0 {
		c.PerMillionEvents = math.Round(c.Total/events*1e6*10000) / 10000
	}
	c.Month12Total = round2(c.Total - s.lakeStorage(events, 1) + s.lakeStorage(events, 12))
	return c
}

// serviceOrder keeps the bill's services in a fixed order.
func serviceOrder(svc string) int {
	for i, s := range []string{"Fargate", "Kinesis", "Firehose", "Lambda", "ALB", "WAF", "SQS", "Network", "CloudWatch", "S3", "KMS", "Glue", "Secrets Manager", "ECR", "EventBridge Scheduler"} {
		if s == svc {
			return i
		}
	}
	return 100
}

// meanRPM is the everyday mean in requests a minute (from EventsPerDay
// when set).
func (s Settings) meanRPM() float64 {
	if s.EventsPerDay > 0 {
		return s.EventsPerDay / 1440 / s.EventsPerRequest
	}
	return s.MeanRequestsPerMinute
}

// DailyEvents is the everyday events a day the settings imply.
func (s Settings) DailyEvents() float64 { return s.meanRPM() * 1440 * s.EventsPerRequest }
