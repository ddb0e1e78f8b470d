package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v.UTC()
}

// bookSettings are the reference chapter's assumptions: no headroom, one
// event per request, events well under 25 KB.
func bookSettings() Settings {
	s := DefaultSettings("us-east-1")
	s.Headroom = 0
	s.EventsPerRecord = 1 // the book's stream: one event a record
	return s
}

func TestBookArithmetic(t *testing.T) {
	s := bookSettings()
	c := s.CapacityAt(600_000)
	if c.RequestsPerSecond != 10_000 {
		t.Errorf("600,000 requests/min = %v requests/s, want 10,000", c.RequestsPerSecond)
	}
	if c.EventsPerSecond != 10_000 {
		t.Errorf("events/s = %v, want 10,000 at one event per request", c.EventsPerSecond)
	}
	// 10,000 records/s at 1,000 records/s per shard; the bytes bound
	// (10,000 × 536 B = 5.1 MiB/s) is lower.
	if c.KinesisShardsByRecords != 10 || c.KinesisShards != 10 {
		t.Errorf("shards = %d (by records %d, by bytes %d), want 10", c.KinesisShards, c.KinesisShardsByRecords, c.KinesisShardsByBytes)
	}
	if c.KinesisShardsByBytes != 6 {
		t.Errorf("shards by bytes = %d, want 6", c.KinesisShardsByBytes)
	}
	if c.RouterConcurrency != 10 {
		t.Errorf("router concurrency = %d, want shards × factor 1 = 10", c.RouterConcurrency)
	}

	// The reference team runs 40 shards all the time: 4× the need.
	s.Headroom = 3
	if got := s.CapacityAt(600_000).KinesisShards; got != 40 {
		t.Errorf("with 300%% headroom: %d shards, want 40", got)
	}

	// Large events: the bytes bound wins.
	s = bookSettings()
	s.EventBytes = 2000
	if c := s.CapacityAt(600_000); c.KinesisShards != 20 || c.KinesisShardsByBytes != 20 {
		t.Errorf("2,000-byte events: %d shards (by bytes %d), want 20", c.KinesisShards, c.KinesisShardsByBytes)
	}

	// The record peak: 2.5 M requests/min.
	s = bookSettings()
	if c := s.CapacityAt(2_500_000); math.Round(c.RequestsPerSecond) != 41_667 || c.KinesisShards != 42 {
		t.Errorf("2.5 M/min: %v requests/s, %d shards; want 41,667 and 42", c.RequestsPerSecond, c.KinesisShards)
	}

	// Parallelization factor multiplies the router's concurrency.
	s = bookSettings()
	s.ParallelizationFactor = 3
	if c := s.CapacityAt(600_000); c.RouterConcurrency != 30 || c.LambdaConcurrency != 60 {
		t.Errorf("factor 3: router %d, lambda %d; want 30 and 60 (two consumers)", c.RouterConcurrency, c.LambdaConcurrency)
	}
}

func TestPutPayloadUnits(t *testing.T) {
	s := bookSettings()
	small := s.usageAt(600_000)[lKinesisPut]
	s.EventBytes = 26 << 10 // over 25 KB: two PUT payload units a record
	big := s.usageAt(600_000)[lKinesisPut]
	if math.Abs(big/small-2) > 1e-9 {
		t.Errorf("26 KB events cost %.4f× 500 B events in PUT units, want 2×", big/small)
	}
}

