package kinesis_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskinesis "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/spate-dev/spate/internal/fakekinesisctl"
	"github.com/spate-dev/spate/internal/spatetest"
	"github.com/spate-dev/spate/kinesis"
)

var _ kinesis.CapacityAPI = (*awskinesis.Client)(nil)

// clock is a test clock the fake reads.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func setupCtl(t *testing.T, cfg fakekinesisctl.Config) (*fakekinesisctl.Server, *awskinesis.Client, *clock) {
	t.Helper()
	fake := fakekinesisctl.New(cfg)
	t.Cleanup(fake.Close)
	clk := &clock{t: time.Date(2027, 4, 18, 12, 0, 0, 0, time.UTC)}
	fake.SetClock(clk.now)
	client := awskinesis.NewFromConfig(spatetest.AWSConfig(), func(o *awskinesis.Options) {
		o.BaseEndpoint = aws.String(fake.URL)
		o.HTTPClient = fake.HTTPClient()
	})
	return fake, client, clk
}

func TestNextShardCount(t *testing.T) {
	cases := []struct{ open, want, next int }{
		{13, 55, 26}, {26, 55, 52}, {52, 55, 55}, {55, 13, 28}, {28, 13, 14}, {14, 13, 13}, {5, 2, 3}, {10, 10, 10},
	}
	for _, c := range cases {
		if got := kinesis.NextShardCount(c.open, c.want); got != c.next {
			t.Errorf("NextShardCount(%d, %d) = %d, want %d", c.open, c.want, got, c.next)
		}
	}
}

func TestStepShardsWalksToTarget(t *testing.T) {
	fake, client, clk := setupCtl(t, fakekinesisctl.Config{})
	fake.AddStream("events", 13)
	ctx := spatetest.Context(t, 30*time.Second)
	c := kinesis.NewCapacity(client, "events")

	var path []int
	for range 10 {
		step, err := c.StepShards(ctx, 55, false)
		if err != nil {
			t.Fatal(err)
		}
		if step == nil {
			break
		}
		path = append(path, step.To)
		// While Kinesis reshards, another run waits.
		if _, err := c.StepShards(ctx, 55, false); !errors.Is(err, kinesis.ErrStreamBusy) {
			t.Fatalf("during resharding: %v, want ErrStreamBusy", err)
		}
		clk.add(15 * time.Minute)
		fake.Settle("events")
	}
	if got := fake.Stream("events").OpenShards; got != 55 {
		t.Fatalf("open shards %d, want 55 (path %v)", got, path)
	}
	if len(path) != 3 || path[0] != 26 || path[1] != 52 || path[2] != 55 {
		t.Errorf("path %v, want [26 52 55]", path)
	}
	// Back down, by ARN this time.
	c = kinesis.NewCapacity(client, "arn:aws:kinesis:us-east-1:123456789012:stream/events")
	path = nil
	for range 10 {
		step, err := c.StepShards(ctx, 13, false)
		if err != nil {
			t.Fatal(err)
		}
		if step == nil {
			break
		}
		path = append(path, step.To)
		fake.Settle("events")
	}
	if len(path) != 3 || path[2] != 13 {
		t.Errorf("down path %v, want [28 14 13]", path)
	}
	if n := len(fake.Stream("events").ShardUpdates); n != 6 {
		t.Errorf("%d UpdateShardCount calls recorded, want 6", n)
	}
}

func TestStepShardsDryRun(t *testing.T) {
	fake, client, _ := setupCtl(t, fakekinesisctl.Config{})
	fake.AddStream("events", 13)
	ctx := spatetest.Context(t, 30*time.Second)
	step, err := kinesis.NewCapacity(client, "events").StepShards(ctx, 40, true)
	if err != nil {
		t.Fatal(err)
	}
	if step == nil || !step.Dry || step.From != 13 || step.To != 26 {
		t.Errorf("dry step %+v, want 13→26", step)
	}
	if fake.Calls("UpdateShardCount") != 0 {
		t.Error("dry run called UpdateShardCount")
	}
}

