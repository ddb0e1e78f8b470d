package sqs_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/internal/spatetest"
	"github.com/spate-dev/spate/sqs"
)

func events(n int) []spate.Record {
	out := make([]spate.Record, n)
	for i := range out {
		out[i] = spate.Record{
			PartitionKey: fmt.Sprintf("s%d", i),
			Data:         fmt.Appendf(nil, `{"type":"click","event_id":"e%05d","occurred_at":"2026-11-27T10:00:00.000Z","received_at":"2026-11-27T10:00:%02d.000Z","platform":"web","content_id":"%s"}`, i, i%60, strings.Repeat("c", 900)),
		}
	}
	return out
}

// fakeSend answers SendMessageBatch from a function.
type fakeSend struct {
	calls []*awssqs.SendMessageBatchInput
	reply func(in *awssqs.SendMessageBatchInput) (*awssqs.SendMessageBatchOutput, error)
}

func (f *fakeSend) SendMessageBatch(ctx context.Context, in *awssqs.SendMessageBatchInput, _ ...func(*awssqs.Options)) (*awssqs.SendMessageBatchOutput, error) {
	f.calls = append(f.calls, in)
	return f.reply(in)
}

func TestDLQChecksEachEntry(t *testing.T) {
	api := &fakeSend{reply: func(in *awssqs.SendMessageBatchInput) (*awssqs.SendMessageBatchOutput, error) {
		out := &awssqs.SendMessageBatchOutput{}
		for i, e := range in.Entries {
			if i == 1 {
				out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), SenderFault: false})
				continue
			}
			out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String("m")})
		}
		return out, nil
	}}
	// Small messages force one record per message: record 1 lands in the failed entry.
	dlq := sqs.NewDLQ(api, "http://q", sqs.DLQConfig{MaxMessageBytes: 2200, MaxBatchBytes: 1 << 20})
	errs := spate.ItemErrors(dlq.PutReason(context.Background(), events(3), "kinesis down"), 3)
	if errs[0] != nil || errs[1] == nil || errs[2] != nil {
		t.Errorf("errs %v, want only record 1 failed", errs)
	}
}

func TestDLQRefusesOversizedRecordWithoutCoordinates(t *testing.T) {
	api := &fakeSend{reply: func(in *awssqs.SendMessageBatchInput) (*awssqs.SendMessageBatchOutput, error) {
		t.Fatal("nothing to send")
		return nil, nil
	}}
	// Ingest's records come from no stream: a letter without their
	// payload would say nothing, so even with OmitOversized they fail.
	dlq := sqs.NewDLQ(api, "http://q", sqs.DLQConfig{MaxMessageBytes: 500, OmitOversized: true})
	errs := spate.ItemErrors(dlq.Put(context.Background(), events(1)), 1)
	if !errors.Is(errs[0], spate.ErrTooLarge) {
		t.Errorf("err %v, want ErrTooLarge", errs[0])
	}
}

// TestDLQAgainstLocalSQS packs records into messages on a real SQS
// emulator and reads them back with what an operator needs.
func TestDLQAgainstLocalSQS(t *testing.T) {
	ep := spatetest.Emulators(t)
	ctx := spatetest.Context(t, 60*time.Second)
	client := awssqs.NewFromConfig(spatetest.AWSConfig(), func(o *awssqs.Options) { o.BaseEndpoint = aws.String(ep.SQS) })
	q, err := client.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String("spate-dlq")})
	if err != nil {
		t.Fatal(err)
	}
	in := events(700) // about 650 KiB: several messages, more than one batch call
	if err := sqs.NewDLQ(client, *q.QueueUrl, sqs.DLQConfig{}).PutReason(ctx, in, "kinesis put events: throttled"); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	messages := 0
	for {
		res, err := client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 60})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Messages) == 0 {
			break
		}
		for _, m := range res.Messages {
			messages++
			if len(*m.Body) > 256<<10 {
				t.Errorf("message of %d bytes", len(*m.Body))
			}
			meta, recs, err := sqs.DecodeMessage([]byte(*m.Body))
			if err != nil {
				t.Fatal(err)
			}
			if meta.Reason != "kinesis put events: throttled" || meta.Count != len(recs) || meta.FirstReceivedAt == "" || meta.LastReceivedAt < meta.FirstReceivedAt {
				t.Errorf("message metadata %+v", meta)
			}
			for _, r := range recs {
				got[string(r.Data)] = true
			}
		}
	}
	if messages < 3 || messages > 10 {
		t.Errorf("%d messages for 700 records of 1 KiB: packing is off", messages)
	}
	for _, r := range in {
		if !got[string(r.Data)] {
			t.Fatalf("record %s missing from the DLQ", r.Data[:60])
		}
	}
}