func TestFirehoseBillingRounding(t *testing.T) {
	s := bookSettings()
	find := func(fs []FirehoseStream, typ string) FirehoseStream {
		for _, f := range fs {
			if f.Type == typ {
				return f
			}
		}
		t.Fatalf("no %s stream", typ)
		return FirehoseStream{}
	}
	// 10,000 events/s, 35 % impressions: 3,500/s. Batches of 500 records
	// make 20 invocations/s, each packing its 175 impressions into one
	// record of 175 × 501 = 87,675 bytes, billed as 90 KB (92,160 bytes).
	packed := find(s.CapacityAt(600_000).Firehose, "impression")
	if packed.EventsPerSecond != 3500 || packed.RecordsPerSecond != 20 || packed.RequestsPerSecond != 20 {
		t.Errorf("packed: %v events/s, %v records/s, %v calls/s; want 3,500, 20, 20", packed.EventsPerSecond, packed.RecordsPerSecond, packed.RequestsPerSecond)
	}
	if want := 20 * 92160.0 / (1 << 20); math.Abs(packed.BilledMiBPerSecond-want) > 1e-9 {
		t.Errorf("packed billed %v MiB/s, want %v", packed.BilledMiBPerSecond, want)
	}
	// One event per record: each 501-byte line is billed 5 KB.
	s.FirehosePackBytes = 0
	single := find(s.CapacityAt(600_000).Firehose, "impression")
	if single.RecordsPerSecond != 3500 {
		t.Errorf("unpacked %v records/s, want 3,500", single.RecordsPerSecond)
	}
	if want := 3500 * 5120.0 / (1 << 20); math.Abs(single.BilledMiBPerSecond-want) > 1e-9 {
		t.Errorf("unpacked billed %v MiB/s, want %v", single.BilledMiBPerSecond, want)
	}
	if single.MiBPerSecond != packed.MiBPerSecond {
		t.Error("packing changed the bytes sent")
	}
	// The bill follows: about 9.7× the ingest and conversion charges.
	s.FirehosePackBytes = FirehoseMaxRecordBytes
	p := s.usageAt(600_000)[lFirehoseIn]
	s.FirehosePackBytes = 0
	if r := s.usageAt(600_000)[lFirehoseIn] / p; r < 9 || r > 10.5 {
		t.Errorf("unpacked Firehose costs %.2f× packed, want about 9.7×", r)
	}
}

func TestShardSteps(t *testing.T) {
	cases := []struct {
		from, to int
		want     []int
	}{
		{13, 55, []int{26, 52, 55}},
		{55, 13, []int{28, 14, 13}},
		{10, 10, nil},
		{3, 1, []int{2, 1}},
		{1, 2, []int{2}},
		{1, 1000, []int{2, 4, 8, 16, 32, 64, 128, 256, 512, 1000}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%d→%d", c.from, c.to), func(t *testing.T) {
			got := shardSteps(c.from, c.to)
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("steps %v, want %v", got, c.want)
			}
			cur := c.from
			for _, n := range got {
				if n > 2*cur || 2*n < cur {
					t.Errorf("step %d→%d is beyond double/half", cur, n)
				}
				cur = n
			}
		})
	}
}

func electionNight(t *testing.T) []Broadcast {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "schedule-election-night.csv"))
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

func TestOverlappingBroadcastsAdd(t *testing.T) {
	p, err := Build(electionNight(t), DefaultSettings("us-east-1"), "")
	if err != nil {
		t.Fatal(err)
	}
	peak := p.peak()
	if peak.RequestsPerMinute != 2_500_000 {
		t.Fatalf("peak %v requests/min, want 2,500,000 (600k baseline + 1.0M hockey + 0.9M election)", peak.RequestsPerMinute)
	}
	if got := strings.Join(peak.Broadcasts, "+"); got != "Ice hockey final+Election results" {
		t.Errorf("peak broadcasts %q", got)
	}
	// The overlap starts at 20:00 EEST = 17:00 UTC, minus the lead time.
	if want := mustTime(t, "2027-04-18T16:30:00Z"); !peak.Start.Equal(want) {
		t.Errorf("peak starts %s, want %s", peak.Start, want)
	}
	// Capacity is in place for every broadcast from its lead time on.
	for _, b := range electionNight(t) {
		for at := b.Start.Add(-p.settings.LeadTime); at.Before(b.End); at = at.Add(5 * time.Minute) {
			need := p.settings.CapacityAt(b.PeakRequestsPerMinute)
			if got := ecsAt(p, at); got < need.FargateTasks {
				t.Fatalf("%s at %s: %d tasks scheduled, need %d", b.Title, at, got, need.FargateTasks)
			}
			if got := p.ShardsAt(at.Add(-p.settings.ReshardTime)); at.Sub(b.Start.Add(-p.settings.LeadTime)) >= p.settings.ReshardTime && got < need.KinesisShards {
				t.Fatalf("%s at %s: %d shards, need %d", b.Title, at, got, need.KinesisShards)
			}
		}
	}
}

