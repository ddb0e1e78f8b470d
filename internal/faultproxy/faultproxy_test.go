package faultproxy_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsfirehose "github.com/aws/aws-sdk-go-v2/service/firehose"
	fhtypes "github.com/aws/aws-sdk-go-v2/service/firehose/types"
	awskinesis "github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/spate-dev/spate/internal/fakefirehose"
	"github.com/spate-dev/spate/internal/faultproxy"
	"github.com/spate-dev/spate/internal/faulttest"
	"github.com/spate-dev/spate/internal/spatetest"
)

func newProxy(t *testing.T, target string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.New(target, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func kinesisVia(url string) *awskinesis.Client {
	return awskinesis.NewFromConfig(spatetest.AWSConfig(), func(o *awskinesis.Options) { o.BaseEndpoint = aws.String(url) })
}

func entries(n int, tag string) []ktypes.PutRecordsRequestEntry {
	out := make([]ktypes.PutRecordsRequestEntry, n)
	for i := range out {
		out[i] = ktypes.PutRecordsRequestEntry{Data: fmt.Appendf(nil, "%s-%03d", tag, i), PartitionKey: aws.String(fmt.Sprint(i))}
	}
	return out
}

func streamData(t *testing.T, ctx context.Context, kc *awskinesis.Client, stream string) []string {
	t.Helper()
	recs, err := faulttest.ReadStream(ctx, kc, stream)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Data)
	}
	slices.Sort(out)
	return out
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestKinesisFaults(t *testing.T) {
	ep := spatetest.Emulators(t)
	ctx := spatetest.Context(t, time.Minute)
	direct := kinesisVia(ep.Kinesis)
	p := newProxy(t, ep.Kinesis)
	kc := kinesisVia(p.URL())
	stream := faulttest.Name(t, "s")
	if err := faulttest.CreateStream(ctx, direct, stream, 2); err != nil {
		t.Fatal(err)
	}
	put := func(ctx context.Context, recs []ktypes.PutRecordsRequestEntry) (*awskinesis.PutRecordsOutput, error) {
		return kc.PutRecords(ctx, &awskinesis.PutRecordsInput{StreamName: aws.String(stream), Records: recs})
	}
	var want []string

	t.Run("record throttling inside a 200", func(t *testing.T) {
		p.Set(faultproxy.Rule{Ops: []string{"PutRecords"}, RecordFailure: 0.5})
		recs := entries(100, "partial")
		out, err := put(ctx, recs)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Records) != len(recs) {
			t.Fatalf("%d results for %d records", len(out.Records), len(recs))
		}
		failed := 0
		for i, r := range out.Records {
			if r.ErrorCode != nil {
				failed++
				if *r.ErrorCode != "ProvisionedThroughputExceededException" {
					t.Fatalf("error code %q", *r.ErrorCode)
				}
				continue
			}
			if r.SequenceNumber == nil || r.ShardId == nil {
				t.Fatalf("result %d has neither error nor sequence number", i)
			}
			want = append(want, string(recs[i].Data))
		}
		if failed == 0 || failed == len(recs) || int(aws.ToInt32(out.FailedRecordCount)) != failed {
			t.Fatalf("failed %d, FailedRecordCount %d: want some, counted", failed, aws.ToInt32(out.FailedRecordCount))
		}
		if got := p.Stats().RecordsRefused["PutRecords"]; got != failed {
			t.Fatalf("stats count %d refused, answer %d", got, failed)
		}
		slices.Sort(want)
		if got := streamData(t, ctx, direct, stream); !slices.Equal(got, want) {
			t.Fatalf("stream holds %d records, want exactly the %d accepted", len(got), len(want))
		}
	})

	t.Run("whole-call throttling on every second call", func(t *testing.T) {
		p.Set(faultproxy.Rule{Ops: []string{"PutRecords"}, Status: 400, Every: 2})
		_, err1 := put(ctx, entries(3, "every1"))
		_, err2 := put(ctx, entries(3, "every2"))
		if err1 != nil || apiCode(err2) != "ProvisionedThroughputExceededException" {
			t.Fatalf("errors %v / %v: want the second call throttled", err1, err2)
		}
		for _, r := range entries(3, "every1") {
			want = append(want, string(r.Data))
		}
		slices.Sort(want)
		// Other operations pass.
		if got := streamData(t, ctx, direct, stream); !slices.Equal(got, want) {
			t.Fatalf("stream holds %d records, want %d", len(got), len(want))
		}
	})

	t.Run("5xx after the call was applied", func(t *testing.T) {
		p.Set(faultproxy.Rule{Ops: []string{"PutRecords"}, Status: 500, AfterForward: true})
		_, err := put(ctx, entries(2, "ambiguous"))
		if apiCode(err) != "InternalFailure" {
			t.Fatalf("err %v: want InternalFailure", err)
		}
		for _, r := range entries(2, "ambiguous") {
			want = append(want, string(r.Data))
		}
		slices.Sort(want)
		if got := streamData(t, ctx, direct, stream); !slices.Equal(got, want) {
			t.Fatalf("stream holds %d records, want %d (the failed call applied)", len(got), len(want))
		}
	})

	t.Run("down then up", func(t *testing.T) {
		p.Clear()
		p.Down()
		if _, err := put(ctx, entries(1, "down")); err == nil || apiCode(err) != "" {
			t.Fatalf("err %v: want a connection error", err)
		}
		if err := p.Up(); err != nil {
			t.Fatal(err)
		}
		if _, err := put(ctx, entries(1, "up")); err != nil {
			t.Fatalf("after Up: %v", err)
		}
		want = append(want, "up-000")
		slices.Sort(want)
	})

	t.Run("blackhole holds calls until the client gives up", func(t *testing.T) {
		p.Set(faultproxy.Rule{Ops: []string{"PutRecords"}, Blackhole: true})
		before := p.Stats().Forwarded["PutRecords"]
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		_, err := put(cctx, entries(1, "hole"))
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v: want the deadline", err)
		}
		if p.Stats().Forwarded["PutRecords"] != before {
			t.Fatal("a blackholed call was forwarded")
		}
		p.Set(faultproxy.Rule{Ops: []string{"PutRecords"}, Latency: time.Millisecond})
		if _, err := put(ctx, entries(1, "late")); err != nil {
			t.Fatalf("with latency: %v", err)
		}
		want = append(want, "late-000")
		slices.Sort(want)
		if got := streamData(t, ctx, direct, stream); !slices.Equal(got, want) {
			t.Fatalf("stream holds %d records, want %d", len(got), len(want))
		}
	})
}

