package kinesis_test

import (
	"context"
	"testing"
	"time"

	awskinesis "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/spate-dev/spate/kinesis"
)

type nopAPI struct{ *fakeStream }

func (n nopAPI) PutRecords(ctx context.Context, in *awskinesis.PutRecordsInput, _ ...func(*awskinesis.Options)) (*awskinesis.PutRecordsOutput, error) {
	return &awskinesis.PutRecordsOutput{Records: make([]types.PutRecordsResultEntry, len(in.Records))}, nil
}

// BenchmarkSinkPut is the sink's own cost per event (no SDK, no HTTP):
// plain against aggregating into 4 shards.
func BenchmarkSinkPut(b *testing.B) {
	f := newFakeStream(4)
	for _, agg := range []bool{false, true} {
		name := "plain"
		cfg := kinesis.SinkConfig{}
		if agg {
			name = "aggregated"
			cfg.Shards = kinesis.NewShardMap(f, "events", time.Hour, nil)
		}
		b.Run(name, func(b *testing.B) {
			sink := kinesis.NewSink(nopAPI{f}, "events", cfg)
			recs := events(250, 330, 40)
			b.ReportAllocs()
			for b.Loop() {
				_ = sink.Put(context.Background(), recs)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/event")
		})
	}
}