// ecsAt is the scheduled minimum in force at t.
func ecsAt(p *Plan, t time.Time) int {
	n := p.Baseline.FargateTasks
	for _, a := range p.ECSActions() {
		if !a.At.After(t) {
			n = a.MinCapacity
		}
	}
	return n
}

// shardsReadyAt is the shard count complete at t: the target of the last
// step that finished by then.
func shardsReadyAt(p *Plan, t time.Time) int {
	return p.ShardsAt(t.Add(-p.settings.ReshardTime))
}

func TestShardStepsRespectLimits(t *testing.T) {
	s := DefaultSettings("us-east-1")
	s.MergeGap = 0
	// Six big broadcasts a day, 2 h apart: each wants 13→55→13, three
	// steps each way, far more than ten UpdateShardCount calls a day.
	day := mustTime(t, "2027-06-01T06:00:00Z")
	var bs []Broadcast
	for i := range 6 {
		start := day.Add(time.Duration(i) * 150 * time.Minute)
		bs = append(bs, Broadcast{Title: fmt.Sprintf("match %d", i+1), Start: start, End: start.Add(time.Hour), PeakRequestsPerMinute: 2_500_000})
	}
	p, err := Build(bs, s, "")
	if err != nil {
		t.Fatal(err)
	}
	var calls []Action
	for _, a := range p.Actions {
		if a.Kind == ActionShardCount {
			calls = append(calls, a)
		}
	}
	if len(calls) == 0 {
		t.Fatal("no shard steps")
	}
	for i, a := range calls {
		if a.TargetShards > 2*a.FromShards || 2*a.TargetShards < a.FromShards {
			t.Errorf("step %d→%d beyond double/half", a.FromShards, a.TargetShards)
		}
		if i > 0 && a.FromShards != calls[i-1].TargetShards {
			t.Errorf("step %d starts from %d, previous ended at %d", i, a.FromShards, calls[i-1].TargetShards)
		}
		if i > 0 && a.At.Sub(calls[i-1].At) < s.ReshardTime {
			t.Errorf("step at %s starts before the previous (%s) has had %s", a.At, calls[i-1].At, s.ReshardTime)
		}
		n := 0
		for _, b := range calls {
			if !b.At.Before(a.At) && b.At.Before(a.At.Add(24*time.Hour)) {
				n++
			}
		}
		if n > 10 {
			t.Errorf("%d UpdateShardCount calls in the 24 h from %s, limit 10", n, a.At)
		}
	}
	for _, b := range bs {
		need := s.CapacityAt(b.PeakRequestsPerMinute).KinesisShards
		if got := shardsReadyAt(p, b.Start.Add(-s.LeadTime)); got < need {
			t.Errorf("%s: %d shards ready at its lead time, need %d", b.Title, got, need)
		}
	}
}

func TestMoreBroadcastsThanScheduledActions(t *testing.T) {
	s := DefaultSettings("us-east-1")
	s.MergeGap = 0
	s.LeadTime, s.ScaleInDelay = 0, 0
	// 150 short broadcasts in one day (alternating sizes): 300 level
	// changes, over the 200 scheduled actions a scalable target may hold.
	day := mustTime(t, "2027-06-01T00:00:00Z")
	var bs []Broadcast
	for i := range 150 {
		start := day.Add(time.Duration(i) * 9 * time.Minute)
		peak := 1_200_000.0
		if i%2 == 1 {
			peak = 2_000_000
		}
		bs = append(bs, Broadcast{Title: fmt.Sprintf("clip %d", i), Start: start, End: start.Add(4 * time.Minute), PeakRequestsPerMinute: peak})
	}
	unmerged := levels(demand(bs, s.BaselineRequestsPerMinute, 0, 0), func(rpm float64) int { return s.CapacityAt(rpm).FargateTasks }, s.CapacityAt(s.BaselineRequestsPerMinute).FargateTasks)
	if len(unmerged)+1 <= 200 {
		t.Fatalf("test schedule has only %d level changes", len(unmerged)+1)
	}
	p, err := Build(bs, s, "")
	if err != nil {
		t.Fatal(err)
	}
	ecs := p.ECSActions()
	for _, a := range ecs {
		n := 0
		for _, b := range ecs {
			if !b.At.Before(a.At) && b.At.Before(a.At.Add(2*s.Horizon)) {
				n++
			}
		}
		if n > 200 {
			t.Fatalf("%d scheduled actions within %s of %s, limit 200", n, 2*s.Horizon, a.At)
		}
	}
	names := map[string]bool{}
	for _, a := range ecs {
		if names[a.Name] {
			t.Errorf("duplicate action name %s", a.Name)
		}
		names[a.Name] = true
		if !strings.HasPrefix(a.Schedule, "at(") {
			t.Errorf("schedule %q", a.Schedule)
		}
	}
	for _, b := range bs {
		need := s.CapacityAt(b.PeakRequestsPerMinute).FargateTasks
		for _, at := range []time.Time{b.Start, b.End.Add(-time.Second)} {
			if got := ecsAt(p, at); got < need {
				t.Fatalf("%s at %s: %d tasks, need %d", b.Title, at, got, need)
			}
		}
	}

	s.ReservedScheduledActions = 150
	p, err = Build(bs, s, "")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.ECSActions()); n > 50 {
		t.Errorf("with 150 actions reserved for others, %d planned, want ≤ 50", n)
	}
}