func TestSQSPartialBatch(t *testing.T) {
	ep := spatetest.Emulators(t)
	ctx := spatetest.Context(t, time.Minute)
	p := newProxy(t, ep.SQS)
	qc := awssqs.NewFromConfig(spatetest.AWSConfig(), func(o *awssqs.Options) { o.BaseEndpoint = aws.String(p.URL()) })
	q, err := qc.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String(faulttest.Name(t, "q"))})
	if err != nil {
		t.Fatal(err)
	}
	p.Set(faultproxy.Rule{Ops: []string{"SendMessageBatch"}, RecordFailure: 0.5})
	in := &awssqs.SendMessageBatchInput{QueueUrl: q.QueueUrl}
	for i := range 10 {
		in.Entries = append(in.Entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), MessageBody: aws.String(fmt.Sprint("m", i))})
	}
	out, err := qc.SendMessageBatch(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Failed) == 0 || len(out.Successful) == 0 || len(out.Failed)+len(out.Successful) != 10 {
		t.Fatalf("%d failed, %d successful: want a split of 10", len(out.Failed), len(out.Successful))
	}
	p.Set(faultproxy.Rule{Ops: []string{"SendMessageBatch"}, Status: 500})
	if _, err := qc.SendMessageBatch(ctx, in); apiCode(err) != "InternalFailure" {
		t.Fatalf("err %v: want InternalFailure", err)
	}
	p.Clear()
	got, err := qc.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Messages) != len(out.Successful) {
		t.Fatalf("queue holds %d messages, want the %d successful", len(got.Messages), len(out.Successful))
	}
}

func TestFirehosePartialBatch(t *testing.T) {
	fake := fakefirehose.New("click")
	defer fake.Close()
	p := newProxy(t, fake.URL)
	fc := awsfirehose.NewFromConfig(spatetest.AWSConfig(), func(o *awsfirehose.Options) { o.BaseEndpoint = aws.String(p.URL()) })
	p.Set(faultproxy.Rule{Ops: []string{"PutRecordBatch"}, RecordFailure: 0.3})
	var recs []fhtypes.Record
	for i := range 50 {
		recs = append(recs, fhtypes.Record{Data: fmt.Appendf(nil, "r%02d\n", i)})
	}
	out, err := fc.PutRecordBatch(context.Background(), &awsfirehose.PutRecordBatchInput{DeliveryStreamName: aws.String("click"), Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	var accepted []string
	failed := 0
	for i, r := range out.RequestResponses {
		if r.ErrorCode != nil {
			failed++
			if *r.ErrorCode != "ServiceUnavailableException" {
				t.Fatalf("code %q", *r.ErrorCode)
			}
			continue
		}
		accepted = append(accepted, string(recs[i].Data))
	}
	if failed == 0 || int(aws.ToInt32(out.FailedPutCount)) != failed || len(out.RequestResponses) != len(recs) {
		t.Fatalf("FailedPutCount %d, failed %d, %d results", aws.ToInt32(out.FailedPutCount), failed, len(out.RequestResponses))
	}
	var got []string
	for _, r := range fake.Records("click") {
		got = append(got, string(r))
	}
	if !slices.Equal(got, accepted) {
		t.Fatalf("fake holds %d records, want the %d accepted in order", len(got), len(accepted))
	}
}
