package kinesis_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskinesis "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/internal/spatetest"
	"github.com/spate-dev/spate/kinesis"
)

// scripted answers PutRecords from a function, like a8m's table test.
type scripted struct {
	calls [][]types.PutRecordsRequestEntry
	reply func(in *awskinesis.PutRecordsInput) (*awskinesis.PutRecordsOutput, error)
}

func (s *scripted) PutRecords(ctx context.Context, in *awskinesis.PutRecordsInput, _ ...func(*awskinesis.Options)) (*awskinesis.PutRecordsOutput, error) {
	s.calls = append(s.calls, in.Records)
	return s.reply(in)
}

func records(n, size int) []spate.Record {
	out := make([]spate.Record, n)
	for i := range out {
		out[i] = spate.Record{PartitionKey: fmt.Sprintf("k%d", i), Data: make([]byte, size)}
	}
	return out
}

func TestSinkReadsEveryEntry(t *testing.T) {
	api := &scripted{reply: func(in *awskinesis.PutRecordsInput) (*awskinesis.PutRecordsOutput, error) {
		out := &awskinesis.PutRecordsOutput{FailedRecordCount: aws.Int32(2)}
		for i := range in.Records {
			var e types.PutRecordsResultEntry
			switch i {
			case 1:
				e.ErrorCode, e.ErrorMessage = aws.String("ProvisionedThroughputExceededException"), aws.String("Rate exceeded for shard")
			case 2:
				e.ErrorCode, e.ErrorMessage = aws.String("InternalFailure"), aws.String("Internal service failure.")
			default:
				e.SequenceNumber, e.ShardId = aws.String("1"), aws.String("shardId-000000000000")
			}
			out.Records = append(out.Records, e)
		}
		return out, nil
	}}
	err := kinesis.NewSink(api, "events", kinesis.SinkConfig{}).Put(context.Background(), records(4, 10))
	errs := spate.ItemErrors(err, 4)
	if errs[0] != nil || errs[3] != nil {
		t.Errorf("successful records failed: %v", errs)
	}
	if !errors.Is(errs[1], spate.ErrThrottled) {
		t.Errorf("throttled record: %v", errs[1])
	}
	if errs[2] == nil || errors.Is(errs[2], spate.ErrThrottled) {
		t.Errorf("internal failure: %v", errs[2])
	}
}

func TestSinkSplitsAtLimits(t *testing.T) {
	api := &scripted{reply: func(in *awskinesis.PutRecordsInput) (*awskinesis.PutRecordsOutput, error) {
		return &awskinesis.PutRecordsOutput{Records: make([]types.PutRecordsResultEntry, len(in.Records))}, nil
	}}
	s := kinesis.NewSink(api, "events", kinesis.SinkConfig{})
	if err := s.Put(context.Background(), records(1001, 10)); err != nil {
		t.Fatal(err)
	}
	if len(api.calls) != 3 || len(api.calls[0]) != 500 || len(api.calls[2]) != 1 {
		t.Errorf("count split: %d calls", len(api.calls))
	}
	api.calls = nil
	// 12 records of 1000 KiB: 5 MiB holds 5 of them.
	if err := s.Put(context.Background(), records(12, 1000<<10)); err != nil {
		t.Fatal(err)
	}
	if len(api.calls) != 3 || len(api.calls[0]) != 5 {
		t.Errorf("byte split: %d calls, first %d", len(api.calls), len(api.calls[0]))
	}
	api.calls = nil
	huge := []spate.Record{{PartitionKey: "k", Data: make([]byte, 1<<20)}, {PartitionKey: "k", Data: []byte("x")}}
	errs := spate.ItemErrors(s.Put(context.Background(), huge), 2)
	if !errors.Is(errs[0], spate.ErrTooLarge) || errs[1] != nil {
		t.Errorf("oversized record: %v", errs)
	}
}

func TestSinkWholeCallError(t *testing.T) {
	api := &scripted{reply: func(in *awskinesis.PutRecordsInput) (*awskinesis.PutRecordsOutput, error) {
		return nil, &types.ResourceNotFoundException{Message: aws.String("Stream events not found")}
	}}
	errs := spate.ItemErrors(kinesis.NewSink(api, "events", kinesis.SinkConfig{}).Put(context.Background(), records(3, 1)), 3)
	for i, err := range errs {
		if err == nil {
			t.Errorf("record %d written though the call failed", i)
		}
	}
}

// TestSinkAgainstKinesalite writes through the real SDK client to
// kinesalite and reads every record back from every shard.
func TestSinkAgainstKinesalite(t *testing.T) {
	ep := spatetest.Emulators(t)
	ctx := spatetest.Context(t, 60*time.Second)
	client := awskinesis.NewFromConfig(spatetest.AWSConfig(), func(o *awskinesis.Options) { o.BaseEndpoint = aws.String(ep.Kinesis) })
	if _, err := client.CreateStream(ctx, &awskinesis.CreateStreamInput{StreamName: aws.String("events"), ShardCount: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	var observed int
	sink := kinesis.NewSink(client, "events", kinesis.SinkConfig{Observe: func(d time.Duration, n, failed int) { observed += n - failed }})
	in := make([]spate.Record, 1200)
	for i := range in {
		in[i] = spate.Record{PartitionKey: fmt.Sprintf("session-%d", i%37), Data: fmt.Appendf(nil, `{"n":%d}`, i)}
	}
	if err := sink.Put(ctx, in); err != nil {
		t.Fatal(err)
	}
	if observed != 1200 {
		t.Errorf("observed %d written, want 1200", observed)
	}
	got := readAll(ctx, t, client, "events")
	if len(got) != 1200 {
		t.Fatalf("read back %d records, want 1200", len(got))
	}
	want := make([]string, len(in))
	for i, r := range in {
		want[i] = string(r.Data)
	}
	sort.Strings(want)
	sort.Strings(got)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("record %d: got %s want %s", i, got[i], want[i])
		}
	}
}

func readAll(ctx context.Context, t *testing.T, c *awskinesis.Client, stream string) []string {
	t.Helper()
	shards, err := c.ListShards(ctx, &awskinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, sh := range shards.Shards {
		it, err := c.GetShardIterator(ctx, &awskinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for iter != nil {
			res, err := c.GetRecords(ctx, &awskinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res.Records {
				out = append(out, string(r.Data))
			}
			if len(res.Records) == 0 {
				break
			}
			iter = res.NextShardIterator
		}
	}
	return out
}