func TestCloseBroadcastsMerge(t *testing.T) {
	s := DefaultSettings("us-east-1")
	a := Broadcast{Title: "first half", Start: mustTime(t, "2027-06-01T18:00:00Z"), End: mustTime(t, "2027-06-01T18:45:00Z"), PeakRequestsPerMinute: 2_000_000}
	b := Broadcast{Title: "second half", Start: mustTime(t, "2027-06-01T20:05:00Z"), End: mustTime(t, "2027-06-01T20:50:00Z"), PeakRequestsPerMinute: 2_000_000}
	// Lull: 18:45+30m = 19:15 to 20:05−30m = 19:35, 20 minutes.
	p, err := Build([]Broadcast{a, b}, s, "")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.ECSActions()); n != 2 {
		t.Errorf("%d ECS actions, want 2 (the 20-minute lull is held)", n)
	}
	s.MergeGap = 10 * time.Minute
	p, err = Build([]Broadcast{a, b}, s, "")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.ECSActions()); n != 4 {
		t.Errorf("%d ECS actions with a 10-minute merge gap, want 4", n)
	}
}

func TestTimeZonesAndDST(t *testing.T) {
	// Helsinki leaves summer time on 2026-10-25: 04:00 EEST becomes
	// 03:00 EET, so 03:30 happens twice, told apart by the offset.
	csv := `start,end,title,peak_requests_per_minute
2026-10-25T03:30:00+03:00,2026-10-25T03:45:00+03:00,first 03:30,900000
2026-10-25T03:30:00+02:00,2026-10-25T03:45:00+02:00,second 03:30,900000
2026-10-25T02:00:00+03:00,2026-10-25T05:00:00+02:00,across the change,700000
2027-03-28T02:00:00+02:00,2027-03-28T04:00:00+03:00,spring forward,700000
2027-04-18T12:00:00-04:00,2027-04-18T17:00:00Z,New York,700000
`
	bs, err := ParseSchedule(strings.NewReader(csv), ScheduleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	byTitle := map[string]Broadcast{}
	for _, b := range bs {
		byTitle[b.Title] = b
		if b.Start.Location() != time.UTC {
			t.Errorf("%s: start not in UTC", b.Title)
		}
	}
	if d := byTitle["second 03:30"].Start.Sub(byTitle["first 03:30"].Start); d != time.Hour {
		t.Errorf("the two 03:30s are %s apart, want 1h", d)
	}
	if d := byTitle["across the change"].End.Sub(byTitle["across the change"].Start); d != 4*time.Hour {
		t.Errorf("02:00 EEST to 05:00 EET lasts %s, want 4h", d)
	}
	if d := byTitle["spring forward"].End.Sub(byTitle["spring forward"].Start); d != time.Hour {
		t.Errorf("02:00 EET to 04:00 EEST lasts %s, want 1h", d)
	}
	if got := byTitle["New York"].Start; !got.Equal(mustTime(t, "2027-04-18T16:00:00Z")) {
		t.Errorf("12:00-04:00 is %s, want 16:00Z", got)
	}
	p, err := Build(bs, DefaultSettings("eu-west-1"), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range p.ECSActions() {
		want := "at(" + a.At.UTC().Format("2006-01-02T15:04:05") + ")"
		if a.Schedule != want || strings.ContainsAny(strings.TrimPrefix(a.Schedule, "at("), "Z+") {
			t.Errorf("schedule %q, want %q (UTC, no offset)", a.Schedule, want)
		}
	}
	first := p.ECSActions()[0]
	if want := mustTime(t, "2026-10-24T22:30:00Z"); !first.At.Equal(want) {
		t.Errorf("first action at %s, want %s (02:00 EEST − 30 min lead)", first.At, want)
	}
}

func TestParseSchedule(t *testing.T) {
	good := []struct {
		name, in string
		perView  float64
		want     []float64
	}{
		{"csv", "start,end,title,peak_requests_per_minute\n2027-01-01T10:00:00Z,2027-01-01T11:00:00Z,a,600000\n", 0, []float64{600000}},
		{"csv reordered with viewers", "title,concurrent_viewers,start,end\nb,500000,2027-01-01T10:00:00+02:00,2027-01-01T11:00:00+02:00\n", 0, []float64{1_000_000}},
		{"csv viewers custom rate", "start,end,title,concurrent_viewers\n2027-01-01T10:00:00Z,2027-01-01T11:00:00Z,a,100000\n", 3, []float64{300000}},
		{"csv both columns one each", "start,end,title,peak_requests_per_minute,concurrent_viewers\n2027-01-01T10:00:00Z,2027-01-01T11:00:00Z,a,,100\n2027-01-01T09:00:00Z,2027-01-01T11:00:00Z,b,700,\n", 0, []float64{700, 200}},
		{"json array", `[{"start":"2027-01-01T10:00:00Z","end":"2027-01-01T11:00:00Z","title":"a","peak_requests_per_minute":5}]`, 0, []float64{5}},
		{"json object", `{"broadcasts":[{"start":"2027-01-01T10:00:00Z","end":"2027-01-01T11:00:00Z","title":"a","concurrent_viewers":10}]}`, 0, []float64{20}},
	}
	for _, c := range good {
		t.Run(c.name, func(t *testing.T) {
			bs, err := ParseSchedule(strings.NewReader(c.in), ScheduleOptions{RequestsPerViewerMinute: c.perView})
			if err != nil {
				t.Fatal(err)
			}
			var got []float64
			for _, b := range bs {
				got = append(got, b.PeakRequestsPerMinute)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("peaks %v, want %v", got, c.want)
			}
		})
	}
	bad := []struct{ name, in, want string }{
		{"empty", "", "empty"},
		{"no offset", "start,end,title,peak_requests_per_minute\n2027-01-01T10:00:00,2027-01-01T11:00:00Z,a,1\n", "RFC 3339"},
		{"end before start", "start,end,title,peak_requests_per_minute\n2027-01-01T11:00:00Z,2027-01-01T10:00:00Z,a,1\n", "not after start"},
		{"both given", "start,end,title,peak_requests_per_minute,concurrent_viewers\n2027-01-01T10:00:00Z,2027-01-01T11:00:00Z,a,1,2\n", "not both"},
		{"neither given", "start,end,title,peak_requests_per_minute\n2027-01-01T10:00:00Z,2027-01-01T11:00:00Z,a,\n", "no peak"},
		{"unknown column", "start,end,title,rpm\n", "unknown column"},
		{"missing title", "start,end,peak_requests_per_minute\n", "missing column"},
		{"negative", "start,end,title,peak_requests_per_minute\n2027-01-01T10:00:00Z,2027-01-01T11:00:00Z,a,-5\n", "out of range"},
		{"not a number", "start,end,title,peak_requests_per_minute\n2027-01-01T10:00:00Z,2027-01-01T11:00:00Z,a,lots\n", "peak_requests_per_minute"},
		{"no rows", "start,end,title,peak_requests_per_minute\n", "no broadcasts"},
		{"json unknown field", `[{"start":"2027-01-01T10:00:00Z","end":"2027-01-01T11:00:00Z","title":"a","rpm":5}]`, "unknown field"},
		{"json no title", `[{"start":"2027-01-01T10:00:00Z","end":"2027-01-01T11:00:00Z","peak_requests_per_minute":5}]`, "title"},
		{"week long", "start,end,title,peak_requests_per_minute\n2027-01-01T10:00:00Z,2027-01-09T11:00:00Z,a,1\n", "7 days"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseSchedule(strings.NewReader(c.in), ScheduleOptions{})
			if !errors.Is(err, ErrSchedule) {
				t.Fatalf("err %v, want ErrSchedule", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("err %q, want it to mention %q", err, c.want)
			}
		})
	}
}

func TestQuotaWarnings(t *testing.T) {
	s := DefaultSettings("us-east-1")
	s.EventsPerRecord = 1 // record-bound quotas
	s.Quotas.FargateVCPU = 10
	s.Quotas.LambdaConcurrency = 50
	s.Quotas.KinesisShards = 40
	c := s.CapacityAt(2_500_000)
	all := strings.Join(c.QuotaWarnings, "\n")
	for _, want := range []string{"Fargate On-Demand vCPU quota of 10", "lambda: 110 concurrent", "shard quota of 40", "firehose impression", "firehose play_progress"} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q:\n%s", want, all)
		}
	}
	// Outside the big three regions Firehose allows 1 MiB/s a stream.
	s = DefaultSettings("eu-north-1")
	c = s.CapacityAt(600_000)
	if !strings.Contains(strings.Join(c.QuotaWarnings, "\n"), "over the 1 MiB/s quota") {
		t.Errorf("eu-north-1 at 600k/min: no Firehose 1 MiB/s warning: %v", c.QuotaWarnings)
	}
	// A small router batch makes PutRecordBatch calls the limit.
	s = DefaultSettings("us-east-1")
	s.EventsPerRecord = 1
	s.RouterBatchSize = 10
	c = s.CapacityAt(2_500_000)
	if !strings.Contains(strings.Join(c.QuotaWarnings, "\n"), "PutRecordBatch calls/s") {
		t.Errorf("batch size 10: no Firehose requests warning: %v", c.QuotaWarnings)
	}
	s = DefaultSettings("us-east-1")
	s.EventsPerRecord = 1
	s.RouterDuration = 2 * time.Second
	if !strings.Contains(strings.Join(s.CapacityAt(600_000).QuotaWarnings, "\n"), "router:") {
		t.Error("a 2 s router at batch 500 handles 250 records/s a shard: no warning")
	}
	s = DefaultSettings("us-east-1")
	s.EventsPerRecord = 5 // what a 10 ms linger fills at this rate
	if w := s.CapacityAt(100_000).QuotaWarnings; len(w) != 0 {
		t.Errorf("100k/min: unexpected warnings %v", w)
	}
}

