package kinesis

// This file holds the capacity controls prescaling uses; it depends on
// nothing else in the package.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// CapacityAPI is the part of the Kinesis client capacity changes use.
type CapacityAPI interface {
	DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, opts ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
	UpdateShardCount(ctx context.Context, in *kinesis.UpdateShardCountInput, opts ...func(*kinesis.Options)) (*kinesis.UpdateShardCountOutput, error)
	UpdateStreamWarmThroughput(ctx context.Context, in *kinesis.UpdateStreamWarmThroughputInput, opts ...func(*kinesis.Options)) (*kinesis.UpdateStreamWarmThroughputOutput, error)
}

// StreamCapacity is a stream's capacity as DescribeStreamSummary tells it.
type StreamCapacity struct {
	Name       string
	ARN        string
	Status     string // CREATING, DELETING, ACTIVE, UPDATING
	OnDemand   bool
	OpenShards int
	// WarmCurrentMiBps and WarmTargetMiBps are an on-demand stream's
	// warm throughput (zero when none is set).
	WarmCurrentMiBps int
	WarmTargetMiBps  int
}

// Step is one capacity change made (or, dry, that would be made).
type Step struct {
	From, To int
	Dry      bool
}

// ErrStreamBusy is returned when the stream is not ACTIVE (a previous
// change is still running): try again on the next run.
var ErrStreamBusy = errors.New("stream is not ACTIVE")

// ErrWrongMode is returned for a change the stream's capacity mode does
// not support (shard counts of an on-demand stream, warm throughput of a
// provisioned one).
var ErrWrongMode = errors.New("not supported in the stream's capacity mode")

// Capacity changes one stream's capacity.
type Capacity struct {
	api    CapacityAPI
	stream string
}

// NewCapacity returns a Capacity for stream, a stream name or ARN.
func NewCapacity(api CapacityAPI, stream string) *Capacity {
	return &Capacity{api: api, stream: stream}
}

func (c *Capacity) ident() (name, arn *string) {
	if strings.HasPrefix(c.stream, "arn:") {
		return nil, aws.String(c.stream)
	}
	return aws.String(c.stream), nil
}

// Describe reads the stream's capacity.
func (c *Capacity) Describe(ctx context.Context) (StreamCapacity, error) {
	name, arn := c.ident()
	out, err := c.api.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: name, StreamARN: arn})
	if err != nil {
		return StreamCapacity{}, fmt.Errorf("kinesis describe stream %s: %w", c.stream, err)
	}
	d := out.StreamDescriptionSummary
	if d == nil {
		return StreamCapacity{}, fmt.Errorf("kinesis describe stream %s: empty summary", c.stream)
	}
	sc := StreamCapacity{
		Name:       aws.ToString(d.StreamName),
		ARN:        aws.ToString(d.StreamARN),
		Status:     string(d.StreamStatus),
		OpenShards: int(aws.ToInt32(d.OpenShardCount)),
		OnDemand:   d.StreamModeDetails != nil && d.StreamModeDetails.StreamMode == types.StreamModeOnDemand,
	}
	if w := d.WarmThroughput; w != nil {
		sc.WarmCurrentMiBps = int(aws.ToInt32(w.CurrentMiBps))
		sc.WarmTargetMiBps = int(aws.ToInt32(w.TargetMiBps))
	}
	return sc, nil
}

// NextShardCount is the single UpdateShardCount target on the way from
// open to want: Kinesis takes at most double and at least half per call.
func NextShardCount(open, want int) int {
	switch {
	case want > 2*open:
		return 2 * open
	case 2*want < open:
		return (open + 1) / 2
	default:
		return want
	}
}

// StepShards makes one UpdateShardCount call toward want, if the stream is
// not there yet: several runs, each after the last change completed, take
// it the whole way. It returns a nil Step when there is nothing to do, and
// ErrStreamBusy while a change runs. With dry it calls nothing but
// DescribeStreamSummary.
func (c *Capacity) StepShards(ctx context.Context, want int, dry bool) (*Step, error) {
	if want < 1 {
		return nil, fmt.Errorf("kinesis update shard count %s: target %d", c.stream, want)
	}
	sc, err := c.Describe(ctx)
	if err != nil {
		return nil, err
	}
	if sc.OnDemand {
		return nil, fmt.Errorf("kinesis update shard count %s: %w (on-demand)", c.stream, ErrWrongMode)
	}
	if sc.OpenShards == want {
		return nil, nil
	}
	if sc.Status != string(types.StreamStatusActive) {
		return nil, fmt.Errorf("kinesis update shard count %s: %w (%s)", c.stream, ErrStreamBusy, sc.Status)
	}
	step := &Step{From: sc.OpenShards, To: NextShardCount(sc.OpenShards, want), Dry: dry}
	if dry {
		return step, nil
	}
	name, arn := c.ident()
	_, err = c.api.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{
		StreamName:       name,
		StreamARN:        arn,
		TargetShardCount: aws.Int32(int32(step.To)),
		ScalingType:      types.ScalingTypeUniformScaling,
	})
	if err != nil {
		return nil, fmt.Errorf("kinesis update shard count %s %d→%d: %w", c.stream, step.From, step.To, err)
	}
	return step, nil
}

// SetWarmThroughput sets an on-demand stream's warm throughput to mibps
// unless that is already its target. It returns a nil Step when there is
// nothing to do. With dry it calls nothing but DescribeStreamSummary.
func (c *Capacity) SetWarmThroughput(ctx context.Context, mibps int, dry bool) (*Step, error) {
	if mibps < 0 {
		return nil, fmt.Errorf("kinesis update warm throughput %s: %d MiB/s", c.stream, mibps)
	}
	sc, err := c.Describe(ctx)
	if err != nil {
		return nil, err
	}
	if !sc.OnDemand {
		return nil, fmt.Errorf("kinesis update warm throughput %s: %w (provisioned)", c.stream, ErrWrongMode)
	}
	if sc.WarmTargetMiBps == mibps {
		return nil, nil
	}
	if sc.Status != string(types.StreamStatusActive) {
		return nil, fmt.Errorf("kinesis update warm throughput %s: %w (%s)", c.stream, ErrStreamBusy, sc.Status)
	}
	step := &Step{From: sc.WarmTargetMiBps, To: mibps, Dry: dry}
	if dry {
		return step, nil
	}
	name, arn := c.ident()
	_, err = c.api.UpdateStreamWarmThroughput(ctx, &kinesis.UpdateStreamWarmThroughputInput{
		StreamName:          name,
		StreamARN:           arn,
		WarmThroughputMiBps: aws.Int32(int32(mibps)),
	})
	if err != nil {
		return nil, fmt.Errorf("kinesis update warm throughput %s →%d MiB/s: %w", c.stream, mibps, err)
	}
	return step, nil
}
