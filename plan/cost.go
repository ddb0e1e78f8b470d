package plan

import (
	"math"
)

// Cost is a month's cost by component, in USD: the baseline running all
// month (730 h) at the everyday mean traffic, plus what the schedule's
// broadcasts add on top (their extra capacity for its hours and their
// extra traffic), plus the dead-letter queue taking the configured
// Kinesis outages at the plan's peak.
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
}

// usage is what traffic-billed components cost a second at a rate.
type usage struct {
	kinesis, firehose, lambda, alb float64
}

func (u usage) minus(v usage) usage {
	return usage{
		kinesis:  math.Max(0, u.kinesis-v.kinesis),
		firehose: math.Max(0, u.firehose-v.firehose),
		lambda:   math.Max(0, u.lambda-v.lambda),
		alb:      math.Max(0, u.alb-v.alb),
	}
}

func (u usage) times(secs float64) usage {
	return usage{u.kinesis * secs, u.firehose * secs, u.lambda * secs, u.alb * secs}
}

func (u usage) plus(v usage) usage {
	return usage{u.kinesis + v.kinesis, u.firehose + v.firehose, u.lambda + v.lambda, u.alb + v.alb}
}

const gib = 1 << 30

// usageAt prices one second of traffic at rpm (the expected rate, no
// headroom: usage is billed on what arrives, not on what is provisioned).
func (s Settings) usageAt(rpm float64) usage {
	pr := s.Prices
	var u usage
	rps := rpm / 60
	events := rps * s.EventsPerRequest
	records := events / float64(s.EventsPerRecord)
	recordBytes := float64(s.EventsPerRecord*s.EventBytes + s.PartitionKeyBytes)
	if s.KinesisMode == Provisioned {
		units := records * math.Ceil(recordBytes/PutPayloadUnitBytes)
		u.kinesis = units / 1e6 * pr.KinesisPutUnitsMillion
	} else {
		in := records * math.Ceil(recordBytes/OnDemandBillingUnitBytes) * OnDemandBillingUnitBytes / gib
		out := records * recordBytes / gib * float64(s.StreamConsumers)
		u.kinesis = in*pr.KinesisODInGB + out*pr.KinesisODOutGB
	}
	shards := max(1, ceilN(records/ShardRecordsPerSecond), ceilN(records*recordBytes/ShardBytesPerSecond))
	inv := routerInvocations(s, records, shards*s.ParallelizationFactor)
	billed := 0.0
	for _, f := range s.firehoseStreams(events, inv) {
		billed += f.BilledMiBPerSecond * (1 << 20) / gib
	}
	u.firehose = billed * pr.FirehoseGB
	if s.ParquetConversion {
		u.firehose += billed * pr.FirehoseParquetGB
	}
	calls := inv * float64(s.StreamConsumers)
	u.lambda = calls/1e6*pr.LambdaRequestsMillion + calls*s.RouterDuration.Seconds()*float64(s.RouterMemoryMB)/1024*pr.LambdaGBSecond
	reqBytes := s.EventsPerRequest*float64(s.EventBytes) + float64(s.RequestOverheadBytes)
	lcu := math.Max(rps/s.RequestsPerConnection/ALBNewConnectionsPerSecond, rps*reqBytes*3600/ALBBytesPerHour)
	u.alb = lcu * pr.ALBLCUHour / 3600
	return u
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }

func (s Settings) monthlyCost(p *Plan, traffic []segment, ecs, kin []level, baseTasks, baseKin int) Cost {
	pr := s.Prices
	month := float64(HoursPerMonth)
	var c, extra Cost

	hourly := s.fargateHourly()
	c.Fargate = month * float64(baseTasks) * hourly
	for _, l := range ecs {
		extra.Fargate += l.End.Sub(l.Start).Hours() * float64(l.N-baseTasks) * hourly
	}
	if s.KinesisMode == Provisioned {
		c.Kinesis = month * float64(baseKin) * pr.KinesisShardHour
		for _, l := range kin {
			extra.Kinesis += l.End.Sub(l.Start).Hours() * float64(l.N-baseKin) * pr.KinesisShardHour
		}
	} else {
		c.Kinesis = month * pr.KinesisODStreamHour
	}
	c.ALB = month * pr.ALBHour

	base := s.usageAt(s.BaselineRequestsPerMinute)
	u := s.usageAt(s.MeanRequestsPerMinute).times(month * 3600)
	var ux usage
	peak := s.BaselineRequestsPerMinute
	for _, sg := range traffic {
		peak = math.Max(peak, sg.RPM)
		ux = ux.plus(s.usageAt(sg.RPM).minus(base).times(sg.End.Sub(sg.Start).Seconds()))
	}
	c.Kinesis += u.kinesis
	c.Firehose += u.firehose
	c.Lambda += u.lambda
	c.ALB += u.alb
	extra.Kinesis += ux.kinesis
	extra.Firehose += ux.firehose
	extra.Lambda += ux.lambda
	extra.ALB += ux.alb

	outage := s.sqsOutage(peak / 60 * s.EventsPerRequest)
	c.SQS = s.OutagesPerMonth * s.OutageDuration.Hours() * outage.BilledRequestsPerHour / 1e6 * pr.SQSRequestsMillion

	out := Cost{
		Fargate:  round2(c.Fargate + extra.Fargate),
		Kinesis:  round2(c.Kinesis + extra.Kinesis),
		Firehose: round2(c.Firehose + extra.Firehose),
		Lambda:   round2(c.Lambda + extra.Lambda),
		ALB:      round2(c.ALB + extra.ALB),
		SQS:      round2(c.SQS),
	}
	out.Total = round2(out.Fargate + out.Kinesis + out.Firehose + out.Lambda + out.ALB + out.SQS)
	out.BroadcastExtra = round2(extra.Fargate + extra.Kinesis + extra.Firehose + extra.Lambda + extra.ALB)
	return out
}