func TestOnDemand(t *testing.T) {
	s := DefaultSettings("us-east-1")
	s.KinesisMode = OnDemand
	bs := electionNight(t)
	p, err := Build(bs, s, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.actions(ActionShardCount)) != 0 {
		t.Error("on-demand plan has UpdateShardCount steps")
	}
	if !strings.Contains(strings.Join(p.Warnings, "\n"), "only 2× its recent peak") {
		t.Errorf("no 2× warning without warm throughput: %v", p.Warnings)
	}
	s.WarmThroughput = true
	p, err = Build(bs, s, "")
	if err != nil {
		t.Fatal(err)
	}
	warm := p.actions(ActionWarmThroughput)
	if len(warm) == 0 {
		t.Fatal("no warm throughput actions")
	}
	need := s.CapacityAt(2_500_000).KinesisWriteMiBps
	at := mustTime(t, "2027-04-18T17:00:00Z") // both broadcasts on
	if got := p.WarmThroughputAt(at); got < need {
		t.Errorf("warm throughput at the peak %d MiB/s, want ≥ %d", got, need)
	}
	if last := warm[len(warm)-1]; last.WarmThroughputMiBps != p.Baseline.KinesisWriteMiBps {
		t.Errorf("last warm action sets %d MiB/s, want the baseline %d", last.WarmThroughputMiBps, p.Baseline.KinesisWriteMiBps)
	}
	if strings.Contains(strings.Join(p.Warnings, "\n"), "only 2×") {
		t.Error("2× warning despite warm throughput")
	}
}

