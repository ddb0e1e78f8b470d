package plan

import (
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

func monthSchedule(t *testing.T) []Broadcast {
	t.Helper()
	f, err := os.Open("testdata/schedule-month.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bs, err := ParseSchedule(f, ScheduleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

// monthSettings is the month of issue 13: 500 M events a day, prime
// time 600,000 requests/min every evening (the baseline), four 3-hour
// sport events at 2.5 M/min.
func monthSettings() Settings {
	s := DefaultSettings("us-east-1")
	s.EventsPerDay = 500e6
	return s
}

func line(t *testing.T, c Cost, service, item string) Line {
	t.Helper()
	for _, l := range c.Lines {
		if l.Service == service && l.Item == item {
			return l
		}
	}
	t.Fatalf("no line %s %s in %v", service, item, c.Lines)
	return Line{}
}

func TestEventsPerRecordFromTheAggregationTarget(t *testing.T) {
	s := DefaultSettings("us-east-1")
	// 500-byte events, 36-byte keys: (25,600 − 61 − 36) ÷ (500 + 10 + 36) = 46.
	if n := s.eventsPerRecord(); n != 46 {
		t.Errorf("events per record %v, want 46", n)
	}
	if b := s.recordBytes(); b > PutPayloadUnitBytes || b < PutPayloadUnitBytes-600 {
		t.Errorf("aggregated record %v bytes: want just under one 25 KiB PUT payload unit", b)
	}
	s.EventBytes = 329 // the measured realistic mix
	if n := s.eventsPerRecord(); n != 68 {
		t.Errorf("329-byte events: %v a record, want 68", n)
	}
	s.EventsPerRecord = 10
	if n := s.eventsPerRecord(); n != 10 {
		t.Errorf("explicit 10: got %v", n)
	}
	s.EventsPerRecord, s.EventBytes = 0, 40<<10
	if n := s.eventsPerRecord(); n != 1 {
		t.Errorf("events over the target: %v a record, want 1", n)
	}
}

func TestShardsFromBytesAndRecords(t *testing.T) {
	s := DefaultSettings("us-east-1")
	c := s.CapacityAt(2_500_000)
	// 41,667 events/s × 1.3 = 54,167/s; ÷ 46 = 1,178 records/s (2 shards
	// by records); × 25,213 B = 28.3 MiB/s (29 shards by bytes).
	if c.KinesisShardsByRecords != 2 || c.KinesisShardsByBytes != 29 || c.KinesisShards != 29 {
		t.Errorf("sport peak: %d by records, %d by bytes, %d shards; want 2, 29, 29", c.KinesisShardsByRecords, c.KinesisShardsByBytes, c.KinesisShards)
	}
	s.EventsPerRecord = 1
	if c := s.CapacityAt(2_500_000); c.KinesisShards != 55 {
		t.Errorf("one event a record: %d shards, want 55", c.KinesisShards)
	}
}

func TestLambdaDurationGrowsWithEvents(t *testing.T) {
	s := DefaultSettings("us-east-1")
	// The 6 MB payload caps a batch of 25 KB aggregated records at 184.
	if n := s.recordsPerInvocation(); n != 184 {
		t.Errorf("records per invocation %v, want 184 (6 MiB ÷ (25,213 × 4/3 + 400))", n)
	}
	short, long := s.routerSeconds(100), s.routerSeconds(10_000)
	// 40 ms + n × 10 µs × 1769/1024.
	if math.Abs(short-(0.040+100*10e-6*1769/1024)) > 1e-9 || long <= short*5 {
		t.Errorf("router %v s for 100 events, %v s for 10,000", short, long)
	}
	s.EventsPerRecord = 1
	if n := s.recordsPerInvocation(); n != float64(s.RouterBatchSize) {
		t.Errorf("small records: %v an invocation, want the batch size", n)
	}
	// Lambda's bill follows the events, not a fixed time per batch.
	a := DefaultSettings("us-east-1")
	a.RouterEventCost = 20e3 // 20 µs
	if a.usageAt(600_000)[lLambdaDur] <= DefaultSettings("us-east-1").usageAt(600_000)[lLambdaDur]*1.2 {
		t.Error("doubling the per-event cost did not raise the Lambda duration bill")
	}
}

func TestArchPrices(t *testing.T) {
	s := DefaultSettings("us-east-1")
	arm := s.fargateHourly()
	s.Arch = ArchX86
	x86 := s.fargateHourly()
	if math.Abs(arm-(0.03238+2*0.00356)) > 1e-12 || math.Abs(x86-(0.04048+2*0.004445)) > 1e-12 {
		t.Errorf("task-hour arm64 %v, x86 %v", arm, x86)
	}
	if r := x86 / arm; r < 1.2 || r > 1.3 {
		t.Errorf("x86 is %.2f× arm64, want about 1.25×", r)
	}
	if s.lambdaGBSecond() != s.Prices.LambdaGBSecond {
		t.Error("x86 Lambda price")
	}
	s.Arch = "sparc"
	if s.Validate() == nil {
		t.Error("arch sparc validated")
	}
}

func TestEventsPerDaySetsTheMean(t *testing.T) {
	s := DefaultSettings("us-east-1")
	if d := s.DailyEvents(); d != 350_000*1440 {
		t.Errorf("daily events %v", d)
	}
	s.EventsPerDay = 500e6
	s.EventsPerRequest = 4.5
	if got := s.meanRPM(); math.Abs(got-500e6/1440/4.5) > 1e-6 {
		t.Errorf("mean %v requests/min", got)
	}
	if d := s.DailyEvents(); math.Abs(d-500e6) > 1e-3 {
		t.Errorf("daily events %v, want 500 M", d)
	}
}

// TestTheMonthsWholeBill is the month of issue 13 with every line: the
// lines, the shards at the peak and the per-million figure docs/capacity.md
// reports.
func TestTheMonthsWholeBill(t *testing.T) {
	p, err := Build(monthSchedule(t), monthSettings(), "")
	if err != nil {
		t.Fatal(err)
	}
	if n := p.peak().KinesisShards; n > 30 {
		t.Errorf("%d shards at the sport peak, want at most 30", n)
	}
	c := p.MonthlyCost
	for _, want := range [][2]string{
		{"Fargate", "ingest tasks"}, {"Kinesis", "shard-hours"}, {"Kinesis", "PUT payload units"}, {"Kinesis", "aggregates stream"},
		{"Firehose", "ingestion"}, {"Firehose", "Parquet conversion"}, {"Lambda", "requests"}, {"Lambda", "duration"},
		{"ALB", "hours"}, {"ALB", "LCU-hours"}, {"WAF", "web ACL and rules"}, {"WAF", "requests"},
		{"SQS", "dead-letter queue in outages"}, {"SQS", "redrive polling"},
		{"Network", "VPC endpoint hours"}, {"Network", "VPC endpoint data"}, {"Network", "data out to the internet"},
		{"CloudWatch", "logs ingestion"}, {"CloudWatch", "logs storage"}, {"CloudWatch", "alarms"}, {"CloudWatch", "dashboard"}, {"CloudWatch", "metrics"},
		{"S3", "lake storage (month 1)"}, {"S3", "lake PUTs"}, {"S3", "failed-events and dead-letter prefixes"}, {"S3", "ALB access logs"},
		{"KMS", "customer managed key"}, {"KMS", "requests"}, {"Glue", "Data Catalog"}, {"Secrets Manager", "write keys secret"}, {"ECR", "image storage"},
	} {
		line(t, c, want[0], want[1])
	}
	// 500 M a day for 730 h plus four broadcasts of 3 h at 1.9 M/min above
	// the baseline (their 30 min padding carries no traffic).
	want := 500e6/1440*60*730 + 4*3*60*1.9e6
	if math.Abs(c.Events-want) > 1 {
		t.Errorf("month's events %v, want %v", c.Events, want)
	}
	// WAF inspects every request at $0.60 a million: at one event a
	// request that alone is over the $0.045 per million goal.
	waf := line(t, c, "WAF", "requests")
	if math.Abs(waf.USD-c.Events/1e6*0.60) > 0.02 {
		t.Errorf("WAF requests $%.2f, want $0.60 a million requests", waf.USD)
	}
	if c.Month12Total <= c.Total {
		t.Error("month 12 is not dearer than month 1")
	}
	// Without the endpoints the NAT gateway processes the records.
	s := monthSettings()
	s.Bill.VPCEndpoints = false
	q, err := Build(monthSchedule(t), s, "")
	if err != nil {
		t.Fatal(err)
	}
	nat := line(t, q.MonthlyCost, "Network", "NAT data processed").USD
	vpce := line(t, c, "Network", "VPC endpoint data").USD
	if math.Abs(nat/vpce-4.5) > 0.01 {
		t.Errorf("NAT data $%.2f vs endpoint data $%.2f: want $0.045 vs $0.01 per GB", nat, vpce)
	}
	var sb strings.Builder
	if err := p.WriteTable(&sb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"500,000,000 a day", "per million events", "month 12", "WAF"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
}

func TestLakeStorageTiersDown(t *testing.T) {
	s := DefaultSettings("us-east-1")
	events := 15e9
	gb := events * s.Bill.ParquetBytesPerEvent / gib
	m1 := s.lakeStorage(events, 1)
	if math.Abs(m1-gb/2*0.023) > 1e-9 {
		t.Errorf("month 1 $%.2f, want half a month's Parquet in S3 Standard", m1)
	}
	m12 := s.lakeStorage(events, 12)
	// Twelve months all in Standard would be 11.5 × gb × 0.023.
	if m12 >= 11.5*gb*0.023 || m12 <= 11.5*gb*0.004 {
		t.Errorf("month 12 $%.2f: want between all-archive and all-Standard", m12)
	}
	s.Bill.LakeExpirationDays = 60
	// Expired after 60 days: only the last two cohorts are left (plus
	// their Intelligent-Tiering monitoring and transition requests).
	if e, two := s.lakeStorage(events, 12), gb/2*0.023+gb*0.023; e >= m12 || e < two || e > two+1.5 {
		t.Errorf("with 60-day expiration month 12 costs $%.2f (of $%.2f without), want the last two months'", e, m12)
	}
}

// At one event a request a task's 10 ms batch cannot fill 46-event records
// over 29 shards (measured on issue 13's producer): the plan says so.
func TestLingerBoundsAggregation(t *testing.T) {
	s := DefaultSettings("us-east-1")
	c := s.CapacityAt(2_500_000)
	if !strings.Contains(strings.Join(c.QuotaWarnings, "\n"), "aggregated records carry about 1.0 events") {
		t.Errorf("no linger warning at the peak: %v", c.QuotaWarnings)
	}
	// 22 tasks × 50 ms: 123 events a batch over 29 shards, 4.2 a record.
	s.BatchLinger = 50 * time.Millisecond
	if f := s.lingerFill(s.CapacityAt(2_500_000)); math.Abs(f-4.2) > 0.05 {
		t.Errorf("50 ms linger fills %.2f events a record, want about 4.2", f)
	}
	// Requests of many events from one session fill a record each.
	s.BatchLinger = 10 * time.Millisecond
	s.EventsPerRequest = 20
	if f := s.lingerFill(s.CapacityAt(2_500_000 / 20)); f < 20 {
		t.Errorf("20-event requests fill %.1f a record, want at least 20", f)
	}
	s = DefaultSettings("us-east-1")
	s.EventsPerRecord = 1
	if strings.Contains(strings.Join(s.CapacityAt(2_500_000).QuotaWarnings, "\n"), "batch holds") {
		t.Error("linger warning with an explicit events per record")
	}
}
