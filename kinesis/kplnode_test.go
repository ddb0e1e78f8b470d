package kinesis_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskinesis "github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/internal/spatetest"
	"github.com/spate-dev/spate/kinesis"
)

// TestAWSDeaggregatesWhatSpateWrites proves the format against AWS's own
// implementation, both ways, through kinesalite: npm aws-kinesis-agg
// deaggregates (MD5 checked) every event spate's sink wrote, with its
// partition key, and spate reads back every user record aws-kinesis-agg
// aggregated.
func TestAWSDeaggregatesWhatSpateWrites(t *testing.T) {
	ep := spatetest.Emulators(t)
	ctx := spatetest.Context(t, 90*time.Second)
	client := awskinesis.NewFromConfig(spatetest.AWSConfig(), func(o *awskinesis.Options) { o.BaseEndpoint = aws.String(ep.Kinesis) })
	for _, name := range []string{"spate-wrote", "aws-wrote"} {
		if _, err := client.CreateStream(ctx, &awskinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(3)}); err != nil {
			t.Fatal(err)
		}
	}
	key := func(r spate.Record) string { return r.PartitionKey + "\x00" + string(r.Data) }

	// spate → aws-kinesis-agg. Sizes vary so records cut at the 25 KiB
	// target; one event is over it alone and goes plain.
	in := events(2000, 450, 97)
	for i := range in {
		if i%7 == 0 {
			in[i].Data = append(in[i].Data, fmt.Sprintf(`{"i":%d,"unicode":"ääkkönen ✓"}`, i)...)
		}
	}
	in = append(in, events(1, 30_000, 1)...)
	sink := kinesis.NewSink(client, "spate-wrote", kinesis.SinkConfig{Shards: kinesis.NewShardMap(client, "spate-wrote", time.Hour, nil)})
	for i := 0; i < len(in); i += 400 {
		if err := sink.Put(ctx, in[i:min(i+400, len(in))]); err != nil {
			t.Fatal(err)
		}
	}
	users := spatetest.NodeDeaggregate(t, ctx, ep.Kinesis, "spate-wrote")
	var got []string
	aggregated, plain := map[string]bool{}, 0
	for _, u := range users {
		got = append(got, key(spate.Record{PartitionKey: u.PartitionKey, Data: u.Data}))
		if u.Aggregated {
			aggregated[u.SequenceNumber] = true
		} else {
			plain++
		}
	}
	want := make([]string, len(in))
	for i, r := range in {
		want[i] = key(r)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("aws-kinesis-agg read back %d user records, spate wrote %d events; they differ", len(got), len(want))
	}
	st := sink.Stats()
	if plain != 1 || len(aggregated)+plain != int(st.Records) {
		t.Errorf("aws-kinesis-agg saw %d aggregated and %d plain records; the sink wrote %d", len(aggregated), plain, st.Records)
	}
	t.Logf("aws-kinesis-agg deaggregated %d events from %d Kinesis records (%.1f per record)", len(users), st.Records, float64(len(users))/float64(st.Records))

	// aws-kinesis-agg → spate.
	back := events(3000, 900, 41)
	n := spatetest.NodeAggregate(t, ctx, ep.Kinesis, "aws-wrote", back)
	if n < 2 || n >= len(back) {
		t.Fatalf("aws-kinesis-agg made %d records of %d", n, len(back))
	}
	read, err := spatetest.ReadEvents(ctx, client, "aws-wrote")
	if err != nil {
		t.Fatal(err)
	}
	got, want = nil, nil
	for _, r := range read {
		got = append(got, key(r))
	}
	for _, r := range back {
		want = append(want, key(r))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("spate read back %d events from aws-kinesis-agg's %d records, want %d", len(got), n, len(want))
	}
}