func TestValidate(t *testing.T) {
	mods := map[string]func(*Settings){
		"factor 11":      func(s *Settings) { s.ParallelizationFactor = 11 },
		"mode":           func(s *Settings) { s.KinesisMode = "turbo" },
		"task rps":       func(s *Settings) { s.TaskRequestsPerSecond = 0 },
		"mix":            func(s *Settings) { s.TypeMix = map[string]float64{"a": 0} },
		"batch":          func(s *Settings) { s.RouterBatchSize = 20000 },
		"price":          func(s *Settings) { s.Prices.ALBHour = -1 },
		"reserved":       func(s *Settings) { s.ReservedScheduledActions = 200 },
		"record too big": func(s *Settings) { s.EventsPerRecord = 3000 },
	}
	for name, mod := range mods {
		s := DefaultSettings("us-east-1")
		mod(&s)
		if err := s.Validate(); err == nil {
			t.Errorf("%s: Validate passed", name)
		}
	}
	if err := DefaultSettings("us-east-1").Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func TestTypeMixRoundTrip(t *testing.T) {
	mix, err := ParseTypeMix(FormatTypeMix(DefaultTypeMix()))
	if err != nil {
		t.Fatal(err)
	}
	if FormatTypeMix(mix) != FormatTypeMix(DefaultTypeMix()) {
		t.Errorf("round trip %v", mix)
	}
	if _, err := ParseTypeMix("click"); err == nil {
		t.Error("ParseTypeMix(click) passed")
	}
}

func TestCost(t *testing.T) {
	s := DefaultSettings("us-east-1")
	p, err := Build(electionNight(t), s, "")
	if err != nil {
		t.Fatal(err)
	}
	c := p.MonthlyCost
	sum := 0.0
	for _, l := range c.Lines {
		sum += l.USD
		if l.Assumption == "" {
			t.Errorf("%s %s: no assumption", l.Service, l.Item)
		}
	}
	if math.Abs(sum-c.Total) > 0.011 {
		t.Errorf("lines sum to %.2f, total %.2f", sum, c.Total)
	}
	// Baseline Fargate, arm64 as terraform deploys it: 6 tasks × 730 h ×
	// (1 vCPU × 0.03238 + 2 GB × 0.00356).
	base := 6 * 730 * (0.03238 + 2*0.00356)
	if c.Fargate <= base || c.Fargate > base+50 {
		t.Errorf("Fargate %.2f, want a little over the baseline %.2f", c.Fargate, base)
	}
	if c.Kinesis < float64(p.Baseline.KinesisShards)*730*0.015 {
		t.Errorf("Kinesis %.2f below its shard hours", c.Kinesis)
	}
	if got := c.Total / c.Events * 1e6; math.Abs(got-c.PerMillionEvents) > 1e-4 {
		t.Errorf("per million events %.4f, total/events gives %.4f", c.PerMillionEvents, got)
	}
	if c.Month12Total <= c.Total {
		t.Errorf("month 12 %.2f not above month 1 %.2f: the lake grows", c.Month12Total, c.Total)
	}
	if c.BroadcastExtra <= 0 || c.BroadcastExtra >= c.Total {
		t.Errorf("broadcast extra %.2f of %.2f", c.BroadcastExtra, c.Total)
	}
	s.ParquetConversion = false
	p2, err := Build(electionNight(t), s, "")
	if err != nil {
		t.Fatal(err)
	}
	// Conversion is $0.018 on top of $0.029 a GB.
	if r := p2.MonthlyCost.Firehose / c.Firehose; math.Abs(r-0.029/0.047) > 0.01 {
		t.Errorf("without Parquet conversion Firehose costs %.3f× as much, want %.3f", r, 0.029/0.047)
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./plan -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./plan -update to accept):\n%s", name, got)
	}
}