func TestShardCountLimits(t *testing.T) {
	fake, client, clk := setupCtl(t, fakekinesisctl.Config{AutoSettle: true})
	fake.AddStream("events", 10)
	ctx := spatetest.Context(t, 30*time.Second)
	update := func(n int32) error {
		_, err := client.UpdateShardCount(ctx, &awskinesis.UpdateShardCountInput{StreamName: aws.String("events"), TargetShardCount: aws.Int32(n), ScalingType: types.ScalingTypeUniformScaling})
		return err
	}
	var le *types.LimitExceededException
	if err := update(21); !errors.As(err, &le) {
		t.Errorf("10→21: %v, want LimitExceededException (more than double)", err)
	}
	if err := update(4); !errors.As(err, &le) {
		t.Errorf("10→4: %v, want LimitExceededException (less than half)", err)
	}
	// Ten calls in 24 h are fine, the eleventh is not.
	for i := range 10 {
		n := int32(11)
		if i%2 == 1 {
			n = 10
		}
		if err := update(n); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		clk.add(time.Hour)
	}
	if err := update(11); !errors.As(err, &le) {
		t.Fatalf("11th call in 24 h: %v, want LimitExceededException", err)
	}
	// The window rolls: 15 h later the first calls have aged out.
	clk.add(15 * time.Hour)
	if err := update(11); err != nil {
		t.Errorf("after the window rolled: %v", err)
	}

	// The adapter reports the same error, wrapped with what it tried.
	fake.AddStream("other", 10)
	fake.Fail("UpdateShardCount", "LimitExceededException", 400, 1)
	_, err := kinesis.NewCapacity(client, "other").StepShards(ctx, 20, false)
	if !errors.As(err, &le) {
		t.Fatalf("injected: %v, want LimitExceededException", err)
	}

	var rnf *types.ResourceNotFoundException
	if _, err := kinesis.NewCapacity(client, "missing").StepShards(ctx, 2, false); !errors.As(err, &rnf) {
		t.Errorf("missing stream: %v, want ResourceNotFoundException", err)
	}
}

func TestShardQuota(t *testing.T) {
	fake, client, _ := setupCtl(t, fakekinesisctl.Config{ShardQuota: 50})
	fake.AddStream("events", 20)
	ctx := spatetest.Context(t, 30*time.Second)
	_, err := kinesis.NewCapacity(client, "events").StepShards(ctx, 40, false)
	var le *types.LimitExceededException
	if !errors.As(err, &le) {
		t.Fatalf("20→40 under a 50-shard quota (60 while splitting): %v, want LimitExceededException", err)
	}
}

func TestWarmThroughput(t *testing.T) {
	fake, client, _ := setupCtl(t, fakekinesisctl.Config{WarmThroughput: true, AutoSettle: true})
	fake.AddOnDemandStream("events")
	fake.AddStream("provisioned", 4)
	ctx := spatetest.Context(t, 30*time.Second)
	c := kinesis.NewCapacity(client, "events")
	if _, err := c.StepShards(ctx, 10, false); !errors.Is(err, kinesis.ErrWrongMode) {
		t.Errorf("shard step on on-demand: %v, want ErrWrongMode", err)
	}
	step, err := c.SetWarmThroughput(ctx, 60, false)
	if err != nil {
		t.Fatal(err)
	}
	if step == nil || step.To != 60 {
		t.Fatalf("step %+v", step)
	}
	sc, err := c.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !sc.OnDemand || sc.WarmTargetMiBps != 60 || sc.WarmCurrentMiBps != 60 {
		t.Errorf("described %+v", sc)
	}
	if step, err := c.SetWarmThroughput(ctx, 60, false); err != nil || step != nil {
		t.Errorf("second set: %+v, %v; want nothing to do", step, err)
	}
	if _, err := kinesis.NewCapacity(client, "provisioned").SetWarmThroughput(ctx, 10, false); !errors.Is(err, kinesis.ErrWrongMode) {
		t.Errorf("warm throughput on provisioned: %v, want ErrWrongMode", err)
	}
	var le *types.LimitExceededException
	if _, err := c.SetWarmThroughput(ctx, 20000, false); !errors.As(err, &le) {
		t.Errorf("20,000 MiB/s: %v, want LimitExceededException", err)
	}

	fake2, client2, _ := setupCtl(t, fakekinesisctl.Config{})
	fake2.AddOnDemandStream("events")
	var ve *types.ValidationException
	if _, err := kinesis.NewCapacity(client2, "events").SetWarmThroughput(ctx, 60, false); !errors.As(err, &ve) {
		t.Errorf("without the billing commitment: %v, want ValidationException", err)
	}
}
