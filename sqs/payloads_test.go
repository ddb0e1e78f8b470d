package sqs_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/internal/spatetest"
	"github.com/spate-dev/spate/sqs"
)

// streamRecord is a record as a stream consumer sees it: with its shard
// and sequence number.
func streamRecord(seq string, data []byte) spate.Record {
	return spate.Record{PartitionKey: "p-" + seq, Data: data, ShardID: "shardId-000000000001", SequenceNumber: seq,
		ArrivedAt: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
}

// receiveAll drains the queue's visible messages.
func receiveAll(t *testing.T, ctx context.Context, client *awssqs.Client, url string) []string {
	t.Helper()
	var bodies []string
	for {
		res, err := client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, VisibilityTimeout: 60})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Messages) == 0 {
			return bodies
		}
		for _, m := range res.Messages {
			bodies = append(bodies, aws.ToString(m.Body))
		}
	}
}

// TestDLQOverQueueLimit writes dead letters bigger than a real queue (the
// SQS emulator enforces MaximumMessageSize) allows: with a bucket they go
// to S3 under dead-letter/ and the message points at them; without one the
// letter carries the record's coordinates and is counted.
func TestDLQOverQueueLimit(t *testing.T) {
	ep := spatetest.Emulators(t)
	ctx := spatetest.Context(t, 60*time.Second)
	client := awssqs.NewFromConfig(spatetest.AWSConfig(), func(o *awssqs.Options) { o.BaseEndpoint = aws.String(ep.SQS) })
	newQueue := func(name string) string {
		q, err := client.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String(name),
			Attributes: map[string]string{"MaximumMessageSize": "4096"}})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(q.QueueUrl)
	}
	small := streamRecord("100", []byte(`{"type":"click","event_id":"e1"}`))
	big := streamRecord("200", []byte(`{"type":"click","pad":"`+strings.Repeat("x", 20000)+`"}`))
	binary := streamRecord("300", bytes.Repeat([]byte{0xff, 0x00}, 5000))

	t.Run("limit read from the queue", func(t *testing.T) {
		n, err := sqs.QueueMaxMessageBytes(ctx, client, newQueue("spate-limit"))
		if err != nil || n != 4096 {
			t.Fatalf("MaximumMessageSize %d, %v; want 4096", n, err)
		}
		if _, err := sqs.QueueMaxMessageBytes(ctx, client, ep.SQS+"/000000000000/no-such-queue"); err == nil {
			t.Error("a missing queue gave a limit")
		}
	})

	t.Run("payload to S3", func(t *testing.T) {
		url := newQueue("spate-offload")
		fake := spatetest.NewS3(t, "lake")
		store := sqs.NewS3Payloads(fake.Client, "lake", func() time.Time { return time.Date(2026, 11, 27, 23, 0, 0, 0, time.UTC) })
		dlq := sqs.NewDLQ(client, url, sqs.DLQConfig{MaxMessageBytes: 4096, Stream: "spate-events", Payloads: store})
		in := []spate.Record{small, big, binary}
		if err := dlq.PutReason(ctx, in, "too_large"); err != nil {
			t.Fatal(err)
		}
		if st := dlq.Stats(); st.Offloaded != 2 || st.Omitted != 0 {
			t.Errorf("stats %+v", st)
		}
		keys := fake.Keys(t, "lake", "")
		if len(keys) != 2 {
			t.Fatalf("objects %q, want the two big payloads", keys)
		}
		for _, k := range keys {
			if !strings.HasPrefix(k, "dead-letter/too_large/dt=2026-11-27/") {
				t.Errorf("key %q outside dead-letter/too_large/dt=2026-11-27/", k)
			}
		}
		var got []spate.Record
		for _, body := range receiveAll(t, ctx, client, url) {
			m, recs, err := sqs.DecodeMessage([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			if m.Reason != "too_large" || m.Stream != "spate-events" {
				t.Errorf("message %+v", m)
			}
			for _, w := range m.Records {
				if w.S3 != nil && (w.Size != len(big.Data) && w.Size != len(binary.Data) || w.Shard != big.ShardID || w.Sequence == "") {
					t.Errorf("pointer record %+v", w)
				}
			}
			if err := sqs.FetchPayloads(ctx, store, m, recs); err != nil {
				t.Fatal(err)
			}
			got = append(got, recs...)
		}
		if len(got) != 3 {
			t.Fatalf("%d records back, want 3", len(got))
		}
		bySeq := map[string]spate.Record{}
		for _, r := range got {
			bySeq[r.SequenceNumber] = r
		}
		for _, r := range in {
			b := bySeq[r.SequenceNumber]
			if !bytes.Equal(b.Data, r.Data) || b.PartitionKey != r.PartitionKey || b.ShardID != r.ShardID || !b.ArrivedAt.Equal(r.ArrivedAt) {
				t.Errorf("record %s came back as %+v", r.SequenceNumber, b)
			}
		}
		// A retried invocation writes the same object, not another.
		if err := dlq.PutReason(ctx, []spate.Record{big}, "too_large"); err != nil {
			t.Fatal(err)
		}
		if keys := fake.Keys(t, "lake", ""); len(keys) != 2 {
			t.Errorf("objects after a retry %q", keys)
		}
	})

	t.Run("no bucket: coordinates only", func(t *testing.T) {
		url := newQueue("spate-omit")
		omitted := 0
		dlq := sqs.NewDLQ(client, url, sqs.DLQConfig{MaxMessageBytes: 4096, OmitOversized: true, OnOmitted: func(n int) { omitted += n }})
		if err := dlq.PutReason(ctx, []spate.Record{small, big}, "too_large"); err != nil {
			t.Fatal(err)
		}
		if omitted != 1 || dlq.Stats().Omitted != 1 {
			t.Errorf("omitted %d, stats %+v; want 1", omitted, dlq.Stats())
		}
		bodies := receiveAll(t, ctx, client, url)
		if len(bodies) != 1 {
			t.Fatalf("%d messages", len(bodies))
		}
		m, recs, err := sqs.DecodeMessage([]byte(bodies[0]))
		if err != nil {
			t.Fatal(err)
		}
		w := m.Records[1]
		if !w.PayloadOmitted || w.Size != len(big.Data) || w.Shard != big.ShardID || w.Sequence != big.SequenceNumber || w.ArrivedAt != "2026-11-27T10:00:00.000Z" || len(recs[1].Data) != 0 {
			t.Errorf("letter %+v", w)
		}
		if err := sqs.FetchPayloads(ctx, nil, m, recs); !errors.Is(err, sqs.ErrPayloadOmitted) {
			t.Errorf("fetch %v, want ErrPayloadOmitted", err)
		}
	})

	t.Run("no bucket, no omission: refused", func(t *testing.T) {
		dlq := sqs.NewDLQ(client, newQueue("spate-refuse"), sqs.DLQConfig{MaxMessageBytes: 4096})
		errs := spate.ItemErrors(dlq.PutReason(ctx, []spate.Record{small, big}, "too_large"), 2)
		if errs[0] != nil || !errors.Is(errs[1], spate.ErrTooLarge) {
			t.Errorf("errs %v", errs)
		}
	})
}

// TestRedriverFollowsPointers redrives a message whose record is in S3
// into the stream, and leaves a coordinates-only letter as poison.
func TestRedriverFollowsPointers(t *testing.T) {
	ep := spatetest.Emulators(t)
	ctx := spatetest.Context(t, 60*time.Second)
	e := newRedriveEnv(t, ctx, ep, map[string]string{"MaximumMessageSize": "2048"})
	fake := spatetest.NewS3(t, "lake")
	store := sqs.NewS3Payloads(fake.Client, "lake", nil)
	in := records(3)
	in[1].Data = []byte(strings.Replace(string(in[1].Data), `"content_id":"c1"`, `"content_id":"`+strings.Repeat("c", 5000)+`"`, 1))
	for i := range in {
		in[i].ShardID, in[i].SequenceNumber = "shardId-000000000000", strings.Repeat("1", i+1)
	}
	if err := sqs.NewDLQ(e.qc, e.queue, sqs.DLQConfig{MaxMessageBytes: 2048, Payloads: store}).PutReason(ctx, in, "unknown_type"); err != nil {
		t.Fatal(err)
	}
	omitted := streamRecord("999", []byte(`{"type":"click","pad":"`+strings.Repeat("y", 5000)+`"}`))
	if err := sqs.NewDLQ(e.qc, e.queue, sqs.DLQConfig{MaxMessageBytes: 2048, OmitOversized: true}).PutReason(ctx, []spate.Record{omitted}, "too_large"); err != nil {
		t.Fatal(err)
	}
	r := newRedriver(t, e.qc, e, e.sink, sqs.RedriveConfig{StopWhenEmpty: true, Payloads: store})
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := e.streamData(t, ctx), want(in); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stream holds %d records, want %d: %.200q", len(got), len(want), got)
	}
	if st := r.Stats(); st.Poison < 1 || st.Redriven < 1 {
		t.Errorf("stats %+v: want the pointer message redriven and the omitted one poison", st)
	}
}