func TestGolden(t *testing.T) {
	p, err := Build(electionNight(t), DefaultSettings("us-east-1"), "")
	if err != nil {
		t.Fatal(err)
	}
	var table, js bytes.Buffer
	if err := p.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	golden(t, "plan-election-night.txt", table.Bytes())
	if err := p.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	golden(t, "plan-election-night.json", js.Bytes())

	var doc struct {
		Windows []struct {
			Start             time.Time `json:"start"`
			End               time.Time `json:"end"`
			RequestsPerSecond float64   `json:"requests_per_second"`
			EventsPerSecond   float64   `json:"events_per_second"`
			FargateTasks      *int      `json:"fargate_tasks"`
			KinesisShards     *int      `json:"kinesis_shards"`
			RouterConcurrency *int      `json:"router_concurrency"`
			QuotaWarnings     []string  `json:"quota_warnings"`
		} `json:"windows"`
		Actions     []map[string]any `json:"actions"`
		MonthlyCost map[string]any   `json:"monthly_cost_usd"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Windows) == 0 || len(doc.Actions) == 0 {
		t.Fatal("no windows or actions")
	}
	for _, w := range doc.Windows {
		if w.FargateTasks == nil || w.KinesisShards == nil || w.RouterConcurrency == nil || w.QuotaWarnings == nil {
			t.Errorf("window %s lacks a field of the documented shape", w.Start)
		}
	}
	for _, k := range []string{"total", "fargate", "kinesis", "firehose", "lambda", "alb", "sqs", "lines", "per_million_events", "events", "month12_total"} {
		if _, ok := doc.MonthlyCost[k]; !ok {
			t.Errorf("monthly_cost_usd lacks %q", k)
		}
	}
}

func FuzzParseSchedule(f *testing.F) {
	f.Add([]byte("start,end,title,peak_requests_per_minute\n2027-01-01T10:00:00Z,2027-01-01T11:00:00Z,a,600000\n"))
	f.Add([]byte(`[{"start":"2027-01-01T10:00:00+02:00","end":"2027-01-01T11:00:00Z","title":"a","concurrent_viewers":5}]`))
	f.Add([]byte(`{"broadcasts":[]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		bs, err := ParseSchedule(bytes.NewReader(in), ScheduleOptions{})
		if err != nil {
			if !errors.Is(err, ErrSchedule) && !strings.HasPrefix(err.Error(), "read schedule") {
				t.Fatalf("error %v is not ErrSchedule", err)
			}
			return
		}
		for _, b := range bs {
			if !b.End.After(b.Start) || !(b.PeakRequestsPerMinute > 0) || b.Title == "" {
				t.Fatalf("accepted %+v", b)
			}
		}
		if _, err := Build(bs, DefaultSettings("us-east-1"), ""); err != nil {
			t.Fatalf("Build: %v", err)
		}
	})
}

func TestUnverifiedPrices(t *testing.T) {
	all := DefaultPrices("us-east-1").names()
	if len(all) < 40 {
		t.Fatalf("%d prices named, want every price field", len(all))
	}
	for _, region := range []string{"us-east-1", "eu-west-1", "ap-south-1"} {
		p := DefaultPrices(region)
		for _, n := range p.Unverified {
			if !strings.Contains(strings.Join(all, " "), n) {
				t.Errorf("%s: unverified %q is no price", region, n)
			}
		}
	}
	p := DefaultPrices("us-east-1")
	n := len(p.Unverified)
	p.Confirm("firehose_format_conversion_gb")
	if len(p.Unverified) != n-1 || len(DefaultPrices("us-east-1").Unverified) != n {
		t.Errorf("Confirm: %v", p.Unverified)
	}
	s := DefaultSettings("us-east-1")
	s.Prices.Unverified = nil
	pl, err := Build(electionNight(t), s, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.Warnings) != 0 {
		t.Errorf("warnings with every price confirmed: %v", pl.Warnings)
	}
}

func TestActionWarnings(t *testing.T) {
	bs := electionNight(t)
	s := DefaultSettings("us-east-1")
	s.EventsPerRecord = 1
	// Resharding 39→55 briefly holds 94 shards: over a quota of 90, though
	// no window needs more than 55.
	s.Quotas.KinesisShards = 90
	p, err := Build(bs, s, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(p.Warnings, "\n"), "resharding 39→55") {
		t.Errorf("no transient shard warning: %v", p.Warnings)
	}
	// Launching 8 more tasks at 5 a minute takes 2 minutes: longer than a
	// 1-minute lead.
	s = DefaultSettings("us-east-1")
	s.Quotas.TaskLaunchesPerMinute = 5
	s.LeadTime = time.Minute
	p, err = Build(bs, s, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(p.Warnings, "\n"), "longer than the 1m0s lead time") {
		t.Errorf("no launch-time warning: %v", p.Warnings)
	}
}
